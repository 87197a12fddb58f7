"""`varsel altinn`: messages in Altinn for the units e-mail did not reach (docs/altinn.md)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from varsel.cli import State, err, out

# Made here rather than imported: cli.py imports this module at its end, and a decorator taken
# from a module still being imported has no type mypy can see.
pass_state = click.make_pass_decorator(State)
EX_TEMPFAIL = 75  # a run Altinn cut short: cron or an operator runs it again later


@click.group()
def altinn() -> None:
    """Altinn 3 Correspondence, for units without usable e-mail (off unless enabled)."""


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int], None]]:
    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.completed:>8,}"),
        TimeElapsedColumn(),
        console=err,
        disable=not err.is_terminal,
    )
    task = bar.add_task(label, total=None)
    with bar:
        yield lambda n: bar.advance(task, n)


@altinn.command("send")
@click.argument("campaign_id", type=int)
@click.option("--limit", type=click.IntRange(min=1), help="Send at most this many now.")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    help="Requests in flight at once; same as VARSEL_ALTINN_CONCURRENCY.",
)
@click.option(
    "--no-approval",
    is_flag=True,
    help="Send without four-eyes approval (audited; VARSEL_ALLOW_NO_APPROVAL=false forbids it).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_state
@click.pass_context
def altinn_send(
    ctx: click.Context,
    state: State,
    campaign_id: int,
    limit: int | None,
    concurrency: int | None,
    no_approval: bool,
    as_json: bool,
) -> None:
    """Send the campaign's Altinn messages; safe to run again, nothing is sent twice.

    Like `campaign send`, it needs the campaign's four-eyes approval (or --no-approval).
    """
    from varsel.altinn import send
    from varsel.altinn_client import AltinnConfig
    from varsel.approval import authorise_send
    from varsel.audit import cli_actor

    AltinnConfig.from_settings(state.settings)  # settings first: nothing audited if off
    authorise_send(
        state.db, state.settings, campaign_id, actor=cli_actor(), no_approval=no_approval
    )
    with _progress(f"Sender til Altinn for kampanje {campaign_id}") as progress:
        result = send(
            state.db,
            state.settings,
            campaign_id,
            limit=limit,
            concurrency=concurrency,
            progress=progress,
        )
    out.print(json.dumps(result.as_dict()) if as_json else result.summary(), soft_wrap=True)
    if result.interrupted:
        ctx.exit(EX_TEMPFAIL)


@altinn.command("poll")
@click.argument("campaign_id", type=int)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    help="Requests in flight at once; same as VARSEL_ALTINN_CONCURRENCY.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_state
@click.pass_context
def altinn_poll(
    ctx: click.Context, state: State, campaign_id: int, concurrency: int | None, as_json: bool
) -> None:
    """Ask Altinn which messages are published (delivered) or failed."""
    from varsel.altinn_poll import poll

    with _progress(f"Henter status fra Altinn for kampanje {campaign_id}") as progress:
        result = poll(
            state.db, state.settings, campaign_id, concurrency=concurrency, progress=progress
        )
    out.print(json.dumps(result.as_dict()) if as_json else result.summary(), soft_wrap=True)
    if result.interrupted:
        ctx.exit(EX_TEMPFAIL)


@altinn.command("status")
@click.argument("campaign_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_state
def altinn_status(state: State, campaign_id: int, as_json: bool) -> None:
    """Altinn messages of the campaign by state, and why the failed ones failed."""
    from varsel.altinn import altinn_counts, altinn_failures
    from varsel.campaign import get_campaign

    get_campaign(state.db, campaign_id)
    counts = altinn_counts(state.db, campaign_id)
    failures = altinn_failures(state.db, campaign_id)
    if as_json:
        failed = [{"orgnr": o, "reason": r} for o, r in failures]
        out.print(json.dumps({"campaign_id": campaign_id, **counts, "failures": failed}))
        return
    out.print(
        f"Kampanje {campaign_id}: {counts['delivered']} levert i Altinn, {counts['accepted']} "
        f"venter på publisering, {counts['unsent']} ikke tatt imot ennå, {counts['failed']} "
        "feilet."
    )
    for orgnr, reason in failures:
        out.print(f"  {orgnr}  {reason}", soft_wrap=True)
