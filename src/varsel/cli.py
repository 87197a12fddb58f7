"""The varsel command line: each command parses, calls one library function, and prints."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import click
from rich.console import Console

from varsel.config import Settings
from varsel.db import Database, connect
from varsel.errors import VarselError

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


class VarselGroup(click.Group):
    """Renders every VarselError once, as one line, with its exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VarselError as e:
            from rich.markup import escape

            # Messages quote TOML tables ("[segment]"): text, not Rich markup to be swallowed.
            err.print(f"[bold red]varsel:[/] {escape(e.message)}", markup=True, soft_wrap=True)
            ctx.exit(e.exit_status)
        except KeyboardInterrupt:
            err.print("varsel: avbrutt")
            ctx.exit(130)


class State:
    """What every command gets: the settings, and the store opened on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._db: Database | None = None

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = connect(self.settings.database_url)
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


_pass_state = click.make_pass_decorator(State)
_P = ParamSpec("_P")
_R = TypeVar("_R")


def pass_state(f: Callable[Concatenate[State, _P], _R]) -> Callable[_P, _R]:
    """Give a command the State as its first argument."""
    # A function with a declared type rather than a bare assignment: the cli_* modules import
    # it while this module is still loading, and mypy cannot infer types across that cycle.
    return _pass_state(f)


@click.group(cls=VarselGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "database_url",
    metavar="URL",
    help="Store: a SQLite file (default ./varsel.db) or postgresql:// URL. "
    "Same as VARSEL_DATABASE_URL.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Settings file (TOML). Same as VARSEL_CONFIG.",
)
@click.version_option(package_name="varsel")
@click.pass_context
def cli(ctx: click.Context, database_url: str | None, config_file: Path | None) -> None:
    """varsel: reach every business in an area with preventive security information."""
    state = State(Settings.load(config_file=config_file, database_url=database_url))
    ctx.obj = state
    ctx.call_on_close(state.close)


@cli.command()
@pass_state
def init(state: State) -> None:
    """Create the store, or bring its schema up to date."""
    from varsel.db import applied_versions, connect, migrate_store

    db = connect(state.settings.database_url, migrate=False)
    try:
        applied = migrate_store(db)
        versions = sorted(applied_versions(db))
    finally:
        db.close()
    if applied:
        out.print(f"Lagret er klart: migrering {', '.join(map(str, applied))} utført.")
    else:
        out.print(f"Lageret er allerede oppdatert (skjemaversjon {max(versions)}).")


@cli.command()
def settings() -> None:
    """List every setting with its environment variable, default and meaning."""
    for name, env, default, help_text in Settings.describe():
        out.print(f"[bold]{name}[/]  ({env}, standard: {default!r})\n    {help_text}")


# -- campaigns --------------------------------------------------------------------------


@cli.group()
def campaign() -> None:
    """Create, check, send and follow campaigns."""


@campaign.command("create")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--user", "user_name", metavar="NAME", help="The author (an account); same as VARSEL_USER."
)
@pass_state
def campaign_create(state: State, file: Path, user_name: str | None) -> None:
    """Create a campaign from its TOML file as its author; prints the new campaign's id last.

    Asks for the author's password and TOTP code (or reads VARSEL_PASSWORD and VARSEL_TOTP).
    """
    from varsel.accounts import Role
    from varsel.campaign import create_campaign
    from varsel.campaign_spec import load_spec
    from varsel.cli_users import signed_in

    load_spec(file, state.settings)  # a wrong file is reported before anyone types a code
    author = signed_in(state, user_name, Role.AUTHOR)
    result = create_campaign(state.db, state.settings, file, created_by=author.name)
    out.print(result.summary())


@campaign.command("approve")
@click.argument("campaign_id", type=int)
@click.option(
    "--user", "user_name", metavar="NAME", help="The approver (not the author); VARSEL_USER."
)
@click.option(
    "--digest",
    metavar="HEX",
    help="Approve only if the campaign still has this fingerprint (as --show printed it).",
)
@click.option("--show", is_flag=True, help="Print the fingerprint and its parts; approve nothing.")
@pass_state
def campaign_approve(
    state: State, campaign_id: int, user_name: str | None, digest: str | None, show: bool
) -> None:
    """Approve a campaign as it is now (four eyes); asks for the approver's password and code.

    VARSEL_PASSWORD and VARSEL_TOTP are read instead of asking, for scripts. Check the
    campaign, note the digest --show prints, and approve with --digest: if the campaign
    changed in between, nothing is approved.
    """
    from varsel.accounts import Role
    from varsel.approval import PARTS, approve, check_digest, fingerprint
    from varsel.cli_users import signed_in

    if show:
        shown = fingerprint(state.db, campaign_id)
        for part, name in PARTS.items():
            out.print(f"{name:<26} {shown.parts[part]}", soft_wrap=True)
        out.print(f"{'fingeravtrykk':<26} {shown.digest}", soft_wrap=True)
        out.print(
            f"Godkjenn nettopp dette: varsel campaign approve {campaign_id} --user NAVN "
            f"--digest {shown.digest}",
            soft_wrap=True,
        )
        return
    if digest is not None:
        check_digest(digest, campaign_id)  # a mistyped digest is told before anyone signs in
    approver = signed_in(state, user_name, Role.APPROVER)
    approval = approve(state.db, state.settings, campaign_id, approver, expected_digest=digest)
    out.print(
        f"Kampanje {campaign_id} er godkjent av {approval.approved_by} "
        f"(fingeravtrykk {approval.digest[:16]}). Endres den, må den godkjennes på nytt."
    )


@campaign.command("send")
@click.argument("campaign_id", type=int)
@click.option("--smtp", "smtp_url", metavar="URL", help="Relay; same as VARSEL_SMTP_URL.")
@click.option("--connections", type=click.IntRange(min=1), help="SMTP connections.")
@click.option("--rate", type=click.FloatRange(min=0.01), help="Messages per second at most.")
@click.option(
    "--no-approval",
    is_flag=True,
    help="Send without four-eyes approval (audited; VARSEL_ALLOW_NO_APPROVAL=false forbids it).",
)
@pass_state
def campaign_send(
    state: State,
    campaign_id: int,
    smtp_url: str | None,
    connections: int | None,
    rate: float | None,
    no_approval: bool,
) -> None:
    """Send an approved campaign; safe to run again after a crash (see docs/delivery.md)."""
    from varsel.approval import authorise_send, send_checked
    from varsel.audit import cli_actor
    from varsel.campaign import get_campaign
    from varsel.channel.smtp import RelayConfig
    from varsel.progress import counts_bar
    from varsel.sender import SendOptions

    relay = RelayConfig.from_url(smtp_url or state.settings.smtp_url)
    spec = get_campaign(state.db, campaign_id).spec
    if not no_approval:  # refuse at once, before the progress bar (send_checked checks again)
        from varsel.approval import require_approved

        require_approved(state.db, campaign_id)
    elif not state.settings.allow_no_approval:
        authorise_send(state.db, state.settings, campaign_id, actor=cli_actor(), no_approval=True)
    options = SendOptions.for_campaign(spec, connections=connections, rate_per_second=rate)
    total = int(
        state.db.scalar(
            "SELECT count(*) FROM deliveries WHERE campaign_id = ? AND channel = 'email'",
            (campaign_id,),
        )
        or 0
    )
    with counts_bar(f"Sender kampanje {campaign_id}", total, err) as progress:
        report = send_checked(
            state.db,
            state.settings,
            campaign_id,
            actor=cli_actor(),
            no_approval=no_approval,
            relay=relay,
            options=options,
            progress=progress,
        )
    out.print(report.summary())


@campaign.command("status")
@click.argument("campaign_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_state
def campaign_status(state: State, campaign_id: int, as_json: bool) -> None:
    """Counts per delivery state, and the deliveries in doubt."""
    from varsel.sender import status

    report = status(state.db, campaign_id)
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        return
    c = report.counts
    out.print(f"Kampanje {campaign_id} «{report.campaign.name}»: {report.campaign.status.value}")
    for key, label in (
        ("queued", "i kø"),
        ("claimed", "under sending"),
        ("sent", "sendt"),
        ("deferred", "utsatt"),
        ("failed", "feilet"),
        ("suppressed", "sperret"),
        ("in_doubt", "usikre"),
        ("cancelled", "kansellert"),
    ):
        out.print(f"  {label:<14} {c[key]:>8}")
    for d in report.in_doubt:
        out.print(f"  usikker: leveranse {d.id} til {d.address} ({', '.join(d.units)})")


@campaign.command("lint")
@click.argument("campaign_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_state
@click.pass_context
def campaign_lint(ctx: click.Context, state: State, campaign_id: int, as_json: bool) -> None:
    """Check a campaign before sending; exit status 2 if anything must be fixed."""
    from rich.markup import escape

    from varsel.audit import cli_actor
    from varsel.lint import Severity, lint_campaign

    report = lint_campaign(state.db, state.settings, campaign_id, actor=cli_actor())
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        for f in report.findings:
            error = f.severity is Severity.ERROR
            label = "[bold red]feil[/]    " if error else "[yellow]advarsel[/]"
            # Messages quote TOML tables and templates: "[links]" is text, not Rich markup.
            out.print(f"{label} {escape(f.message)}", soft_wrap=True)
        out.print(report.summary(), soft_wrap=True)
    if not report.ok:
        ctx.exit(2)


@campaign.command("preview")
@click.argument("campaign_id", type=int)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for <lang>.eml, .txt and .html (made if missing).",
)
@pass_state
def campaign_preview(state: State, campaign_id: int, out_dir: Path) -> None:
    """Write each language's message, signed as it would be sent, to a sample recipient."""
    from varsel.lint import preview_campaign

    for path in preview_campaign(state.db, state.settings, campaign_id, out_dir):
        click.echo(str(path))


def _set_status(state: State, campaign_id: int, status_name: str) -> None:
    from varsel.audit import cli_actor
    from varsel.campaign import CampaignStatus, set_status

    campaign_obj = set_status(state.db, campaign_id, CampaignStatus(status_name), actor=cli_actor())
    from varsel.leases import notify

    notify(state.db, campaign_id)  # running workers hear it at once (PostgreSQL)
    out.print(f"Kampanje {campaign_id} er nå «{campaign_obj.status.value}».")


@campaign.command("start")
@click.argument("campaign_id", type=int)
@click.option(
    "--no-approval",
    is_flag=True,
    help="Without four-eyes approval (audited; VARSEL_ALLOW_NO_APPROVAL=false forbids it).",
)
@pass_state
def campaign_start(state: State, campaign_id: int, no_approval: bool) -> None:
    """Hand an approved campaign to the `varsel worker` processes (PostgreSQL); they start now."""
    from varsel.approval import authorise_send
    from varsel.audit import cli_actor
    from varsel.leases import require_postgresql, start_campaign

    require_postgresql(state.db)
    authorise_send(
        state.db, state.settings, campaign_id, actor=cli_actor(), no_approval=no_approval
    )
    start_campaign(state.db, campaign_id, state.settings.worker_lease_seconds)
    out.print(f"Kampanje {campaign_id} sendes nå av arbeiderne; følg med: varsel worker --status")


@campaign.command("pause")
@click.argument("campaign_id", type=int)
@pass_state
def campaign_pause(state: State, campaign_id: int) -> None:
    """Pause sending; a running sender stops within a second."""
    _set_status(state, campaign_id, "paused")


@campaign.command("resume")
@click.argument("campaign_id", type=int)
@pass_state
def campaign_resume(state: State, campaign_id: int) -> None:
    """Allow a paused campaign to be sent again (then run `campaign send`)."""
    _set_status(state, campaign_id, "ready")


@campaign.command("cancel")
@click.argument("campaign_id", type=int)
@pass_state
def campaign_cancel(state: State, campaign_id: int) -> None:
    """Stop a campaign for good: what is not sent yet is cancelled."""
    _set_status(state, campaign_id, "cancelled")


@campaign.command("resend-in-doubt")
@click.argument("campaign_id", type=int)
@pass_state
def campaign_resend_in_doubt(state: State, campaign_id: int) -> None:
    """Queue the in-doubt deliveries again: the operator accepts they may arrive twice."""
    from varsel.audit import cli_actor
    from varsel.campaign import get_campaign
    from varsel.outbox import resend_in_doubt

    get_campaign(state.db, campaign_id)
    n = resend_in_doubt(state.db, campaign_id, actor=cli_actor())
    out.print(
        f"{n} usikre leveranser er lagt i kø igjen; kjør «varsel campaign send {campaign_id}»."
    )


# -- keys -------------------------------------------------------------------------------


@cli.group()
def keys() -> None:
    """DKIM signing keys."""


@keys.command("generate")
@click.option("--domain", required=True, help="The sender's domain, e.g. nsr-org.no.")
@click.option("--selector", default="varsel", show_default=True)
@click.option(
    "--algorithm", type=click.Choice(["rsa", "ed25519"]), default="rsa", show_default=True
)
@pass_state
def keys_generate(state: State, domain: str, selector: str, algorithm: str) -> None:
    """Write a key pair and print the DNS TXT record to publish."""
    from varsel.dkim import generate_key
    from varsel.keys import key_dir

    files = generate_key(key_dir(state.settings), domain, selector, algorithm)
    out.print(f"Privat nøkkel: {files.private_key}")
    out.print("Publiser denne DNS-posten:")
    click.echo(files.dns_record())


@cli.command()
@click.option("--host", help="Address to listen on; same as VARSEL_WEB_HOST.")
@click.option("--port", type=click.IntRange(1, 65535), help="Port; same as VARSEL_WEB_PORT.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Processes serving the pages (the limits are kept in the store, so they hold for all; "
    "more than one needs VARSEL_SECRET_KEY).",
)
@pass_state
def serve(state: State, host: str | None, port: int | None, workers: int) -> None:
    """Serve the public pages (verify, register, feedback, document, unsubscribe)."""
    import os

    from varsel.errors import ConfigError
    from varsel.web import listening_socket
    from varsel.web import serve as serve_app

    settings = state.settings
    if workers > 1 and not settings.secret_key:
        # Each process would make up its own key: a visitor's address would be hashed
        # differently in each, and the per-visitor limits would count each process apart.
        raise ConfigError(
            f"--workers {workers} krever VARSEL_SECRET_KEY: uten den har hver prosess sin egen "
            "nøkkel, og grensene per besøkende, lenkene og skjemaene holder ikke på tvers av dem"
        )
    host = host or settings.web_host
    port = port or settings.web_port
    sock = listening_socket(host, port)  # first: a port in use changes nothing
    try:
        # The schema brought up to date once, here, rather than by every worker at once.
        connect(settings.database_url).close()
    except BaseException:
        sock.close()
        raise
    # Each worker builds the app from the environment: give it the settings file and store
    # this command was given, so every worker reads what this process read.
    top = click.get_current_context().find_root().params
    if top.get("config_file"):
        os.environ["VARSEL_CONFIG"] = str(Path(top["config_file"]).resolve())
    if top.get("database_url"):
        os.environ["VARSEL_DATABASE_URL"] = top["database_url"]
    out.print(
        f"Offentlige sider på {settings.public_base_url} (lytter på "
        f"{host}:{port}, {workers} prosess(er))."
    )
    serve_app(
        "varsel.web:app_from_environment",
        host=host,
        port=port,
        workers=workers,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        sock=sock,
    )


from varsel.cli_altinn import altinn  # noqa: E402
from varsel.cli_audit import audit  # noqa: E402 - the command groups import State from here
from varsel.cli_bounces import bounces  # noqa: E402
from varsel.cli_letters import letters  # noqa: E402
from varsel.cli_registry import registry, segment  # noqa: E402
from varsel.cli_report import report  # noqa: E402
from varsel.cli_users import user  # noqa: E402
from varsel.cli_worker import worker  # noqa: E402

cli.add_command(registry)
cli.add_command(segment)
cli.add_command(user)
cli.add_command(audit)
cli.add_command(letters)
cli.add_command(report)
cli.add_command(bounces)
cli.add_command(worker)
cli.add_command(altinn)


def main() -> None:
    """Entry point of the `varsel` console script."""
    cli.main(prog_name="varsel", standalone_mode=True)


if __name__ == "__main__":
    main()
    sys.exit(0)
