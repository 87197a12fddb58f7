from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

LIBRARY = Path(__file__).resolve().parent.parent / "src" / "varsel"
WEB = LIBRARY / "web"


def used_messages() -> set[str]:
    """Every message id the web templates and views use (Bokmål)."""
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    options = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    found = extract_from_dir(
        str(WEB), method_map, options, keywords={"_": None, "N_": None, "gettext": None}
    )
    return {message for _, _, message, _, _ in found if isinstance(message, str)}


def used_plurals() -> set[tuple[str, str]]:
    """Every message with plural forms the templates (ngettext) and views (answers.ngettext_noop)
    use, as (singular, plural)."""
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    options = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    keywords = {"ngettext_noop": (1, 2), "ngettext": (1, 2)}
    found = extract_from_dir(str(WEB), method_map, options, keywords=keywords)
    return {(m[0], m[1]) for _, _, m, _, _ in found if isinstance(m, tuple) and len(m) == 2}


def library_messages() -> set[str]:
    """Every message id the library marks for the console (varsel.errors' Text and N_)."""
    method_map = [("web/**", "ignore"), ("**.py", "python")]
    found = extract_from_dir(str(LIBRARY), method_map, keywords={"Text": None, "N_": None})
    return {message for _, _, message, _, _ in found if isinstance(message, str)}


@pytest.mark.parametrize("language", ["nn", "en"])
def test_every_message_is_translated(language: str) -> None:
    path = resources.files("varsel.web") / "locale" / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as f:
        catalog = read_po(f)
    translated = {m.id for m in catalog if m.id and m.string and all(m.string)}
    assert sorted(used_messages() - translated) == []
    assert sorted(library_messages() - translated) == []
    assert sorted(used_plurals() - translated) == []


def test_the_plural_messages_are_found() -> None:
    found = used_plurals()
    assert (
        "Mange sjekker koder akkurat nå. Prøv igjen om %(minutes)s minutt.",
        "Mange sjekker koder akkurat nå. Prøv igjen om %(minutes)s minutter.",
    ) in found  # a view's (answers.py)
    # A template's (document.html):
    assert ("Lenken virker i %(num)s time.", "Lenken virker i %(num)s timer.") in found


def test_the_library_messages_are_found() -> None:
    # The extraction reads the library's Text(...) and N_(...) calls, with their named values.
    found = library_messages()
    assert "kampanje %(campaign)s finnes ikke" in found
    assert "kontoen «%(name)s» er deaktivert" in found  # an N_ in a table (signin)
    assert "malene" in found  # approval.PARTS


@pytest.mark.parametrize("language", ["nb", "nn", "en"])
def test_every_translation_fills_in_the_values_its_message_names(language: str) -> None:
    # A page fills a translation with the message's values (gettext(id) % values): a
    # translation that names another value, or drops one, would fail there or lose it.
    path = resources.files("varsel.web") / "locale" / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as f:
        catalog = read_po(f)
    named = re.compile(r"%\((\w+)\)[sdr]")
    wrong = []
    for m in catalog:
        # A message with plural forms: every id and form names the values the first id names.
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        wanted = sorted(named.findall(ids[0]))
        wrong += [
            (m.id, t)
            for t in (*ids, *strings)
            if ids[0] and t and sorted(named.findall(t)) != wanted
        ]
    assert wrong == []


@pytest.mark.parametrize("language", ["nn", "en"])
def test_a_render_error_without_its_sample_delivery_is_translated(language: str) -> None:
    # The linter shows the message factory's render errors ("%(where)s: …") without the
    # sample's made-up delivery: the rest of each such id is looked up on its own.
    from babel.messages.extract import extract_from_file

    from varsel.lint import SAMPLE_WHERE

    found = extract_from_file("python", str(LIBRARY / "message.py"), keywords={"Text": None})
    rests = {
        message.removeprefix(SAMPLE_WHERE)
        for _, message, _, _ in found
        if isinstance(message, str) and message.startswith(SAMPLE_WHERE)
    }
    assert rests == {"malfeil: %(error)s", "emnet er tomt"}
    path = resources.files("varsel.web") / "locale" / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as f:
        catalog = read_po(f)
    translated = {m.id for m in catalog if m.id and m.string}
    assert sorted(rests - translated) == []


def test_an_operating_systems_reason_inside_a_message_is_translated_too() -> None:
    import errno

    from varsel.errors import Text, os_reason
    from varsel.web.console_auth import translate

    why = os_reason(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"))
    message = Text("forbindelsen ble brutt: %(why)s", why=why)
    assert message == "forbindelsen ble brutt: tilkoblingen ble avvist"  # the CLI's Bokmål
    assert translate("nn", message) == "tilkoplinga vart broten: tilkoplinga vart avvist"
    assert translate("en", message) == "the connection was broken: connection refused"
    # A reason the table does not know keeps the system's own words.
    assert os_reason(OSError(errno.EBADF, "Bad file descriptor")) == "Bad file descriptor"


def _source_text() -> str:
    files = [p for p in LIBRARY.rglob("*") if p.is_file() and p.suffix in (".py", ".html")]
    return "\n".join(p.read_text("utf-8") for p in files)


@pytest.mark.parametrize("language", ["nb", "nn", "en"])
def test_no_catalog_entry_outlives_its_message(language: str) -> None:
    # A message changed in the code leaves its old entry behind, translated and unused: the
    # catalogs grow stale text a translator would keep up for nothing. Each entry is found by
    # the extraction, or stands in the code as it is (a message kept as a table's value).
    path = resources.files("varsel.web") / "locale" / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as f:
        catalog = read_po(f)
    used = used_messages() | library_messages() | {one for one, _ in used_plurals()}
    source = _source_text()
    ids = [m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id]
    assert len(ids) > 900
    assert [i for i in ids if i not in used and i not in source] == []
