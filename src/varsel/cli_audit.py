"""`varsel audit ...`: check the audit log's hash chain, and read it."""

from __future__ import annotations

import json

import click

from varsel.audit import Action
from varsel.cli import State, out, pass_state
from varsel.cli_output import COUNT, NorskGroup


@click.group(cls=NorskGroup)
def audit() -> None:
    """Revisjonsloggen over hva operatørene har gjort, lenket med hasher."""


@audit.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Skriv ut ett JSON-objekt.")
@pass_state
@click.pass_context
def audit_verify(ctx: click.Context, state: State, as_json: bool) -> None:
    """Sjekk hash og lenke i hver oppføring; ved feil: status 1 og den første ødelagte."""
    from varsel.audit import verify

    result = verify(state.db)
    if as_json:
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    else:
        out.print(result.summary(), soft_wrap=True)
    if not result.ok:
        ctx.exit(1)


@audit.command("show")
@click.option(
    "--action", type=click.Choice([a.value for a in Action]), help="Bare denne typen oppføring."
)
@click.option("--actor", help="Bare oppføringer fra denne brukeren (eller cli:LOGIN, system).")
@click.option("--object", "obj", metavar="OBJEKT", help="Bare om dette, for eksempel campaign:3.")
@click.option(
    "--since", metavar="DATO", help="Fra denne datoen eller tiden (UTC), for eksempel 2025-03-01."
)
@click.option("--limit", type=COUNT, default=200, show_default=True, help="De siste N.")
@click.option("--json", "as_json", is_flag=True, help="Skriv ut JSON-linjer, én per oppføring.")
@pass_state
def audit_show(
    state: State,
    action: str | None,
    actor: str | None,
    obj: str | None,
    since: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Vis oppføringer i revisjonsloggen, eldste først, filtrert."""
    from varsel.audit import entries, printable

    found = entries(
        state.db,
        action=Action(action) if action else None,
        actor=actor,
        object=obj,
        since=since,
        limit=limit,
    )
    if as_json:
        for e in found:
            click.echo(json.dumps(e.as_dict(), ensure_ascii=False))
        return
    for e in found:
        detail = e.detail if e.detail != "{}" else ""
        line = f"{e.seq:>6}  {e.at[:19].replace('T', ' ')}  {e.actor}  {e.action}  "
        line += f"{e.object or ''}  {detail}"
        out.print(printable(line), soft_wrap=True)
    if not found:
        out.print("Ingen oppføringer.")
