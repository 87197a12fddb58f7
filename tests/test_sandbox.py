from __future__ import annotations

import jinja2
import pytest
from jinja2.sandbox import SecurityError

from helpers import sandbox_refusal
from varsel.sandbox import operator_sandbox


def test_an_operator_template_groups_the_orgnr_and_keeps_its_last_newline() -> None:
    env = operator_sandbox()
    template = env.from_string("{% if true %}\nOrg.nr. {{ n | orgnr }}\n{% endif %}\n")
    assert template.render(n="974760673") == "Org.nr. 974 760 673\n"
    assert template.render(n="12345") == "Org.nr. 12345\n"  # not nine: as written


def test_a_misspelt_field_is_an_error_not_a_gap() -> None:
    env = operator_sandbox()
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("Hei {{ organisation_nmae }}").render(organisation_name="X")


def test_a_template_cannot_reach_python_or_change_what_recipients_share() -> None:
    env = operator_sandbox()
    with pytest.raises(SecurityError):
        env.from_string("{{ ''.__class__.__mro__ }}").render()
    shared = ["a"]
    with pytest.raises(SecurityError):
        env.from_string("{{ fields.append('b') }}").render(fields=shared)
    assert shared == ["a"]


def test_html_is_escaped_only_when_asked_and_the_kind_is_kept() -> None:
    class Mine(jinja2.sandbox.ImmutableSandboxedEnvironment):
        pass

    env = operator_sandbox(Mine, autoescape=True)
    assert isinstance(env, Mine)
    assert env.from_string("{{ v }}").render(v="<b>") == "&lt;b&gt;"
    assert operator_sandbox().from_string("{{ v }}").render(v="<b>") == "<b>"


def test_a_power_too_large_to_compute_is_refused_at_once() -> None:
    # 9 ** 99999999 held the GIL for minutes: every thread of the web process stopped with it.
    env = operator_sandbox()
    assert env.from_string("{{ (2 ** 4096) is number }}").render() == "True"
    with pytest.raises(SecurityError) as caught:
        env.from_string("{{ 2 ** 4097 }}").render()
    assert str(caught.value) == "tallet blir for stort (over 4096 bit)"
    with pytest.raises(SecurityError, match="for stort"):
        env.from_string("{{ 9 ** 99999999 }}").render()
    with pytest.raises(SecurityError, match="for stort"):
        env.from_string(
            "{% set ns = namespace(x=3) %}{% for i in range(20) %}{% set ns.x = ns.x * ns.x %}"
            "{% endfor %}"
        ).render()


def test_loops_inside_loops_stop_after_100000_turns_in_all() -> None:
    env = operator_sandbox()
    inner = "{% for i in range(1000) %}{% for j in range(N) %}{% endfor %}{% endfor %}ok"
    assert env.from_string(inner.replace("N", "99")).render() == "ok"  # 1000 + 99,000 turns
    with pytest.raises(SecurityError) as caught:
        env.from_string(inner.replace("N", "100")).render()  # 101,000 turns
    assert str(caught.value) == "malen går for mange runder i løkker (over 100000)"


def test_lipsum_is_not_offered() -> None:
    # lipsum(1, min=10**9) makes a gigabyte of placeholder text, which no message needs.
    with pytest.raises(jinja2.UndefinedError, match="'lipsum' is undefined"):
        operator_sandbox().from_string("{{ lipsum(1) }}").render()


def test_what_a_render_makes_and_writes_in_all_is_bounded() -> None:
    # Each text short enough, but 100,000 turns of them: ten gigabytes made, or written out.
    made = '{% for i in range(100000) %}{% set n = ("x" * 100000)|length %}{% endfor %}'
    assert sandbox_refusal(made) == "malen lager for mye tekst i alt (over 10000000 tegn)"
    listed = '{{ range(100000)|map("center", 99999)|list|length }}'
    assert sandbox_refusal(listed) == "malen lager for mye tekst i alt (over 10000000 tegn)"
    written = '{% set x = "x" * 100000 %}{% for i in range(100000) %}{{ x }}{% endfor %}'
    assert sandbox_refusal(written) == "malen skriver for mye tekst (over 1000000 tegn)"
    # No loop at all: each macro writes the one before it ten times over.
    macros = '{% set x = "x" * 99999 %}{% macro m0() %}{{ x }}{% endmacro %}' + "".join(
        f"{{% macro m{n + 1}() %}}{f'{{{{ m{n}() }}}}' * 10}{{% endmacro %}}" for n in range(6)
    )
    assert (
        sandbox_refusal(macros + "{{ m6() }}") == "malen skriver for mye tekst (over 1000000 tegn)"
    )
