"""`varsel worker`: a sender worker on PostgreSQL, and `varsel worker --status`."""

from __future__ import annotations

import json

import click

from varsel.cli import State, out, pass_state


@click.command("worker")
@click.option(
    "--campaign",
    "campaign_id",
    type=int,
    help="Send only this campaign (once `campaign start` handed it over); stop when done.",
)
@click.option("--smtp", "smtp_url", metavar="URL", help="Relay; same as VARSEL_SMTP_URL.")
@click.option("--connections", type=click.IntRange(1, 512), help="SMTP connections of this worker.")
@click.option(
    "--build-processes",
    type=click.IntRange(min=0),
    help="Processes that build and sign messages (0: in this process; default: one per core).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    help="Serve Prometheus /metrics on 127.0.0.1:PORT; same as VARSEL_WORKER_METRICS_PORT.",
)
@click.option("--status", "show_status", is_flag=True, help="Show the workers and stop.")
@click.option("--json", "as_json", is_flag=True, help="With --status: print one JSON object.")
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
    """Send campaigns handed to the workers (PostgreSQL); run as many as you like, anywhere.

    Stops on SIGTERM or Ctrl-C after the messages on the wire; what it held goes back.
    Hand a campaign to the workers with `varsel campaign start ID` (or --campaign ID).
    """
    from varsel.leases import require_postgresql

    require_postgresql(state.db)
    if show_status:
        _status(state, as_json)
        return
    from varsel.channel.smtp import RelayConfig
    from varsel.worker import WorkerOptions, run_worker

    relay = RelayConfig.from_url(smtp_url or state.settings.smtp_url)
    options = WorkerOptions.from_settings(
        state.settings,
        campaign_id=campaign_id,
        connections=connections,
        build_processes=build_processes,
        metrics_port=metrics_port,
    )
    report = run_worker(state.settings, relay, options)
    out.print(report.summary())


_STATES = {"running": "kjører", "stopped": "stoppet", "lost": "borte"}


def _status(state: State, as_json: bool) -> None:
    from rich.table import Table

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
            f"{w.sent:,}",
            f"{w.rate:,.0f}",
            f"{w.leases:,}",
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
            c.status,
            *(f"{n[k]:,}" for k in ("queued", "claimed", "sent", "deferred", "failed", "in_doubt")),
        )
    if report.campaigns:
        out.print(campaigns)
