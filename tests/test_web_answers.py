"""The unknown-code and limit pages from slots: the text Jinja makes, sent with their headers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from varsel.ratelimit import Decision
from varsel.web import answers
from varsel.web.site import SECURITY_HEADERS, render_text

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


@settings(max_examples=60, deadline=None)
@given(language=LANGUAGES, minutes=st.integers(1, 10_000), path=HOSTILE, here=HOSTILE, root=ROOTS)
def test_the_compiled_limit_page_is_the_page_jinja_makes(
    language: str, minutes: int, path: str, here: str, root: str
) -> None:
    page = answers.compiled(answers.LIMITED, language, ["minutes"], root)
    expected = render_text(
        language,
        answers.LIMITED,
        answers.context(answers.LIMITED, {"minutes": minutes}, path, here),
        root,
    )
    assert page.fill({"minutes": minutes, "path": path, "here": here}) == expected


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
    for retry, minutes in ((30, 1), (600, 10), (601, 11)):
        decision = Decision(False, "verify_ip", 11.0, retry)
        page = answers.limited("nb", decision, "/kontroll", "/kontroll?kode=x&lang=")
        assert page is not None
        assert page.status == 429
        assert f"Vent {minutes} minutter" in page.body.decode()
        assert dict(page.headers)[b"retry-after"] == str(retry).encode()
