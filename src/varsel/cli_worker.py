"""`varsel worker`: a sender worker on PostgreSQL, and `varsel worker --status`."""

from __future__ import annotations

import json

import click

from varsel.cli import State, err, out, pass_state
from varsel.cli_output import CAMPAIGN_ID, NorskCommand
from varsel.i18n import fmt_int


@click.command("worker", cls=NorskCommand)
@click.option(
    "--campaign",
    "campaign_id",
    type=CAMPAIGN_ID,
    metavar="KAMPANJE",
    help="Send bare denne kampanjen (når `campaign start` har gitt den videre); stopp når ferdig.",
)
@click.option(
    "--smtp", "smtp_url", metavar="URL", help="E-posttjeneren; det samme som VARSEL_SMTP_URL."
)
@click.option(
    "--connections", type=click.IntRange(1, 512), help="SMTP-forbindelser for denne arbeideren."
)
@click.option(
    "--build-processes",
    type=click.IntRange(min=0),
    help="Prosesser som lager og signerer meldinger (0: i denne prosessen; standard: én per "
    "kjerne).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    help="Vis Prometheus /metrics på 127.0.0.1:PORT; det samme som VARSEL_WORKER_METRICS_PORT.",
)
@click.option("--status", "show_status", is_flag=True, help="Vis arbeiderne og stopp.")
@click.option("--json", "as_json", is_flag=True, help="Med --status: skriv ut ett JSON-objekt.")
@pass_state
def worker(
    state: State,
    campaign_id: int | None,
    smtp_url: str | None,
    connections: int | None,
    build_processes: int | None,
    metrics_port: int | None,
    show_status: bool,
    as_json: bool,
) -> None:
    """Send kampanjer gitt til arbeiderne (PostgreSQL); kjør så mange du vil, hvor du vil.

    Stopper ved SIGTERM eller Ctrl-C når meldingene underveis er sendt; det den holdt, går
    tilbake. Gi en kampanje til arbeiderne med `varsel campaign start KAMPANJE` (eller --campaign
    KAMPANJE).
    """
    from varsel.leases import require_postgresql

    require_postgresql(state.dialect)  # before the store is opened: SQLite needs no file
    if show_status:
        _status(state, as_json)
        return
    if as_json:
        raise click.UsageError("--json gjelder bare sammen med --status")
    if campaign_id is not None:
        from varsel.db import connect
        from varsel.leases import waiting_for

        # Checked before the worker registers: a mistyped id leaves no worker row behind,
        # and a worker that will wait says so instead of sitting silent. A connection of its
        # own, closed before the worker opens its four.
        with connect(state.store_url) as db:
            waiting = waiting_for(db, campaign_id)
        if waiting is not None:
            err.print(f"{waiting}.", soft_wrap=True)
    from varsel.channel.smtp_relay import RelayConfig
    from varsel.worker import WorkerOptions, run_worker

    relay = RelayConfig.from_url(smtp_url or state.settings.smtp_url)
    options = WorkerOptions.from_settings(
        state.settings,
        campaign_id=campaign_id,
        connections=connections,
        build_processes=build_processes,
        metrics_port=metrics_port,
    )
    report = run_worker(
        state.settings, relay, options, say=lambda text: err.print(text, soft_wrap=True)
    )
    out.print(report.summary())


_STATES = {"running": "kjører", "stopped": "stoppet", "lost": "borte"}


def _status(state: State, as_json: bool) -> None:
    from rich.table import Table

    from varsel.campaign import STATUS_WORDS, CampaignStatus
    from varsel.leases import worker_status

    report = worker_status(state.db)
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        return
    table = Table(
        "Arbeider", "Tilstand", "Kampanje", "Sendt", "Per s", "Leier", "Puls", title="Arbeidere"
    )
    for w in report.workers:
        table.add_row(
            w.id,
            _STATES[w.state],
            "" if w.campaign_id is None else str(w.campaign_id),
            fmt_int(w.sent),
            fmt_int(round(w.rate)),
            fmt_int(w.leases),
            f"{w.seconds_since_heartbeat:.0f} s",
        )
    out.print(table)
    if not report.workers:
        out.print("Ingen arbeidere har meldt seg den siste timen.")
    campaigns = Table(
        "Kampanje", "Status", "I kø", "Under sending", "Sendt", "Utsatt", "Feilet", "Usikre"
    )
    for c in report.campaigns:
        n = c.counts
        campaigns.add_row(
            f"{c.id} {c.name}",
            STATUS_WORDS[CampaignStatus(c.status)],
            *(
                fmt_int(n[k])
                for k in ("queued", "claimed", "sent", "deferred", "failed", "in_doubt")
            ),
        )
    if report.campaigns:
        out.print(campaigns)
