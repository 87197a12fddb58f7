"""`varsel suppress ...`: the suppression list, for the operators who answer the phone.

A business that asks not to be contacted, a sole proprietor who objects, an address that
bounced and has since been fixed: the list is read and changed here, and every read and change
is recorded in the audit log with the operating-system login as its actor (`cli:<login>`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click
from rich.table import Table

from varsel.cli import State, out, pass_state
from varsel.cli_output import NorskGroup, print_table

if TYPE_CHECKING:
    from varsel.suppression import Entry, SuppressionKind

_OSLO = ZoneInfo("Europe/Oslo")
# Keyed by SuppressionKind's values: the library is imported when a command runs, not when
# `varsel --help` starts (its orgnr check brings the registry's readers along).
_KIND_LABELS = {"address": "adresse", "unit": "virksomhet"}
_NAMED = {"address": "Adressen", "unit": "Organisasjonsnummeret"}


def _oslo(iso: str) -> str:
    """A stored UTC time as Oslo's clock shows it, to the minute."""
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return moment.astimezone(_OSLO).strftime("%Y-%m-%d %H:%M")


def _target(state: State, address: str | None, orgnr: str | None) -> tuple[SuppressionKind, str]:
    """The kind and stored value of what --address or --orgnr names (exactly one of them)."""
    from varsel.suppression import SuppressionError, SuppressionKind, normalise_value

    if address is not None and orgnr is None:
        kind, typed = SuppressionKind.ADDRESS, address
    elif orgnr is not None and address is None:
        kind, typed = SuppressionKind.UNIT, orgnr
    else:
        raise SuppressionError("oppgi enten --address ADRESSE eller --orgnr NUMMER")
    allow = state.settings.allow_test_domains
    return kind, normalise_value(kind, typed, allow_test_domains=allow)


def _listed_target(
    state: State, address: str | None, orgnr: str | None
) -> tuple[SuppressionKind, str]:
    """What `remove` names: as _target, or a value the list holds as typed that today's rules
    refuse (stored under other rules, such as a test domain allowed then), so it can go."""
    from varsel.suppression import SuppressionError, SuppressionKind, find

    try:
        return _target(state, address, orgnr)
    except SuppressionError:
        typed = address if orgnr is None else orgnr if address is None else None
        if typed is not None:
            kind = SuppressionKind.ADDRESS if address is not None else SuppressionKind.UNIT
            entry = find(state.db, kind, typed.strip())
            if entry is not None:
                return kind, entry.value
        raise


def _actor() -> str:
    from varsel.audit import cli_actor

    return cli_actor()


# What add and remove name: one address or one business.
address_option = click.option("--address", metavar="ADRESSE", help="En e-postadresse.")
orgnr_option = click.option(
    "--orgnr", metavar="NUMMER", help="En virksomhet: organisasjonsnummeret (9 siffer)."
)


@click.group(cls=NorskGroup)
def suppress() -> None:
    """Sperrelisten: adresser og virksomheter som ingen kampanje skal kontakte."""


@suppress.command("add")
@address_option
@orgnr_option
@click.option("--note", metavar="TEKST", help="Hvorfor, for eksempel «ringte 3. mars».")
@pass_state
def suppress_add(state: State, address: str | None, orgnr: str | None, note: str | None) -> None:
    """Sett en adresse eller virksomhet på sperrelisten; gjelder alle kampanjer straks."""
    from varsel.suppression import REASON_LABELS, add_manual, shown_value

    kind, value = _target(state, address, orgnr)
    result = add_manual(state.db, kind, value, actor=_actor(), note=note)
    e = result.entry
    if result.added:
        out.print(
            f"{_NAMED[kind]} {shown_value(kind, value)} er satt på sperrelisten.", soft_wrap=True
        )
    else:
        out.print(
            f"{_NAMED[kind]} {shown_value(kind, value)} stod allerede på sperrelisten "
            f"({REASON_LABELS[e.reason]}, {_oslo(e.created_at)}).",
            soft_wrap=True,
        )


@suppress.command("list")
@click.option("--address", "addresses", is_flag=True, help="Bare adresser.")
@click.option("--orgnr", "units", is_flag=True, help="Bare virksomheter.")
@click.option(
    "--search",
    metavar="TEKST",
    help="Bare oppføringer som inneholder teksten: en adresse, en del av en (for eksempel "
    "domenet) eller et organisasjonsnummer, med eller uten mellomrom.",
)
@click.option("--json", "as_json", is_flag=True, help="Skriv ut en JSON-liste.")
@pass_state
def suppress_list(
    state: State, addresses: bool, units: bool, search: str | None, as_json: bool
) -> None:
    """Vis sperrelisten, nyeste først (personopplysninger: logges)."""
    from varsel.suppression import SuppressionKind, list_for_operator

    kind = None
    if addresses != units:
        kind = SuppressionKind.ADDRESS if addresses else SuppressionKind.UNIT
    output = "json" if as_json else "table"
    listing = list_for_operator(state.db, kind, actor=_actor(), output=output, search=search)
    found = listing.entries
    if as_json:
        click.echo(json.dumps([e.as_dict() for e in found], ensure_ascii=False, indent=2))
        return
    said = " ".join((search or "").split())  # the search on one line, as typed
    if not found:
        empty = "Sperrelisten er tom." if kind is None else "Ingen oppføringer."
        out.print(f"Ingen oppføringer passer til «{said}»." if search else empty, soft_wrap=True)
        return
    print_table(out, _table(found))  # into a file: whole addresses, not folded ones
    if search is not None:
        total = f"{listing.matched} av {listing.total} oppføringer"
        out.print(f"{total} passer til «{said}».", soft_wrap=True)


def _table(found: list[Entry]) -> Table:
    from varsel.suppression import REASON_LABELS, shown_value, source_text

    table = Table("Type")
    # Folded on a narrow terminal, never cut short: the operator checks the value, or copies
    # it into `suppress remove` (which takes an IDN domain in either form).
    table.add_column("Verdi", overflow="fold")
    table.add_column("Årsak")
    table.add_column("Kilde", overflow="fold")
    table.add_column("Merknad", overflow="fold")
    table.add_column("Lagt inn")
    for e in found:
        table.add_row(
            _KIND_LABELS[e.kind],
            shown_value(e.kind, e.value),
            REASON_LABELS[e.reason],
            source_text(e.source),
            e.note or "",
            _oslo(e.created_at),
        )
    return table


@suppress.command("remove")
@address_option
@orgnr_option
@click.option("--note", metavar="TEKST", help="Hvorfor, for eksempel «adressen er rettet».")
@pass_state
def suppress_remove(state: State, address: str | None, orgnr: str | None, note: str | None) -> None:
    """Ta en adresse eller virksomhet av sperrelisten: neste kampanje kan kontakte den igjen."""
    from varsel.suppression import REASON_LABELS, remove_manual, shown_value

    kind, value = _listed_target(state, address, orgnr)
    e = remove_manual(state.db, kind, value, actor=_actor(), note=note)
    out.print(
        f"{_NAMED[kind]} {shown_value(kind, value)} er tatt av sperrelisten "
        f"(stod der siden {_oslo(e.created_at)}: {REASON_LABELS[e.reason]}).",
        soft_wrap=True,
    )
