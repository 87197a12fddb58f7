from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

WEB = Path(__file__).resolve().parent.parent / "src" / "varsel" / "web"


def used_messages() -> set[str]:
    """Every message id the web templates and views use (Bokmål)."""
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    options = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    found = extract_from_dir(
        str(WEB), method_map, options, keywords={"_": None, "N_": None, "gettext": None}
    )
    return {message for _, _, message, _, _ in found if isinstance(message, str)}


@pytest.mark.parametrize("language", ["nn", "en"])
def test_every_message_is_translated(language: str) -> None:
    path = resources.files("varsel.web") / "locale" / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as f:
        catalog = read_po(f)
    translated = {m.id for m in catalog if m.id and m.string}
    assert sorted(used_messages() - translated) == []
