from __future__ import annotations

import pytest

from helpers import sandbox_refusal
from varsel.sandbox import operator_sandbox

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
    assert sandbox_refusal(NESTED.replace("STEP", step)) == TOO_HEAVY + what


def test_a_container_doubled_by_a_macro_calling_itself_is_refused() -> None:
    # No namespace, no literal: each call hands its varargs (or kwargs) on twice.
    doubled = (
        "{% macro f(n) %}{% if n %}{{ f(n - 1, ARGS) }}{% else %}{{ varargs == kwargs }}"
        "{% endif %}{% endmacro %}{{ f(40, 1) }}"
    )
    assert sandbox_refusal(doubled.replace("ARGS", "varargs, varargs")) == TOO_HEAVY + "«f()»"
    assert sandbox_refusal(doubled.replace("ARGS", "a=kwargs, b=kwargs")) == TOO_HEAVY + "«f()»"
    # Twenty batches nested in one expression: 2 ** 21 items without any loop.
    nested = "{{ " + "([0]|batch(3, fill_with=" * 20 + "[1]" + ")|first)" * 20 + " == 1 }}"
    assert sandbox_refusal(nested) == TOO_HEAVY + "«|batch»"


def test_what_containers_weigh_in_all_is_counted_against_what_a_render_makes() -> None:
    # Each list weighs 60,000, under the bound, but 200 of them are 12,000,000.
    heavy = (
        "{% set t = range(60000)|list %}{% for i in range(200) %}{% set u = [t, i] %}{% endfor %}"
    )
    assert sandbox_refusal(heavy) == "malen lager for mye tekst i alt (over 10000000 tegn)"


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
