"""The varsel command line: each command parses, calls one library function, and prints."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import click
from rich.text import Text

from varsel.cli_output import (
    NorskGroup,
    error_line,
    make_console,
    one_line,
)
from varsel.config import Settings
from varsel.db import Database, connect, normalise_url
from varsel.errors import StoreError, VarselError

# Markup and emoji codes off: names, files and registry text are printed as they are.
out = make_console()
err = make_console(stderr=True)


class VarselGroup(NorskGroup):
    """Renders every VarselError and click usage error once, as one line, with its exit status."""

    group_class = NorskGroup

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as e:  # an unknown option or command at the top
            raise one_line(e) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VarselError as e:
            # Messages quote TOML tables ("[segment]"): text, never Rich markup.
            err.print(error_line(e.message), soft_wrap=True)
            ctx.exit(e.exit_status)
        except click.UsageError as e:  # a subcommand's bad value, missing argument, ...
            raise one_line(e) from None
        except click.Abort:
            err.print(error_line("avbrutt"))
            ctx.exit(1)
        except KeyboardInterrupt:
            err.print(error_line("avbrutt"))
            ctx.exit(130)


class State:
    """What every command gets: the settings, and the store opened on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._db: Database | None = None

    @property
    def dialect(self) -> str:
        """The store's kind, from its URL, without opening it."""
        return normalise_url(self.settings.database_url)[0]

    @property
    def db(self) -> Database:
        """The store; a SQLite file that does not exist is refused (a mistyped --db)."""
        if self._db is None:
            dialect, target = normalise_url(self.settings.database_url)
            if (
                dialect == "sqlite"
                and target != ":memory:"
                and not Path(target).expanduser().exists()
            ):
                raise StoreError(f"lageret {target} finnes ikke (lag det med «varsel init»)")
            self._db = connect(self.settings.database_url)
        return self._db

    @property
    def db_or_new(self) -> Database:
        """The store, made if it does not exist yet: for the commands that put data in it."""
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
    help="Lageret: en SQLite-fil (standard ./varsel.db) eller en postgresql://-URL. "
    "Det samme som VARSEL_DATABASE_URL.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Innstillingsfil (TOML). Det samme som VARSEL_CONFIG.",
)
@click.version_option(package_name="varsel", help="Vis versjonen og avslutt.")
@click.pass_context
def cli(ctx: click.Context, database_url: str | None, config_file: Path | None) -> None:
    """varsel: nå alle virksomheter i et område med råd om sikkerhet."""
    state = State(Settings.load(config_file=config_file, database_url=database_url))
    ctx.obj = state
    ctx.call_on_close(state.close)


@cli.command()
@pass_state
def init(state: State) -> None:
    """Lag lageret, eller oppdater skjemaet i det."""
    from varsel.db import applied_versions, connect, migrate_store

    db = connect(state.settings.database_url, migrate=False)
    try:
        applied = migrate_store(db)
        versions = sorted(applied_versions(db))
    finally:
        db.close()
    if applied:
        out.print(f"Lageret er klart: migrering {', '.join(map(str, applied))} utført.")
    else:
        out.print(f"Lageret er allerede oppdatert (skjemaversjon {max(versions)}).")


@cli.command()
@pass_state
def settings(state: State) -> None:
    """Vis alle innstillinger med miljøvariabel, standardverdi, verdien nå og hva de betyr.

    Verdien nå vises bare der den er endret (i miljøet, innstillingsfilen eller med --db);
    hemmeligheter og passord i adresser vises ikke.
    """
    from varsel.config import display

    changed = state.settings.changed()
    for name, env, default, help_text in Settings.describe():
        out.print(
            Text.assemble((name, "bold"), f"  ({env}, standard: {display(name, default)})"),
            soft_wrap=True,
        )
        if name in changed:
            out.print(Text.assemble("    nå: ", (changed[name], "bold")), soft_wrap=True)
        # Wrapped by hand so that every line of a help text keeps the indent (rich would not).
        out.print(
            textwrap.fill(
                help_text,
                width=max(out.width, 40),
                initial_indent="    ",
                subsequent_indent="    ",
                break_long_words=False,
                break_on_hyphens=False,
            ),
            soft_wrap=True,
        )


# -- campaigns --------------------------------------------------------------------------


@cli.group()
def campaign() -> None:
    """Lag, sjekk, send og følg kampanjer."""


# The campaign's status as the command line names it (the console's words, in Bokmål).
STATUS_WORDS = {
    "ready": "klar",
    "sending": "sendes",
    "paused": "pauset",
    "cancelled": "avbrutt",
    "done": "ferdig",
}


@campaign.command("list")
@click.option("--json", "as_json", is_flag=True, help="Skriv ut JSON.")
@pass_state
def campaign_list(state: State, as_json: bool) -> None:
    """Vis kampanjene, nyeste først: status, forfatter, virksomheter, e-poster og sendt."""
    from rich import box
    from rich.table import Table

    from varsel.campaign import summaries
    from varsel.i18n import fmt_int

    found = summaries(state.db)
    if as_json:
        click.echo(json.dumps([c.as_dict() for c in found], ensure_ascii=False, indent=2))
        return
    if not found:
        out.print("Ingen kampanjer ennå: lag en med `varsel campaign create FIL.toml`.")
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    table.add_column("Id", justify="right", no_wrap=True)
    table.add_column("Navn", overflow="fold", min_width=12, ratio=1)
    for header in ("Status", "Laget", "Av"):
        table.add_column(header, no_wrap=True)
    for header in ("Virksomheter", "E-poster", "Sendt"):
        table.add_column(header, justify="right", no_wrap=True)
    for c in found:
        table.add_row(
            str(c.id),
            c.name,
            STATUS_WORDS[c.status.value],
            c.created_at[:10],
            c.created_by or "–",
            *(fmt_int(n) for n in (c.units, c.emails, c.sent)),
        )
    out.print(table)


@campaign.command("create")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--user", "user_name", metavar="NAVN", help="Forfatteren (en konto); det samme som VARSEL_USER."
)
@pass_state
def campaign_create(state: State, file: Path, user_name: str | None) -> None:
    """Lag en kampanje fra TOML-filen, som forfatter; skriver den nye kampanjens id sist.

    Spør om forfatterens passord og engangskode (eller leser VARSEL_PASSWORD og VARSEL_TOTP).
    """
    from varsel.accounts import Role
    from varsel.campaign import create_campaign
    from varsel.campaign_spec import load_spec
    from varsel.cli_users import signed_in

    load_spec(file, state.settings)  # a wrong file is reported before anyone types a code
    state.db_or_new  # noqa: B018 - this command may make the store
    author = signed_in(state, user_name, Role.AUTHOR)
    result = create_campaign(state.db, state.settings, file, created_by=author.name)
    out.print(result.summary(), soft_wrap=True)


@campaign.command("approve")
@click.argument("campaign_id", type=int)
@click.option(
    "--user",
    "user_name",
    metavar="NAVN",
    help="Godkjenneren (ikke forfatteren); det samme som VARSEL_USER.",
)
@click.option(
    "--digest",
    metavar="HEX",
    help="Godkjenn bare hvis kampanjen fortsatt har dette fingeravtrykket (fra --show).",
)
@click.option(
    "--show", is_flag=True, help="Vis fingeravtrykket og delene det bygger på; godkjenn ingenting."
)
@pass_state
def campaign_approve(
    state: State, campaign_id: int, user_name: str | None, digest: str | None, show: bool
) -> None:
    """Godkjenn kampanjen slik den er nå (fire øyne); spør om passord og engangskode.

    Skript kan sette VARSEL_PASSWORD og VARSEL_TOTP i stedet. Sjekk kampanjen, noter
    fingeravtrykket --show viser, og godkjenn med --digest: er kampanjen endret i mellomtiden,
    blir ingenting godkjent.
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
        f"(fingeravtrykk {approval.digest[:16]}). Endres den, må den godkjennes på nytt.",
        soft_wrap=True,
    )


@campaign.command(
    "send", help="Send en godkjent kampanje; trygt å kjøre igjen etter et krasj (docs/delivery.md)."
)
@click.argument("campaign_id", type=int)
@click.option(
    "--smtp", "smtp_url", metavar="URL", help="E-posttjeneren; det samme som VARSEL_SMTP_URL."
)
@click.option("--connections", type=click.IntRange(min=1), help="SMTP-forbindelser.")
@click.option(
    "--rate", type=click.FloatRange(min=0.01), help="Høyst så mange meldinger i sekundet."
)
@click.option(
    "--no-approval",
    is_flag=True,
    help="Send uten godkjenning med fire øyne (logges; VARSEL_ALLOW_NO_APPROVAL=false forbyr det).",
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
    from varsel.approval import check_send, send_checked
    from varsel.audit import cli_actor
    from varsel.campaign import get_campaign
    from varsel.channel.smtp_relay import RelayConfig
    from varsel.progress import counts_bar
    from varsel.sender import SendOptions

    relay = RelayConfig.from_url(smtp_url or state.settings.smtp_url)
    spec = get_campaign(state.db, campaign_id).spec
    # Refused at once, before the progress bar; send_checked checks again as the send starts.
    check_send(state.db, state.settings, campaign_id, no_approval=no_approval)
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


@campaign.command("status", help="Antall leveranser i hver tilstand, og de usikre leveransene.")
@click.argument("campaign_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Skriv ut ett JSON-objekt.")
@pass_state
def campaign_status(state: State, campaign_id: int, as_json: bool) -> None:
    """Counts per delivery state, and the deliveries in doubt."""
    from varsel.send_report import status

    report = status(state.db, campaign_id)
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        return
    c = report.counts
    out.print(
        f"Kampanje {campaign_id} «{report.campaign.name}»: "
        f"{STATUS_WORDS[report.campaign.status.value]}"
    )
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
    labels = {"deferred": "utsatt", "failed": "feilet"}
    if report.reasons:
        out.print("Vanligste grunner:")
    for r in report.reasons:
        out.print(f"  {labels[r.state]:<7} {r.count:>8}  {r.reason or '(ingen)'}", markup=False)


@campaign.command("lint")
@click.argument("campaign_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Skriv ut ett JSON-objekt.")
@pass_state
@click.pass_context
def campaign_lint(ctx: click.Context, state: State, campaign_id: int, as_json: bool) -> None:
    """Sjekk en kampanje før utsending; avslutter med status 2 hvis noe må rettes."""
    from varsel.audit import cli_actor
    from varsel.lint import lint_campaign
    from varsel.lint_report import Severity

    report = lint_campaign(state.db, state.settings, campaign_id, actor=cli_actor())
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        for f in report.findings:
            error = f.severity is Severity.ERROR
            label = ("feil    ", "bold red") if error else ("advarsel", "yellow")
            # Messages quote TOML tables and templates: "[links]" is text, not Rich markup.
            out.print(Text.assemble(label, " ", f.message), soft_wrap=True)
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
    help="Mappe for <språk>.eml, .txt og .html (lages hvis den mangler).",
)
@pass_state
def campaign_preview(state: State, campaign_id: int, out_dir: Path) -> None:
    """Skriv meldingen på hvert språk, signert slik den ville blitt sendt, til en prøvemottaker."""
    from varsel.preview import preview_campaign

    for path in preview_campaign(state.db, state.settings, campaign_id, out_dir):
        click.echo(str(path))


def _set_status(state: State, campaign_id: int, status_name: str) -> None:
    from varsel.audit import cli_actor
    from varsel.campaign import CampaignStatus, set_status

    campaign_obj = set_status(state.db, campaign_id, CampaignStatus(status_name), actor=cli_actor())
    from varsel.leases import notify

    notify(state.db, campaign_id)  # running workers hear it at once (PostgreSQL)
    out.print(f"Kampanje {campaign_id} er nå «{campaign_obj.status.value}».", soft_wrap=True)


@campaign.command("start")
@click.argument("campaign_id", type=int)
@click.option(
    "--no-approval",
    is_flag=True,
    help="Uten godkjenning med fire øyne (logges; VARSEL_ALLOW_NO_APPROVAL=false forbyr det).",
)
@pass_state
def campaign_start(state: State, campaign_id: int, no_approval: bool) -> None:
    """Gi en godkjent kampanje til `varsel worker`-prosessene (PostgreSQL); de begynner nå."""
    from varsel.approval import authorise_send
    from varsel.audit import cli_actor
    from varsel.leases import require_postgresql, start_campaign

    require_postgresql(state.dialect)  # before the store is opened: SQLite needs no file
    authorise_send(
        state.db, state.settings, campaign_id, actor=cli_actor(), no_approval=no_approval
    )
    start_campaign(state.db, campaign_id, state.settings.worker_lease_seconds)
    out.print(
        f"Kampanje {campaign_id} sendes nå av arbeiderne; følg med: varsel worker --status",
        soft_wrap=True,
    )


@campaign.command("pause")
@click.argument("campaign_id", type=int)
@pass_state
def campaign_pause(state: State, campaign_id: int) -> None:
    """Sett utsendingen på pause; en sending som pågår, stopper innen et sekund."""
    _set_status(state, campaign_id, "paused")


@campaign.command("resume")
@click.argument("campaign_id", type=int)
@pass_state
def campaign_resume(state: State, campaign_id: int) -> None:
    """La en kampanje på pause sendes igjen (kjør så `campaign send`)."""
    _set_status(state, campaign_id, "ready")


@campaign.command("cancel")
@click.argument("campaign_id", type=int)
@pass_state
def campaign_cancel(state: State, campaign_id: int) -> None:
    """Stopp en kampanje for godt: det som ikke er sendt ennå, blir kansellert."""
    _set_status(state, campaign_id, "cancelled")


@campaign.command("resend-in-doubt")
@click.argument("campaign_id", type=int)
@pass_state
def campaign_resend_in_doubt(state: State, campaign_id: int) -> None:
    """Legg de usikre leveransene i kø igjen: du godtar at de kan komme fram to ganger."""
    from varsel.audit import cli_actor
    from varsel.campaign import get_campaign
    from varsel.i18n import fmt_int
    from varsel.outbox import resend_in_doubt

    get_campaign(state.db, campaign_id)
    n = resend_in_doubt(state.db, campaign_id, actor=cli_actor())
    what = "usikker leveranse er" if n == 1 else "usikre leveranser er"
    out.print(
        f"{fmt_int(n)} {what} lagt i kø igjen; kjør «varsel campaign send {campaign_id}».",
        soft_wrap=True,
    )


# -- keys -------------------------------------------------------------------------------


@cli.group()
def keys() -> None:
    """DKIM-nøkler for signering."""


@keys.command("generate")
@click.option("--domain", required=True, help="Avsenderens domene, for eksempel nsr-org.no.")
@click.option("--selector", default="varsel", show_default=True, help="DKIM-velgeren.")
@click.option(
    "--algorithm",
    type=click.Choice(["rsa", "ed25519"]),
    default="rsa",
    show_default=True,
    help="Nøkkeltypen.",
)
@pass_state
def keys_generate(state: State, domain: str, selector: str, algorithm: str) -> None:
    """Lag et nøkkelpar og skriv ut DNS TXT-posten som skal publiseres."""
    from varsel.dkim import generate_key
    from varsel.keys import key_dir

    files = generate_key(key_dir(state.settings), domain, selector, algorithm)
    out.print(f"Privat nøkkel: {files.private_key}", soft_wrap=True)
    out.print("Publiser denne DNS-posten:")
    click.echo(files.dns_record())


@cli.command()
@click.option("--host", help="Adressen det lyttes på; det samme som VARSEL_WEB_HOST.")
@click.option(
    "--port", type=click.IntRange(1, 65535), help="Porten; det samme som VARSEL_WEB_PORT."
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Prosesser som viser sidene (grensene ligger i lageret og gjelder for alle; "
    "flere enn én krever VARSEL_SECRET_KEY).",
)
@pass_state
def serve(state: State, host: str | None, port: int | None, workers: int) -> None:
    """Vis de offentlige sidene (kontroll, register, tilbakemelding, dokument, avmelding)."""
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
        f"{host}:{port}, {workers} {'prosess' if workers == 1 else 'prosesser'}).",
        soft_wrap=True,
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
from varsel.cli_suppress import suppress  # noqa: E402
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
cli.add_command(suppress)


def main() -> None:
    """Entry point of the `varsel` console script."""
    cli.main(prog_name="varsel", standalone_mode=True)


if __name__ == "__main__":
    main()
    sys.exit(0)
