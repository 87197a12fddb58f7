"""What the command line prints: text as text, lines for copying unwrapped, one-line errors."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from helpers import PASSWORD, campaign_toml, next_code, operator
from varsel.cli import cli, err, out
from varsel.config import Settings
from varsel.db import Database
from varsel.dkim import load_key
from varsel.keys import key_path
from varsel.registry import import_dump

NAME = "Kampanje [/b] [uke 3] [x] [/] :abc:"


@pytest.fixture(autouse=True)
def width_80(monkeypatch: pytest.MonkeyPatch) -> None:
    """The consoles as wide as a plain terminal, whatever runs the tests."""
    monkeypatch.setattr(out, "_width", 80)
    monkeypatch.setattr(err, "_width", 80)


def run(*args: str, **env: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def created(db: Database, brreg: Path, tmp_path: Path) -> Result:
    """A campaign with markup-like text in its name, made through `campaign create`."""
    import_dump(db, brreg / "enheter-sample.json")
    settings = Settings.load(environ={}, dkim_key_dir=str(tmp_path / "keys"))
    secret = operator(db, settings, "kari", "author")
    path = tmp_path / "c.toml"
    path.write_text(campaign_toml(name=NAME), "utf-8")
    return run(
        "--db",
        db.url,
        "campaign",
        "create",
        str(path),
        VARSEL_DKIM_KEY_DIR=str(tmp_path / "keys"),
        VARSEL_USER="kari",
        VARSEL_PASSWORD=PASSWORD,
        VARSEL_TOTP=next_code(secret),
    )


def test_a_campaign_name_is_printed_as_it_is(db: Database, brreg: Path, tmp_path: Path) -> None:
    result = created(db, brreg, tmp_path)
    assert result.exit_code == 0, result.output
    assert f"Kampanje 1 «{NAME}» er opprettet" in result.output
    status = run("--db", db.url, "campaign", "status", "1")
    assert status.exit_code == 0, status.output
    assert status.output.splitlines()[0].startswith(f"Kampanje 1 «{NAME}»: ")


def test_the_dkim_record_is_one_line_at_80_columns(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    result = created(db, brreg, tmp_path)
    assert result.exit_code == 0, result.output
    settings = Settings.load(environ={}, dkim_key_dir=str(tmp_path / "keys"))
    path = key_path(settings, "nsr-org.no", "varsel")
    record = load_key(path, "nsr-org.no", "varsel").dns_record()
    assert len(record) > 80
    assert record in result.output.splitlines()  # whole: pasted into DNS as it is


def test_an_error_message_is_printed_as_it_is(tmp_path: Path) -> None:
    store = tmp_path / "varsel.db"
    missing = "[/b] [x] [/] :abc:.toml"
    result = run("--db", str(store), "campaign", "create", missing)
    assert result.exit_code == 2
    assert result.output == f"varsel: {missing}: filen finnes ikke\n"


def test_a_file_name_in_a_table_is_printed_as_it_is(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    path = tmp_path / "[x] [b]fet :abc:.json"
    path.write_bytes((brreg / "enheter-sample.json").read_bytes())
    imported = run("--db", db.url, "registry", "import", str(path))
    assert imported.exit_code == 0, imported.output
    result = run("--db", db.url, "registry", "snapshots")
    assert result.exit_code == 0, result.output
    assert "[x] [b]fet :abc:.json" in result.output


def test_an_smtp_url_is_printed_as_it_is(db: Database, brreg: Path, tmp_path: Path) -> None:
    result = run("--db", db.url, "campaign", "send", "1", "--smtp", "smtp://kari:x@127.0.0.1:abc")
    assert result.exit_code == 2
    assert "🔤" not in result.output
    assert ":abc" in result.output


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["campaign", "status", "abc"], "varsel: KAMPANJE: «abc» er ikke et tall"),
        (
            ["segment", "preview", "--min-employees", "-1"],
            "varsel: --min-employees: -1 er ikke tillatt (minst 0)",
        ),
        (["serve", "--port", "70000"], "varsel: --port: 70000 er ikke tillatt (fra 1 til 65535)"),
        # As VARSEL_ALTINN_CONCURRENCY allows: each request in flight is a thread.
        (
            ["altinn", "send", "1", "--concurrency", "65"],
            "varsel: --concurrency: 65 er ikke tillatt (fra 1 til 64)",
        ),
        (
            ["altinn", "poll", "1", "--concurrency", "100000"],
            "varsel: --concurrency: 100000 er ikke tillatt (fra 1 til 64)",
        ),
        (["campaign", "create"], "varsel: mangler FIL"),
        (["keys", "generate"], "varsel: mangler --domain"),
        (["segment", "preview", "--fom", "AS"], "varsel: ukjent valg --fom (mente du --form?)"),
        (["--foo"], "varsel: ukjent valg --foo"),
        (["campain"], "varsel: ukjent kommando «campain» (mente du «campaign»?)"),
        (
            ["keys", "generate", "--domain", "x.no", "--algorithm", "dsa"],
            "varsel: --algorithm: «dsa» er ikke et av valgene (velg rsa eller ed25519)",
        ),
        (["report", "unreached", "1", "--out"], "varsel: --out mangler en verdi"),
        (["campaign", "status", "1", "2"], "varsel: for mange argumenter: 2"),
        # Larger than the stores' ids: refused here, said as written, not a store's traceback.
        (
            ["campaign", "status", "99999999999999999999"],
            "varsel: KAMPANJE: 99999999999999999999 er ikke tillatt (fra 1 til 2147483647)",
        ),
        (
            ["audit", "show", "--limit", "99999999999999999999"],
            "varsel: --limit: 99999999999999999999 er ikke tillatt (fra 1 til 2147483647)",
        ),
    ],
)
def test_click_errors_are_one_line_in_bokmal(args: list[str], line: str, tmp_path: Path) -> None:
    result = run("--db", str(tmp_path / "varsel.db"), *args)
    assert result.exit_code == 2
    assert result.output == line + "\n"
    assert not (tmp_path / "varsel.db").exists()


def test_a_folder_given_for_a_file(tmp_path: Path) -> None:
    result = run("--db", str(tmp_path / "varsel.db"), "campaign", "create", str(tmp_path))
    assert result.exit_code == 2
    assert result.output == f"varsel: FIL: «{tmp_path}» er en mappe, ikke en fil\n"


def test_a_file_that_does_not_exist(tmp_path: Path) -> None:
    store = tmp_path / "varsel.db"
    result = run("--db", str(store), "registry", "import", str(tmp_path / "borte.json"))
    assert result.exit_code == 2
    assert result.output.startswith(f"varsel: {tmp_path / 'borte.json'}")
    assert len(result.output.splitlines()) == 1


def test_help_is_in_bokmal() -> None:
    for args in ([], ["campaign"], ["segment", "preview"], ["keys", "generate"], ["worker"]):
        result = run(*args, "--help")
        assert result.exit_code == 0, result.output
        assert result.output.startswith("Bruk: ")
        assert "Vis denne hjelpen og avslutt." in result.output
        for english in ("Usage:", "Options:", "Commands:", "Show this", "[default:", "[required]"):
            assert english not in result.output
    assert "[standard: rsa]" in run("keys", "generate", "--help").output


def test_the_version_is_in_bokmal() -> None:
    from importlib.metadata import version

    result = run("--version")
    assert (result.exit_code, result.output) == (0, f"varsel, versjon {version('varsel')}\n")


def test_a_reader_refuses_a_store_that_does_not_exist(tmp_path: Path) -> None:
    store = tmp_path / "skrivefeil.db"
    result = run("--db", str(store), "segment", "preview")
    assert result.exit_code == 2
    assert result.output == f"varsel: lageret {store} finnes ikke (lag det med «varsel init»)\n"
    assert not store.exists()


def test_a_reader_makes_no_tables_in_a_database_varsel_did_not_make(db_url: str) -> None:
    # A mistyped --db naming another program's database: campaign list must not write
    # varsel's tables into it.
    with _foreign(db_url) as tables:
        result = run("--db", db_url, "campaign", "list")
        assert result.exit_code == 2
        assert result.output == (
            f"varsel: lageret {db_url} er ikke laget av varsel ennå (lag det med «varsel init»)\n"
        )
        assert tables() == ["their_own"]


@contextlib.contextmanager
def _foreign(url: str) -> Iterator[Callable[[], list[str]]]:
    """A store with one table of another program's; yields what lists the store's tables."""
    if url.startswith("postgresql"):
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute("CREATE TABLE their_own (id int)")
            yield lambda: [
                r[0]
                for r in pg.execute(
                    "SELECT table_name FROM information_schema.tables"
                    " WHERE table_schema = current_schema()"
                )
            ]
    else:
        with contextlib.closing(sqlite3.connect(url)) as lite:
            lite.execute("CREATE TABLE their_own (id int)")
            yield lambda: [r[0] for r in lite.execute("SELECT name FROM sqlite_master")]


def test_a_writer_makes_the_store(tmp_path: Path, brreg: Path) -> None:
    store = tmp_path / "ny.db"
    result = run("--db", str(store), "registry", "import", str(brreg / "enheter-sample.json"))
    assert result.exit_code == 0, result.output
    assert store.exists()
    assert run("--db", str(store), "segment", "preview").exit_code == 0


def test_init_says_the_store_is_ready(tmp_path: Path) -> None:
    result = run("--db", str(tmp_path / "varsel.db"), "init")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Lageret er klart: migrering ")


def test_a_store_folder_that_does_not_exist(tmp_path: Path) -> None:
    result = run("--db", str(tmp_path / "nei" / "x.db"), "init")
    assert result.exit_code == 2
    assert result.output == (
        f"varsel: lageret {tmp_path / 'nei' / 'x.db'}: mappen {tmp_path / 'nei'} finnes ikke\n"
    )


# -- text from outside: no terminal escapes --------------------------------------------------

# What a hostile registry record or SMTP reply could carry: clear the screen, move the cursor
# up and erase a line, return to the line's start, and show the rest reversed (a bidi override).
HOSTILE = "Bakeri\x1b[2J\x1b[1A\x1b[2K\r\u202eAS"
ESCAPED = "Bakeri\\x1b[2J\\x1b[1A\\x1b[2K\\x0d\\u202eAS"


def test_every_way_of_printing_escapes_control_and_format_characters() -> None:
    import io

    from rich.table import Table
    from rich.text import Text as Styled

    from varsel.cli_output import error_line, make_console, print_table

    file = io.StringIO()
    console = make_console()
    console.file = file
    console.print(HOSTILE, soft_wrap=True)
    console.print(Styled.assemble(("feil", "bold"), " ", HOSTILE), soft_wrap=True)
    console.print(error_line(HOSTILE), soft_wrap=True)
    table = Table("Navn", "Kommune")
    table.add_row(HOSTILE, "Bærum")
    print_table(console, table)
    console.print("Ærlig talt, Øystein på Ås 🙂 – «ferdig»\nneste linje\tmed tab", soft_wrap=True)
    printed = file.getvalue()
    assert "\x1b" not in printed
    assert "\u202e" not in printed
    assert "\r" not in printed
    lines = printed.splitlines()
    # (Rich drops a carriage return from a Text it is given: gone, rather than shown.)
    assert lines[:3] == [ESCAPED, "feil " + ESCAPED.replace("\\x0d", ""), f"varsel: {ESCAPED}"]
    assert any(ESCAPED in line and "Bærum" in line for line in lines)  # the table's row
    # Norwegian letters and ordinary Unicode stay as they are; so do line breaks and tabs.
    assert lines[-2:] == ["Ærlig talt, Øystein på Ås 🙂 – «ferdig»", "neste linje     med tab"]


def test_a_note_from_outside_is_escaped_in_suppress_list(tmp_path: Path) -> None:
    db = ["--db", str(tmp_path / "v.db")]
    assert run(*db, "init").exit_code == 0
    added = run(*db, "suppress", "add", "--address", "post@firma.no", "--note", HOSTILE)
    assert added.exit_code == 0, added.output
    result = run(*db, "suppress", "list")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    assert "\u202e" not in result.output
    assert ESCAPED in result.output


def test_a_relays_reply_is_escaped_in_campaign_status(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    from helpers import sample_campaign

    cid = sample_campaign(db, brreg, tmp_path)
    with db.transaction():
        db.execute(
            "UPDATE deliveries SET state = 'failed', last_reply = ? WHERE id = "
            "(SELECT min(id) FROM deliveries)",
            (f"550 {HOSTILE}",),
        )
    result = run("--db", db.url, "campaign", "status", str(cid))
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    assert f"550 {ESCAPED}" in result.output


def test_a_campaign_name_from_a_shared_file_is_escaped_in_campaign_list(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    from helpers import sample_campaign

    cid = sample_campaign(db, brreg, tmp_path)
    with db.transaction():
        db.execute("UPDATE campaigns SET name = ? WHERE id = ?", (HOSTILE, cid))
    result = run("--db", db.url, "campaign", "list")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    assert "\u202e" not in result.output
    assert "Bakeri\\x1b[2J" in result.output  # folded in the table's column, but there
