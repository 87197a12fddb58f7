"""Compiled templates (fixed bytes and slots) write exactly what Jinja renders, for anyone."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape

from varsel import codes
from varsel.message import (
    MessageError,
    MessageFactory,
    MessageSpec,
    Recipient,
    UnitRef,
)
from varsel.message_slots import escape_text
from varsel.testing import sample_spec as make_spec

CODE = codes.new_code()


# Registry text at its worst: markup, quotes, entities, marker look-alikes, quoted-printable
# trouble (=, dots and spaces at line starts and ends, long lines), controls and line breaks.
_PIECES = [
    "BÆRUM BAKERI AS",
    "Kafé «Blå» & Co",
    "<b>Fet</b>",
    '"sitat"',
    "O'Hara",
    "&amp;",
    "=?utf-8?q?x?=",
    "\ue000&0\ue001",
    ".",
    "  ",
    "\t",
    "a=b",
    "x" * 90,
    "ø" * 40,
    "\r\n",
    "\x00",
    "\u202e",
    "{{ code }}",
    " ",
]
_TEXT = st.lists(
    st.one_of(st.sampled_from(_PIECES), st.text(max_size=12)), min_size=1, max_size=6
).map("".join)
_UNIT = st.builds(
    UnitRef,
    orgnr=st.one_of(st.from_regex(r"\A[0-9]{9}\Z"), _TEXT),
    name=_TEXT,
    municipality=st.one_of(st.none(), st.sampled_from(["Oslo", "Bærum", "Ås"]), _TEXT),
)
_RECIPIENT = st.builds(
    Recipient,
    delivery_id=st.integers(1, 10**9),
    address=st.sampled_from(["post@bakeri.no", "post@xn--brum-bakeri-98a.no", "a.b@c.no"]),
    units=st.lists(_UNIT, min_size=1, max_size=4).map(tuple),
    language=st.sampled_from(["nb", "nn", "en"]),
    code=st.just(CODE),
    unsubscribe_token=st.from_regex(r"\A[A-Za-z0-9._~-]{1,40}\Z"),
)


def _outcome(factory: MessageFactory, recipient: Recipient) -> tuple[Any, ...]:
    try:
        return factory.bodies(recipient)
    except MessageError as e:
        return ("error", str(e))


def _pair(**changes: Any) -> tuple[MessageFactory, MessageFactory]:
    spec = make_spec(**changes)
    return MessageFactory(spec, None), MessageFactory(spec, None, compile_templates=False)


COMPILED, JINJA = _pair()


@given(_RECIPIENT)
@settings(max_examples=400, deadline=None)
def test_compiled_default_templates_write_what_jinja_renders(recipient: Recipient) -> None:
    assert _outcome(COMPILED, recipient) == _outcome(JINJA, recipient)


def test_default_templates_compile_in_every_language() -> None:
    for language in ("nb", "nn", "en"):
        for count in (1, 3):
            units = tuple(UnitRef(f"91234567{i}", f"FIRMA {i}", "Oslo") for i in range(count))
            recipient = Recipient(1, "post@firma.no", units, language, CODE, "tok")
            COMPILED.bodies(recipient)
            assert COMPILED._plans[language, count] is not None


def _templates(text: str, html: str, subject: str = "Til {{ sender.organisation }}") -> MessageSpec:
    spec = make_spec()
    languages = ("nb", "nn", "en")
    return dataclasses.replace(
        spec,
        subjects=dict.fromkeys(languages, subject),
        text_templates=dict.fromkeys(languages, text),
        html_templates=dict.fromkeys(languages, html),
    )


# Templates that do more with a recipient's value than write it out: Jinja renders them.
REFUSED = [
    "{{ unit.name|upper }}",
    "{{ unit.name|length }}",
    "{% if unit.municipality %}i {{ unit.municipality }}{% endif %}",
    "{% if unit.municipality is none %}ukjent{% endif %}",
    "{{ unit.name ~ '!' }}",
    "{{ unit.name[0] }}",
    "{{ unit.name.startswith('B') }}",
    "{{ '%s' % code }}",
    "{{ code == 'x' }}",
    "{{ units|map(attribute='name')|join(', ') }}",
    "{{ units|sort(attribute='name')|map(attribute='name')|list }}",
    "{% set x %}{{ unit.name }}{% endset %}{{ x|upper }}",
    "{% macro m(v) %}{{ v }}{% endmacro %}{{ m(unit.name)|upper }}",
    "{% filter upper %}{{ unit.name }}{% endfilter %}",
    "{{ unit }}",
    "{{ unit.name|default('x') }}",
    "{% for c in code %}{{ c }}{% endfor %}",
    "{{ unit.name is string }}",
    "{{ unit['name'] ~ '' }}",
    "Til {{ unit.name }}\ue000&0\ue001",
    "{{ unit.name }}\r\n{{ code }}",
]
# Templates that use values only by writing them out: compiled.
COMPILED_FORMS = [
    "Til {{ unit.name }} ({{ unit.orgnr|orgnr }}) i {{ unit.municipality }}\n{{ code }}",
    "{% for u in units %}{{ loop.index }}. {{ u.name }}{% if not loop.last %}, {% endif %}"
    "{% endfor %}\n{{ organisation_names }}",
    "{{ 'én' if units|length == 1 else units|length }} {{ unit['name'] }} {{ address }}",
    "{% set n = unit.name %}{{ n }}{{ n }}\n{{ unsubscribe_url|link }}\n",
    "{{ units|reverse|map(attribute='name')|first }} {{ (units|first).orgnr }}",
    "{{ subject }}\n\n\n{{ code }}",
    "{{ code }}",
]


_FACTORIES: dict[str, tuple[MessageFactory, MessageFactory]] = {}


def _factories(text: str) -> tuple[MessageFactory, MessageFactory]:
    """Compiled and Jinja factories for a text template and its HTML twin (made once)."""
    if text not in _FACTORIES:
        html = "<p>" + text.replace("\n", "<br>\n") + "</p>"
        spec = _templates(text, html, "{{ unit.name }} {{ code }}")
        _FACTORIES[text] = (
            MessageFactory(spec, None),
            MessageFactory(spec, None, compile_templates=False),
        )
    return _FACTORIES[text]


@pytest.mark.parametrize("text", REFUSED + COMPILED_FORMS)
@given(recipient=_RECIPIENT)
@settings(max_examples=30, deadline=None)
def test_any_template_writes_what_jinja_renders(text: str, recipient: Recipient) -> None:
    compiled, jinja = _factories(text)
    assert _outcome(compiled, recipient) == _outcome(jinja, recipient)


@pytest.mark.parametrize(
    ("text", "compiles"), [(t, False) for t in REFUSED[:-2]] + [(t, True) for t in COMPILED_FORMS]
)
def test_which_templates_compile(text: str, compiles: bool) -> None:
    factory = MessageFactory(_templates(text, "<p>{{ code }}</p>"), None)
    recipient = Recipient(1, "post@firma.no", (UnitRef("912345678", "A", None),), "nb", CODE, "t")
    _outcome(factory, recipient)
    assert (factory._plans["nb", 1] is not None) is compiles


def test_a_value_inside_markup_or_unescaped_falls_back_to_jinja() -> None:
    for html in (
        '<p title="{{ unit.name }}">x</p>',
        "{% autoescape false %}{{ unit.name }}{% endautoescape %}",
        "<style>p { content: '{{ unit.name }}' }</style>",
    ):
        compiled = MessageFactory(_templates("{{ code }}", html), None)
        jinja = MessageFactory(_templates("{{ code }}", html), None, compile_templates=False)
        unit = UnitRef("912345678", "<a href='https://evil.test/'>x</a>", None)
        recipient = Recipient(1, "post@firma.no", (unit,), "nb", CODE, "t")
        assert _outcome(compiled, recipient) == _outcome(jinja, recipient)
        assert compiled._plans["nb", 1] is None


def test_template_errors_read_the_same_when_compiled() -> None:
    spec = _templates("{{ nothing }}", "<p>{{ code }}</p>")
    recipient = Recipient(5, "post@firma.no", (UnitRef("912345678", "A", None),), "nb", CODE, "t")
    with pytest.raises(MessageError, match="levering 5: malfeil: 'nothing' is undefined"):
        MessageFactory(spec, None).bodies(recipient)


@given(st.text())
def test_escape_text_is_markupsafe_escape(text: str) -> None:
    assert escape_text(text) == str(escape(text))
