"""The unknown-code, not-a-code and limit pages from slots: the text Jinja makes, sent with
their headers."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from varsel.ratelimit import Decision
from varsel.web import answers
from varsel.web.headers import SECURITY_HEADERS
from varsel.web.templating import render_text

HOSTILE = st.text(alphabet=st.sampled_from("aZ0 <>&'\"%+/?#=;\\\n\tæøå\u2028"), max_size=16)
LANGUAGES = st.sampled_from(["nb", "nn", "en"])
ROOTS = st.sampled_from(["", "/varsel", "/a&b"])  # the site's root: "" when it has no path


@settings(max_examples=100, deadline=None)
@given(language=LANGUAGES, typed=HOSTILE, path=HOSTILE, here=HOSTILE, root=ROOTS)
def test_the_compiled_unknown_page_is_the_page_jinja_makes(
    language: str, typed: str, path: str, here: str, root: str
) -> None:
    page = answers.compiled(answers.UNKNOWN, language, ["typed"], root)
    expected = render_text(
        language,
        answers.UNKNOWN,
        answers.context(answers.UNKNOWN, {"typed": typed}, path, here),
        root,
    )
    assert page.fill({"typed": typed, "path": path, "here": here}) == expected


MINUTES = st.integers(1, 10_000) | st.just(1)  # one minute has its own plural form


@settings(max_examples=100, deadline=None)
@given(
    language=LANGUAGES,
    first=MINUTES,
    minutes=MINUTES,
    everyone=st.booleans(),
    path=HOSTILE,
    here=HOSTILE,
    root=ROOTS,
)
def test_the_compiled_limit_page_is_the_page_jinja_makes(
    language: str, first: int, minutes: int, everyone: bool, path: str, here: str, root: str
) -> None:
    # Compiled with the minutes of the shape's first page, filled with any of the same form.
    assume(answers.plural_form(language, first) == answers.plural_form(language, minutes))
    page = answers.compiled(
        answers.LIMITED, language, ["minutes"], root, everyone=everyone, count=first
    )
    expected = render_text(
        language,
        answers.LIMITED,
        answers.context(answers.LIMITED, {"minutes": minutes}, path, here, everyone=everyone),
        root,
    )
    assert page.fill({"minutes": minutes, "path": path, "here": here}) == expected


@settings(max_examples=30, deadline=None)
@given(language=LANGUAGES, path=HOSTILE, here=HOSTILE, root=ROOTS)
def test_the_compiled_not_a_code_page_is_the_page_jinja_makes(
    language: str, path: str, here: str, root: str
) -> None:
    page = answers.compiled(answers.MALFORMED, language, [], root)
    expected = render_text(
        language, answers.MALFORMED, answers.context(answers.MALFORMED, {}, path, here), root
    )
    assert page.fill({"path": path, "here": here}) == expected


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("nb", "kommer ikke fra oss"),
        ("nn", "kjem ikkje frå oss"),
        ("en", "did not come from us"),
    ],
)
def test_the_unknown_page_is_served_from_slots_with_its_headers(language: str, words: str) -> None:
    for typed in ("ABCD-2345-WXYZ", "<b>&amp;</b>"):  # the second use is filled in, unchecked
        page = answers.unknown(language, typed, "/kontroll", "/kontroll?kode=x&lang=")
        assert page is not None
        assert page.status == 404
        text = page.body.decode()
        assert words in text
        assert f'<html lang="{language}">' in text
        assert "<b>" not in text
        headers = dict(page.headers)
        assert headers[b"content-length"] == b"%d" % len(page.body)
        for name, value in SECURITY_HEADERS.items():
            assert headers[name.lower().encode()] == value.encode()


def test_the_limit_page_says_how_long_to_wait_and_sends_retry_after() -> None:
    # One minute and several in turn: each plural form is a shape of its own.
    for retry, wait in ((30, "1 minutt "), (600, "10 minutter"), (60, "1 minutt "), (601, "11 m")):
        decision = Decision(False, "verify_ip", 11.0, retry)
        page = answers.limited("nb", decision, "/kontroll", "/kontroll?kode=x&lang=")
        assert page is not None
        assert page.status == 429
        assert f"Du har gjort mange forsøk på kort tid. Vent {wait}" in page.body.decode()
        assert dict(page.headers)[b"retry-after"] == str(retry).encode()


@pytest.mark.parametrize(
    ("language", "one", "several"),
    [
        ("nb", "Prøv igjen om 1 minutt.", "Prøv igjen om 2 minutter."),
        ("nn", "Prøv igjen om 1 minutt.", "Prøv igjen om 2 minutt."),
        ("en", "Try again in 1 minute.", "Try again in 2 minutes."),
    ],
)
def test_the_limit_of_everyone_together_does_not_blame_the_visitor(
    language: str, one: str, several: str
) -> None:
    for retry, words in ((60, one), (120, several), (59, one)):
        decision = Decision(False, "verify_all", 601.0, retry)
        page = answers.limited(language, decision, "/kontroll", "/kontroll?lang=", everyone=True)
        assert page is not None
        text = page.body.decode()
        assert words in text
        assert "mange forsøk" not in text
        assert "many attempts" not in text


def test_text_that_is_not_a_code_gets_the_form_with_the_fields_error() -> None:
    page = answers.malformed("nb", "/kontroll", "/kontroll?kode=PRH8&lang=")
    assert page is not None
    assert page.status == 400
    text = page.body.decode()
    assert "Koden er ikke skrevet riktig. Sjekk at du har skrevet av alle tegnene." in text
    assert 'id="kode-feil"' in text
    assert 'aria-invalid="true"' in text
    assert 'value=""' in text  # the text typed is not shown again
    assert "kommer ikke fra oss" not in text
