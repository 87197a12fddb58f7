"""`varsel altinn`: messages in Altinn for the units e-mail did not reach (docs/altinn.md)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from varsel.cli import State, err, out
from varsel.cli_output import CAMPAIGN_ID, COUNT, NorskGroup

# Made here rather than imported: cli.py imports this module at its end, and a decorator taken
# from a module still being imported has no type mypy can see.
pass_state = click.make_pass_decorator(State)
EX_TEMPFAIL = 75  # a run Altinn cut short: cron or an operator runs it again later

# The range of VARSEL_ALTINN_CONCURRENCY: each request in flight is a thread.
CONCURRENCY = click.IntRange(1, 64)


@click.group(cls=NorskGroup)
def altinn() -> None:
    """Altinn 3 Correspondence, for enheter uten brukbar e-post (av med mindre den er slått på)."""


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int], None]]:
    from varsel.progress import count_bar

    with count_bar(label, "meldinger", err) as advance:
        yield advance


@altinn.command("send")
@click.argument("campaign_id", type=CAMPAIGN_ID, metavar="KAMPANJE")
@click.option("--limit", type=COUNT, help="Send høyst så mange nå.")
@click.option(
    "--concurrency",
    type=CONCURRENCY,
    help="Forespørsler på en gang; det samme som VARSEL_ALTINN_CONCURRENCY.",
)
@click.option(
    "--no-approval",
    is_flag=True,
    help="Send uten godkjenning med fire øyne (logges; VARSEL_ALLOW_NO_APPROVAL=false forbyr det).",
)
@click.option("--json", "as_json", is_flag=True, help="Skriv ut ett JSON-objekt.")
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
    """Send kampanjens meldinger i Altinn; trygt å kjøre igjen, ingenting sendes to ganger.

    Som `campaign send` krever den at kampanjen er godkjent med fire øyne (eller --no-approval).
    """
    from varsel.altinn import send
    from varsel.altinn_client import AltinnConfig
    from varsel.audit import cli_actor
    from varsel.send_gate import authorise_send

    AltinnConfig.from_settings(state.settings)  # settings first: nothing audited if off
    authorise_send(
        state.db,
        state.settings,
        campaign_id,
        actor=cli_actor(),
        no_approval=no_approval,
        channel="altinn",
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
@click.argument("campaign_id", type=CAMPAIGN_ID, metavar="KAMPANJE")
@click.option(
    "--concurrency",
    type=CONCURRENCY,
    help="Forespørsler på en gang; det samme som VARSEL_ALTINN_CONCURRENCY.",
)
@click.option("--json", "as_json", is_flag=True, help="Skriv ut ett JSON-objekt.")
@pass_state
@click.pass_context
def altinn_poll(
    ctx: click.Context, state: State, campaign_id: int, concurrency: int | None, as_json: bool
) -> None:
    """Spør Altinn hvilke meldinger som er publisert (levert), og hvilke som feilet."""
    from varsel.altinn_poll import poll

    with _progress(f"Henter status fra Altinn for kampanje {campaign_id}") as progress:
        result = poll(
            state.db, state.settings, campaign_id, concurrency=concurrency, progress=progress
        )
    out.print(json.dumps(result.as_dict()) if as_json else result.summary(), soft_wrap=True)
    if result.interrupted:
        ctx.exit(EX_TEMPFAIL)


@altinn.command("status")
@click.argument("campaign_id", type=CAMPAIGN_ID, metavar="KAMPANJE")
@click.option("--json", "as_json", is_flag=True, help="Skriv ut ett JSON-objekt.")
@pass_state
def altinn_status(state: State, campaign_id: int, as_json: bool) -> None:
    """Kampanjens meldinger i Altinn etter tilstand, og hvorfor de som feilet, feilet."""
    from varsel.altinn import altinn_counts, altinn_failures
    from varsel.campaign import get_campaign
    from varsel.i18n import fmt_int

    get_campaign(state.db, campaign_id)
    counts = altinn_counts(state.db, campaign_id)
    failures = altinn_failures(state.db, campaign_id)
    if as_json:
        failed = [{"orgnr": o, "reason": r, "altinn_reply": raw} for o, r, raw in failures]
        out.print(
            json.dumps({"campaign_id": campaign_id, **counts, "failures": failed}), soft_wrap=True
        )
        return
    out.print(
        f"Kampanje {campaign_id}: {fmt_int(counts['delivered'])} levert i Altinn, "
        f"{fmt_int(counts['accepted'])} venter på publisering, {fmt_int(counts['unsent'])} "
        f"ikke tatt imot ennå, {fmt_int(counts['failed'])} feilet.",
        soft_wrap=True,
    )
    for orgnr, reason, _ in failures:
        out.print(f"  {orgnr}  {reason}", soft_wrap=True)
