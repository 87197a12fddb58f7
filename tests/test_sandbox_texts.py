from __future__ import annotations

import jinja2
import pytest
from jinja2.sandbox import SecurityError
from markupsafe import Markup

from helpers import sandbox_refusal
from varsel.sandbox import operator_sandbox


def test_a_repetition_is_bounded() -> None:
    env = operator_sandbox()
    assert env.from_string('{{ "-" * 40 }}').render() == "-" * 40
    with pytest.raises(SecurityError) as caught:
        env.from_string('{{ (["x"] * 1000) * 1000 }}').render()
    assert str(caught.value) == "teksten eller listen blir for lang (over 100000)"


DOUBLED = (
    '{% set ns = namespace(s="x") %}{% for i in range(40) %}{% set ns.s = STEP %}{% endfor %}'
    "{{ ns.s|length }}"
)
TOO_LONG = "teksten eller listen blir for lang (over 100000) med "


@pytest.mark.parametrize(
    ("step", "what"),
    [
        ("ns.s ~ ns.s", "«~»"),
        ("ns.s + ns.s", "«+»"),
        ("[ns.s, ns.s]|join", "«|join»"),
        ('ns.s|replace("x", "xx")', "«|replace»"),
        ('ns.s.replace("x", "xx")', "«.replace()»"),
        ('(ns.s ~ "\\n" ~ ns.s)|indent(ns.s|length)', "«|indent»"),
        ('(ns.s ~ " " ~ ns.s)|wordwrap(1, wrapstring=ns.s ~ ns.s)', "«|wordwrap»"),
        ("ns.s.center(ns.s|length * 3)", "«.center()»"),
    ],
)
def test_a_text_that_doubles_in_a_loop_is_refused_at_the_bound(step: str, what: str) -> None:
    # 2 ** 40 characters in 40 turns: a terabyte, or a MemoryError in the web process.
    assert sandbox_refusal(DOUBLED.replace("STEP", step)) == TOO_LONG + what


def test_a_list_that_doubles_is_refused_and_nested_lists_are_not_written_out_whole() -> None:
    lists = DOUBLED.replace('"x"', '["x"]').replace("STEP", "ns.s + ns.s")
    assert sandbox_refusal(lists) == TOO_LONG + "«+»"
    html = operator_sandbox(autoescape=True).from_string(DOUBLED.replace("STEP", "m + ns.s"))
    with pytest.raises(SecurityError, match="med «\\+»"):
        html.render(m=Markup("x") * 60000)
    # [l, l] fifteen times over is 65,534 items, but some 200,000 characters written out.
    nested = (
        DOUBLED.replace("STEP", "[ns.s, ns.s]")
        .replace("ns.s|length", "X")
        .replace("range(40)", "range(15)")
    )
    assert sandbox_refusal(nested.replace("X", "ns.s")) == TOO_LONG + "«{{ }}»"
    assert sandbox_refusal(nested.replace("X", "ns.s|string")) == TOO_LONG + "«|string»"
    assert sandbox_refusal(nested.replace("X", 'ns.s ~ ""')) == TOO_LONG + "«~»"
    assert sandbox_refusal(nested.replace("X", '"%s"|format(ns.s)')) == TOO_LONG + "«|format»"


@pytest.mark.parametrize(
    ("source", "what"),
    [
        ('{{ "%999999999s"|format("x") }}', "«|format» «%999999999s»"),
        ('{{ "%.999999999f"|format(1.5) }}', "«|format» «%.999999999f»"),
        ('{{ "%999999999s" % "x" }}', "«%» «%999999999s»"),
        ('{{ "%*s" % (999999999, "x") }}', "«%» «%*s»"),
        ('{{ "%(a)999999999d" % {"a": 1} }}', "«%» «%(a)999999999d»"),
        ('{{ "{:>999999999}".format("x") }}', "«.format()» «>999999999»"),
        ('{{ "{0:{1}}".format("x", 999999999) }}', "«.format()» «999999999»"),
        ('{{ "{a:.999999999f}".format_map({"a": 1.5}) }}', "«.format()» «.999999999f»"),
        ('{{ "x"|center(999999999) }}', "«|center»"),
        ('{{ "x".ljust(999999999) }}', "«.ljust()»"),
        ('{{ "x".zfill(999999999) }}', "«.zfill()»"),
        ('{{ "a\tb".expandtabs(999999999) }}', "«.expandtabs()»"),
        ('{{ "x"|indent(999999999) }}', "«|indent»"),
        ('{{ (1).to_bytes(999999999, "big") }}', "«.to_bytes()»"),
        ('{{ ("x" * 100000).translate({120: "yy"}) }}', "«.translate()»"),
        ("{{ [1]|batch(999999999, fill_with=0)|list }}", "«|batch»"),
        ("{{ [1]|slice(999999999)|list }}", "«|slice»"),
    ],
)
def test_a_width_or_padding_too_wide_is_refused_before_it_is_made(source: str, what: str) -> None:
    # "%999999999s" makes a gigabyte in one step; "%.999999999f" a MemoryError.
    assert sandbox_refusal(source) == TOO_LONG + what


def test_a_truncate_shorter_than_its_end_is_a_template_error_not_an_assertion() -> None:
    env = operator_sandbox()
    assert env.from_string('{{ "x"|truncate(999999999) }}').render() == "x"
    with pytest.raises(jinja2.TemplateError) as caught:
        env.from_string('{{ "abcdefgh"|truncate(2) }}').render()
    assert str(caught.value) == "truncate: lengden (2) er kortere enn slutten «...»"


def test_the_bounded_operations_do_what_jinja_s_own_do() -> None:
    env = operator_sandbox()
    written = (
        '{{ "a" ~ 1 ~ [2] }}|{{ "%s %5.2f %%" % ("a", 1.5) }}|{{ "%-3s|"|format("b") }}'
        '{{ "{} {:>3}".format("c", "d") }}|{{ "ab"|center(6) }}|{{ "a\nb"|indent(2, true) }}|'
        '{{ "aaa bbb\n\nc"|wordwrap(3, wrapstring="/") }}|{{ "xax"|replace("x", "yy", 1) }}|'
        '{{ [1, "b"]|join(", ") }}|{{ [{"n": 1}]|join(attribute="n") }}|'
        '{{ "abcdefgh"|truncate(6, leeway=0) }}|{{ [[1], [2]]|sum(start=[]) }}|'
        '{{ "a\tb".expandtabs(2) }}|{{ ["x", "y"]|string }}|{{ "x".ljust(3) }}|'
        "{{ range(5)|slice(2)|list }}|{{ [1, 2, 3]|batch(2, fill_with=0)|list }}"
    )
    assert env.from_string(written).render() == (
        "a1[2]|a  1.50 %|b  |c   d|  ab  |  a\n  b|aaa/bbb//c|yyax|1, b|1|abc...|[1, 2]|"
        "a b|['x', 'y']|x  |[[0, 1, 2], [3, 4]]|[[1, 2], [3, 0]]"
    )
    html = operator_sandbox(autoescape=True).from_string("{{ a ~ b }}|{{ [a, b]|join }}")
    assert html.render(a=Markup("<b>"), b="<i>") == "<b>&lt;i&gt;|<b>&lt;i&gt;"


@pytest.mark.parametrize(
    ("use", "what"),
    [("t|safe", "«|safe»"), ("t|wordcount", "«|wordcount»"), ("t is lower", "«is lower»")],
)
def test_a_filter_or_test_that_writes_a_list_out_as_text_is_checked_first(
    use: str, what: str
) -> None:
    # 1,000 references to one text of 99,999 characters: 100 megabytes as str(t).
    assert sandbox_refusal('{% set t = ["x" * 99999] * 1000 %}{{ USE }}'.replace("USE", use)) == (
        TOO_LONG + what
    )
