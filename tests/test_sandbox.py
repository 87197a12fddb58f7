from __future__ import annotations

import time

import jinja2
import pytest
from jinja2.sandbox import SecurityError
from markupsafe import Markup

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


def test_a_repetition_is_bounded() -> None:
    env = operator_sandbox()
    assert env.from_string('{{ "-" * 40 }}').render() == "-" * 40
    with pytest.raises(SecurityError) as caught:
        env.from_string('{{ (["x"] * 1000) * 1000 }}').render()
    assert str(caught.value) == "teksten eller listen blir for lang (over 100000)"


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


def _refusal(source: str) -> str:
    """The sandbox's refusal of the template, which must come within a fraction of a second."""
    started = time.process_time()
    with pytest.raises(SecurityError) as caught:
        operator_sandbox().from_string(source).render()
    # The bounds trip before the work: a template that got to allocate first takes seconds.
    assert time.process_time() - started < 0.5
    return str(caught.value)


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
    assert _refusal(DOUBLED.replace("STEP", step)) == TOO_LONG + what


def test_a_list_that_doubles_is_refused_and_nested_lists_are_not_written_out_whole() -> None:
    lists = DOUBLED.replace('"x"', '["x"]').replace("STEP", "ns.s + ns.s")
    assert _refusal(lists) == TOO_LONG + "«+»"
    html = operator_sandbox(autoescape=True).from_string(DOUBLED.replace("STEP", "m + ns.s"))
    with pytest.raises(SecurityError, match="med «\\+»"):
        html.render(m=Markup("x") * 60000)
    # [l, l] fifteen times over is 65,534 items, but some 200,000 characters written out.
    nested = (
        DOUBLED.replace("STEP", "[ns.s, ns.s]")
        .replace("ns.s|length", "X")
        .replace("range(40)", "range(15)")
    )
    assert _refusal(nested.replace("X", "ns.s")) == TOO_LONG + "«{{ }}»"
    assert _refusal(nested.replace("X", "ns.s|string")) == TOO_LONG + "«|string»"
    assert _refusal(nested.replace("X", 'ns.s ~ ""')) == TOO_LONG + "«~»"
    assert _refusal(nested.replace("X", '"%s"|format(ns.s)')) == TOO_LONG + "«|format»"


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
    assert _refusal(source) == TOO_LONG + what


def test_what_a_render_makes_and_writes_in_all_is_bounded() -> None:
    # Each text short enough, but 100,000 turns of them: ten gigabytes made, or written out.
    made = '{% for i in range(100000) %}{% set n = ("x" * 100000)|length %}{% endfor %}'
    assert _refusal(made) == "malen lager for mye tekst i alt (over 10000000 tegn)"
    listed = '{{ range(100000)|map("center", 99999)|list|length }}'
    assert _refusal(listed) == "malen lager for mye tekst i alt (over 10000000 tegn)"
    written = '{% set x = "x" * 100000 %}{% for i in range(100000) %}{{ x }}{% endfor %}'
    assert _refusal(written) == "malen skriver for mye tekst (over 1000000 tegn)"
    # No loop at all: each macro writes the one before it ten times over.
    macros = '{% set x = "x" * 99999 %}{% macro m0() %}{{ x }}{% endmacro %}' + "".join(
        f"{{% macro m{n + 1}() %}}{f'{{{{ m{n}() }}}}' * 10}{{% endmacro %}}" for n in range(6)
    )
    assert _refusal(macros + "{{ m6() }}") == "malen skriver for mye tekst (over 1000000 tegn)"


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


NESTED = (
    "{% set ns = namespace(t=[1]) %}{% for i in range(40) %}{% set ns.t = STEP %}{% endfor %}"
    "{{ ns.t == ns.t }}"
)
TOO_HEAVY = "listen blir for stor (over 100000 elementer) med "


@pytest.mark.parametrize(
    ("step", "what"),
    [
        ("[ns.t, ns.t]", "«[ ]»"),
        ("(ns.t, ns.t)", "«( )»"),
        ('{"a": ns.t, "b": ns.t}', "«{ }»"),
        ("[ns.t] + [ns.t]", "«+»"),
        ("[ns.t] * 2", "«*»"),
        ("dict(a=ns.t, b=ns.t)", "«dict()»"),
        ("{}.fromkeys(range(2), ns.t)", "«.fromkeys()»"),
        ("cycler(ns.t, ns.t).items", "«cycler()»"),
        ('range(2)|map(attribute="x", default=ns.t)|list', "«|list»"),
        ('range(2)|map(attribute="x", default=ns.t)|sort', "«|sort»"),
        ('range(2)|map(attribute="x", default=ns.t)|batch(2)|first', "«|batch»"),
        ("[0]|batch(3, fill_with=ns.t)|first", "«|batch»"),
        ("[0]|slice(3, fill_with=ns.t)|list", "«|list»"),
    ],
)
def test_a_container_that_holds_another_twice_is_refused_at_the_bound(step: str, what: str) -> None:
    # Forty cheap turns make 2 ** 40 items: comparing, hashing, sorting or writing them out
    # holds the GIL for hours, in C where no other bound can stop it.
    assert _refusal(NESTED.replace("STEP", step)) == TOO_HEAVY + what


def test_a_container_doubled_by_a_macro_calling_itself_is_refused() -> None:
    # No namespace, no literal: each call hands its varargs (or kwargs) on twice.
    doubled = (
        "{% macro f(n) %}{% if n %}{{ f(n - 1, ARGS) }}{% else %}{{ varargs == kwargs }}"
        "{% endif %}{% endmacro %}{{ f(40, 1) }}"
    )
    assert _refusal(doubled.replace("ARGS", "varargs, varargs")) == TOO_HEAVY + "«f()»"
    assert _refusal(doubled.replace("ARGS", "a=kwargs, b=kwargs")) == TOO_HEAVY + "«f()»"
    # Twenty batches nested in one expression: 2 ** 21 items without any loop.
    nested = "{{ " + "([0]|batch(3, fill_with=" * 20 + "[1]" + ")|first)" * 20 + " == 1 }}"
    assert _refusal(nested) == TOO_HEAVY + "«|batch»"


def test_what_containers_weigh_in_all_is_counted_against_what_a_render_makes() -> None:
    # Each list weighs 60,000, under the bound, but 200 of them are 12,000,000.
    heavy = (
        "{% set t = range(60000)|list %}{% for i in range(200) %}{% set u = [t, i] %}{% endfor %}"
    )
    assert _refusal(heavy) == "malen lager for mye tekst i alt (over 10000000 tegn)"


@pytest.mark.parametrize(
    ("use", "what"),
    [("t|safe", "«|safe»"), ("t|wordcount", "«|wordcount»"), ("t is lower", "«is lower»")],
)
def test_a_filter_or_test_that_writes_a_list_out_as_text_is_checked_first(
    use: str, what: str
) -> None:
    # 1,000 references to one text of 99,999 characters: 100 megabytes as str(t).
    assert _refusal('{% set t = ["x" * 99999] * 1000 %}{{ USE }}'.replace("USE", use)) == (
        TOO_LONG + what
    )


def test_templates_with_lists_dicts_and_loops_still_render() -> None:
    env = operator_sandbox()
    source = (
        "{% set ns = namespace(rows=[]) %}"
        '{% set kinds = {"AS": "aksjeselskap", "ENK": "enkeltperson"} %}'
        "{% for u in units %}{% set ns.rows = ns.rows + [(u.name, kinds[u.form])] %}{% endfor %}"
        "{% for name, kind in ns.rows|sort %}{{ name }} ({{ kind }}){{ ', ' if not loop.last }}"
        "{% endfor %}|{% for form, group in units|groupby('form') %}{{ form }}={{ group|length }} "
        "{% endfor %}|{{ kinds|dictsort|first }}|{{ [1, 2, 3]|batch(2, fill_with=0)|list }}|"
        "{{ dict(a=[1], b=[1])|length }}|{{ (range(99999)|list)[-1] }}|"
        "{{ [[1, 2]] * 3 == [[1, 2], [1, 2], [1, 2]] }}"
    )
    units = [
        {"name": "Snekker Olsen", "form": "ENK"},
        {"name": "Bærum Bakeri AS", "form": "AS"},
        {"name": "Kafé Blå", "form": "ENK"},
    ]
    assert env.from_string(source).render(units=units) == (
        "Bærum Bakeri AS (aksjeselskap), Kafé Blå (enkeltperson), Snekker Olsen (enkeltperson)|"
        "AS=1 ENK=2 |('AS', 'aksjeselskap')|[[1, 2], [3, 0]]|2|99998|True"
    )
