from __future__ import annotations

import pytest
from markupsafe import Markup, escape

from varsel.web.templating import TranslateLiterals, _fast_escape, environment, gettext


@pytest.mark.parametrize(
    ("language", "expected"),
    [("nb", "Sjekk om en melding fra oss er ekte"), ("nn", "Sjekk om ei melding frå oss er ekte")],
)
def test_literal_translations_are_compiled_into_the_templates(language: str, expected: str) -> None:
    env = environment(language)
    assert any(isinstance(e, TranslateLiterals) for e in env.extensions.values())
    source = env.loader.get_source(env, "verify.html")[0]  # type: ignore[union-attr]
    compiled = env.compile(source, raw=True)
    assert repr(expected)[1:-1] in compiled
    # Nynorsk: the Bokmål msgid is gone; nothing is looked up when the page is rendered.
    assert (language == "nb") == ("Sjekk om en melding fra oss er ekte" in compiled)
    assert gettext(language, "Sjekk om en melding fra oss er ekte") == expected


def test_a_literal_with_values_is_translated_once_and_its_values_escaped() -> None:
    env = environment("nn")
    template = env.from_string(
        '{{ _("Meldingen med koden %(code)s kommer ikke fra oss.", code=code) }}'
    )
    assert "translated" in env.compile(
        '{{ _("Meldingen med koden %(code)s kommer ikke fra oss.", code=code) }}', raw=True
    )
    assert template.render(code="<b>") == (
        gettext("nn", "Meldingen med koden %(code)s kommer ikke fra oss.") % {"code": "&lt;b&gt;"}
    )


@pytest.mark.parametrize(
    ("language", "expected"), [("nb", "/kontroll"), ("en", "/kontroll?lang=en")]
)
def test_links_in_the_language_are_folded_into_the_templates(language: str, expected: str) -> None:
    env = environment(language)
    source = "<a href=\"{{ with_lang('/kontroll') }}\">"
    assert repr(expected)[1:-1] in env.compile(source, raw=True)
    assert env.from_string(source).render() == f'<a href="{expected}">'


@pytest.mark.parametrize(
    ("language", "expected"), [("nb", "6. januar 2026"), ("en", "6 January 2026")]
)
def test_a_date_is_the_day_in_oslo(language: str, expected: str) -> None:
    env = environment(language)
    # 23:30 UTC is half past midnight in Oslo, the next day.
    assert env.from_string("{{ sent|date }}").render(sent="2026-01-05T23:30:00.000Z") == expected


class _Html:
    def __html__(self) -> str:
        return "<i>trusted</i>"


@pytest.mark.parametrize(
    "value", ["a < b & 'c' \"d\"", "plain", Markup("<b>safe</b>"), 5, None, _Html()]
)
def test_values_are_escaped_as_markupsafe_does(value: object) -> None:
    env = environment("nb")
    assert env.from_string("{{ value }}").render(value=value) == str(escape(value))
    page = env.get_template("genuine.html")
    assert page.root_render_func.__globals__["escape"] is _fast_escape
