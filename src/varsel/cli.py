"""The varsel command line: each command parses, calls one library function, and prints."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import click
import psycopg
from rich.text import Text

from varsel.cli_output import (
    NorskGroup,
    error_line,
    make_console,
    one_line,
)
from varsel.config import Settings
from varsel.db import Database, applied_versions, connect, lost, migrate_store, normalise_url
from varsel.errors import StoreError, VarselError, redact_url

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
            return self._invoke(ctx)
        except BaseException as e:
            # A failed command leaves the stored data as it was: a store it made held nothing.
            state = ctx.find_object(State)
            if state is not None and not (isinstance(e, click.exceptions.Exit) and not e.exit_code):
                state.discard_made()
            raise

    def _run(self, ctx: click.Context) -> Any:
        """The command; then what it did to a store it made is kept (committed)."""
        try:
            result = super().invoke(ctx)
        except click.exceptions.Exit as e:
            if not e.exit_code:
                self._keep(ctx)
            raise
        self._keep(ctx)
        return result

    @staticmethod
    def _keep(ctx: click.Context) -> None:
        state = ctx.find_object(State)
        if state is not None:
            state.keep_made()

    def _invoke(self, ctx: click.Context) -> Any:
        try:
            # The commit of a store made by this command is part of it: a store that fails
            # then is one line too.
            return self._run(ctx)
        except VarselError as e:
            # Messages quote TOML tables ("[segment]"): text, never Rich markup.
            err.print(error_line(e.message), soft_wrap=True)
            ctx.exit(e.exit_status)
        except (psycopg.Error, sqlite3.DatabaseError) as e:
            # The store failed under the command (a server restarted, a disk filled up):
            # one line naming it. Anything else from the driver is a fault in varsel: shown.
            state = ctx.find_object(State)
            failed = lost(e, state.settings.database_url) if state is not None else None
            if failed is None:
                raise
            err.print(error_line(failed.message), soft_wrap=True)
            ctx.exit(failed.exit_status)
        except click.UsageError as e:  # a subcommand's bad value, missing argument, ...
            raise one_line(e) from None
        except click.Abort:
            err.print(error_line("avbrutt"))
            ctx.exit(1)
        except KeyboardInterrupt:
            err.print(error_line("avbrutt"))
            ctx.exit(130)


class State:
    """What every command gets: the settings and the store, each read or opened on first use.

    The settings are read when a command first needs them, not before it runs, so that a
    command that handles its own errors (`bounces ingest --tempfail`: a broken settings file
    must make the MTA keep the bounce, exit status 75) sees that error too.
    """

    def __init__(self, load: Callable[[], Settings]) -> None:
        self._load = load
        self._settings: Settings | None = None
        self._db: Database | None = None
        self._made: Path | None = None  # the SQLite file this command made, if it made one
        # PostgreSQL: the transaction that holds the schema this command made, and all it did.
        self._first_use: contextlib.ExitStack | None = None

    @property
    def settings(self) -> Settings:
        """The settings (file, environment and options), read once."""
        if self._settings is None:
            self._settings = self._load()
        return self._settings

    @property
    def dialect(self) -> str:
        """The store's kind, from its URL, without opening it."""
        return normalise_url(self.settings.database_url)[0]

    @property
    def store_url(self) -> str:
        """The store's address; empty or in memory is refused: nothing would be kept."""
        url = self.settings.database_url
        if normalise_url(url) == ("sqlite", ":memory:"):
            raise StoreError(
                f"lageret {url}: et lager i minnet forsvinner når kommandoen er ferdig; "
                "oppgi en SQLite-fil eller en postgresql://-URL"
            )
        return url

    @property
    def db(self) -> Database:
        """The store; one varsel has not made is refused (a mistyped --db), never made here."""
        if self._db is None:
            self._db = self.open_made()
        return self._db

    def open_made(self) -> Database:
        """The store, its schema brought up to date; refused when varsel has not made it.

        A command that only reads must not make a store: a mistyped --db naming another
        existing database (PostgreSQL's `postgres`, another program's SQLite file) would
        otherwise get varsel's tables written into it by a `campaign list`.
        """
        self.refuse_missing()
        url = self.store_url
        db = connect(url, migrate=False)
        try:
            if not applied_versions(db):
                raise StoreError(
                    f"lageret {redact_url(url)} er ikke laget av varsel ennå "
                    "(lag det med «varsel init»)"
                )
            migrate_store(db)
        except BaseException:
            db.close()
            raise
        return db

    def refuse_missing(self) -> None:
        """Refuse a SQLite file that does not exist: a mistyped --db would make an empty one."""
        missing = self._missing_file()
        if missing is not None:
            raise StoreError(f"lageret {missing[1]} finnes ikke (lag det med «varsel init»)")

    def _missing_file(self) -> tuple[Path, str] | None:
        """The store's SQLite file (path, and as given) when it does not exist yet; else None."""
        dialect, target = normalise_url(self.store_url)
        path = Path(target).expanduser()
        return (path, target) if dialect == "sqlite" and not path.exists() else None

    @property
    def db_or_new(self) -> Database:
        """The store, made if it does not exist yet: for the commands that put data in it."""
        if self._db is None:
            missing = self._missing_file()
            self._made = missing[0] if missing is not None else None
            if self.dialect == "postgresql":
                self._db = self._open_postgresql()
            else:
                self._db = connect(self.store_url)
        return self._db

    def _open_postgresql(self) -> Database:
        """The PostgreSQL store; without varsel's schema yet, made in a transaction that holds
        the whole command, committed by keep_made() or rolled back by discard_made()."""
        db = connect(self.store_url, migrate=False)
        try:
            if not applied_versions(db):
                # PostgreSQL's DDL is transactional: a failed first import then leaves the
                # database exactly as it was, whatever else its schema holds, and a second
                # command making the store meanwhile waits on the migration's lock.
                first = contextlib.ExitStack()
                first.enter_context(db.transaction())
                self._first_use = first
                # The command may read its files for minutes between statements (a first
                # import's extraction): a server's limit for a transaction left idle is not
                # for this one.
                db.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
            migrate_store(db)
        except BaseException:
            self._first_use = None
            db.close()  # a transaction left open is rolled back with its connection
            raise
        return db

    def keep_made(self) -> None:
        """The command succeeded: commit the PostgreSQL schema it made, with what it did."""
        first, self._first_use = self._first_use, None
        if first is not None:
            first.close()
        self._made = None

    def discard_made(self) -> None:
        """Undo the store this command made (it failed): it held nothing before.

        A SQLite file is removed; on PostgreSQL the schema made and everything done in it
        are rolled back, and nothing that was there before is touched.
        """
        first, self._first_use = self._first_use, None
        if first is not None:
            # A connection already lost has been rolled back by the server.
            with contextlib.suppress(psycopg.Error):
                first.__exit__(_Failed, _Failed(), None)
        if self._made is None:
            return
        self.close()
        self._db = None
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self._made}{suffix}").unlink(missing_ok=True)
        self._made = None

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


class _Failed(Exception):
    """The command failed: what rolls back the transaction of a store it made."""


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
@click.version_option(
    package_name="varsel", message="varsel, versjon %(version)s", help="Vis versjonen og avslutt."
)
@click.pass_context
def cli(ctx: click.Context, database_url: str | None, config_file: Path | None) -> None:
    """varsel: nå alle virksomheter i et område med råd om sikkerhet."""
    state = State(lambda: Settings.load(config_file=config_file, database_url=database_url))
    ctx.obj = state
    ctx.call_on_close(state.close)


@cli.command()
@pass_state
def init(state: State) -> None:
    """Lag lageret, eller oppdater skjemaet i det."""
    db = connect(state.store_url, migrate=False)
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
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path), metavar="FIL")
@pass_state
def backup(state: State, target: Path) -> None:
    """Ta en hel og kontrollert kopi av SQLite-lageret mens varsel kjører (ny fil).

    Kopien har alt lageret har, personopplysninger også: den føres i revisjonsloggen. Legg
    den tilbake ved å kopiere den inn i stedet for lageret mens ingenting kjører.
    DKIM-nøkler og innstillinger ligger utenfor lageret og er ikke med.
    """
    from varsel.audit import cli_actor
    from varsel.backup import back_up

    out.print(back_up(state.db, target, actor=cli_actor()).summary(), soft_wrap=True)


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


# -- keys -------------------------------------------------------------------------------


@cli.group()
def keys() -> None:
    """DKIM-nøkler for signering."""


@keys.command("generate")
@click.option(
    "--domain", required=True, metavar="DOMENE", help="Avsenderens domene, for eksempel nsr-org.no."
)
@click.option(
    "--selector", default="varsel", show_default=True, metavar="SELEKTOR", help="DKIM-selektoren."
)
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


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Skriv ut JSON.")
@pass_state
def keys_list(state: State, as_json: bool) -> None:
    """Vis nøklene i nøkkelmappen, hver med DNS TXT-posten som skal publiseres."""
    from varsel.keys import key_dir, list_keys

    found = list_keys(state.settings)
    if as_json:
        click.echo(json.dumps([k.as_dict() for k in found], ensure_ascii=False, indent=2))
        return
    if not found:
        directory = key_dir(state.settings)
        where = f" i {directory}:" if directory.exists() else f": mappen {directory} finnes ikke;"
        out.print(
            f"Ingen DKIM-nøkler{where} lag en med `varsel keys generate --domain DOMENE`.",
            soft_wrap=True,
        )
        return
    from varsel.segment import u_label

    for k in found:
        shown = u_label(k.domain)
        name = shown if shown == k.domain else f"{shown} ({k.domain})"
        out.print(Text.assemble((name, "bold"), f"  selektor {k.selector}  {k.algorithm or ''}"))

        out.print(f"  fil: {k.path}", soft_wrap=True)
        if k.problem is not None:
            out.print(f"  kan ikke brukes: {k.problem}", soft_wrap=True)
        else:
            click.echo(f"  {k.dns_record}")  # one line, to copy into the zone as it is


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
        # An empty store would call every genuine code unknown: a mistyped --db is refused.
        # The schema brought up to date once, here, rather than by every worker at once.
        state.open_made().close()
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
from varsel.cli_campaign import campaign  # noqa: E402
from varsel.cli_letters import letters  # noqa: E402
from varsel.cli_registry import registry, segment  # noqa: E402
from varsel.cli_report import report  # noqa: E402
from varsel.cli_suppress import suppress  # noqa: E402
from varsel.cli_users import user  # noqa: E402
from varsel.cli_worker import worker  # noqa: E402

cli.add_command(campaign)
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
