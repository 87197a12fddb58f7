"""URLs in a message: where they are written, and what they are."""

from __future__ import annotations

from varsel.link_checks import is_redirect, is_tracking, split_url, under, urls_in_text


def test_urls_in_text() -> None:
    text = (
        "Se https://www.politiet.no/rad. Eller (www.nsr-org.no/x), bit.ly/abc, "
        "post@bit.ly, nett.com/y og «https://x.no/a?b=c»."
    )
    assert urls_in_text(text) == [
        "https://www.politiet.no/rad",
        "www.nsr-org.no/x",
        "bit.ly/abc",
        "https://x.no/a?b=c",
    ]


def test_a_host_is_compared_as_an_a_label_and_a_url_without_a_scheme_as_https() -> None:
    assert split_url("https://Blåbær.no./rad?x=1") == ("https", "xn--blbr-roah.no", "/rad", "x=1")
    assert split_url("www.politiet.no/varsel") == ("https", "www.politiet.no", "/varsel", "")
    assert under("www.politiet.no", ["politiet.no"])
    assert not under("falskpolitiet.no", ["politiet.no"])


def test_redirects_and_tracking() -> None:
    assert is_redirect(*split_url("https://www.politiet.no/r?u=https://evil.example/")[1:])
    assert is_redirect(*split_url("https://www.google.no/url?q=x")[1:])
    assert not is_redirect(*split_url("https://www.politiet.no/rad?side=2")[1:])
    assert is_tracking("utm_source=epost")
    assert not is_tracking("side=2")
