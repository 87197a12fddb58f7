from __future__ import annotations

import jinja2
import pytest
from jinja2.sandbox import SecurityError

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
