"""The default Altinn and letter texts read right: verb agreement and the typing instruction."""

from __future__ import annotations

import importlib.resources
from typing import Any

import jinja2
import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment


def render(path: str, **fields: str) -> str:
    """A default template, rendered as altinn_message and letters do (strict, trimmed)."""
    env = ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    source = (importlib.resources.files("varsel") / "templates" / path).read_text("utf-8")
    context: dict[str, Any] = {
        "sender": {"organisation": "Oslo politidistrikt"},
        "fields": fields,
        "document_title": "Sikkerhetsråd",
        "document_url": "https://www.politiet.no/d.pdf",
        "verify_url": "https://www.politiet.no/varsel/kontroll",
        "code": "ABCD-2345-WXYZ",
        "reason": "no_email",
    }
    return env.from_string(source).render(context)


@pytest.mark.parametrize("path", ["altinn/en.md.j2", "letter/en.txt.j2"])
def test_two_senders_are_sending_one_is(path: str) -> None:
    assert "Oslo politidistrikt and NSR are sending" in render(path, partner="NSR")
    assert "Oslo politidistrikt is sending" in render(path)


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("altinn/nb.md.j2", "i adressefeltet i nettleseren, nøyaktig slik adressen står her."),
        ("altinn/nn.md.j2", "i adressefeltet i nettlesaren, nøyaktig slik adressa står her."),
        ("altinn/en.md.j2", "in your browser's address bar, exactly as it is written here."),
        ("letter/nb.txt.j2", "i adressefeltet i nettleseren, nøyaktig slik adressen står her."),
        ("letter/nn.txt.j2", "i adressefeltet i nettlesaren, nøyaktig slik adressa står her."),
        ("letter/en.txt.j2", "in your browser's address bar, exactly as it is written here."),
    ],
)
def test_the_address_is_to_be_typed_exactly(path: str, said: str) -> None:
    text = render(path).replace("**", "")  # Altinn's Markdown shows the code in bold
    assert said in text
    assert "kontrollkoden ABCD-2345-WXYZ" in text or "verification code ABCD-2345-WXYZ" in text
