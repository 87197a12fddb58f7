"""`varsel audit ...`: check the audit log's hash chain, and read it."""

from __future__ import annotations

import json

import click
from rich.markup import escape

from varsel.audit import Action
from varsel.cli import State, out, pass_state


@click.group()
def audit() -> None:
    """The hash-chained audit log of what operators did."""


@audit.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_state
@click.pass_context
def audit_verify(ctx: click.Context, state: State, as_json: bool) -> None:
    """Check every entry's hash and link; exit status 1 names the first broken entry."""
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
    "--action", type=click.Choice([a.value for a in Action]), help="Only this kind of entry."
)
@click.option("--actor", help="Only entries by this user (or cli:LOGIN, system).")
@click.option("--object", "obj", metavar="OBJECT", help="Only about this, e.g. campaign:3.")
@click.option("--since", metavar="DATE", help="From this date or time (UTC), e.g. 2025-03-01.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=200, show_default=True, help="The last N."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines, one entry each.")
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
    """Show audit entries, oldest first, filtered."""
    from varsel.audit import entries

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
        detail = escape(e.detail) if e.detail != "{}" else ""
        out.print(
            f"{e.seq:>6}  {e.at[:19].replace('T', ' ')}  {escape(e.actor)}  {e.action}  "
            f"{escape(e.object or '')}  {detail}",
            soft_wrap=True,
        )
    if not found:
        out.print("Ingen oppføringer.")
