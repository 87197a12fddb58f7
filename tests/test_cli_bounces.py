# The campaign and dovecot fixtures are imported (from test_bounces and test_bounce_sources),
# so the tests' parameters of those names redefine the imports, as pytest means them to.
# ruff: noqa: F811
from __future__ import annotations

import json
import mailbox
from pathlib import Path

import pytest
from click.testing import CliRunner

from test_bounce_sources import Dovecot, dovecot  # noqa: F401  # dovecot is a fixture
from test_bounces import (  # noqa: F401  # campaign is a fixture
    DATA,
    TOMRA,
    Campaign,
    bounce,
    campaign,
    unsubscribe_mail,
)
from varsel.bounce_sources import ImapMailbox
from varsel.cli import cli
from varsel.config import Settings
from varsel.db import Database


def env(campaign: Campaign) -> dict[str, str]:
    return {"VARSEL_DKIM_KEY_DIR": campaign.settings.dkim_key_dir}


def test_ingest_from_standard_input_prints_the_counts(db: Database, campaign: Campaign) -> None:
    raw = bounce("postfix-5.1.1.eml", campaign.sent[TOMRA])
    result = CliRunner().invoke(
        cli, ["--db", db.url, "bounces", "ingest"], input=raw, env=env(campaign)
    )
    assert result.exit_code == 0, result.output
    assert result.output == (
        "1 melding: 1 hard retur, 0 myke, 0 avvist av mottakers regler, 0 klager, "
        "0 autosvar, 0 avmeldinger, 0 ukjente, 0 forfalskede, 0 uten kjent levering, "
        "0 tatt inn før.\n"
    )
    assert db.scalar("SELECT state FROM deliveries WHERE id = ?", (campaign.sent[TOMRA].id,)) == (
        "bounced"
    )


def test_ingest_a_maildir_as_json(db: Database, campaign: Campaign, tmp_path: Path) -> None:
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    box.add(bounce("office365-5.1.10.eml", campaign.sent[TOMRA]))
    box.add((DATA / "flufl" / "dumbass_01.txt").read_bytes())
    result = CliRunner().invoke(
        cli,
        ["--db", db.url, "bounces", "ingest", "--maildir", str(tmp_path / "Maildir"), "--json"],
        env=env(campaign),
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "hard": 1,
        "soft": 0,
        "policy": 0,
        "complaint": 0,
        "auto_reply": 0,
        "unsubscribe": 0,
        "unrecognised": 0,
        "forged": 0,
        "unmatched": 1,
        "duplicate": 0,
    }


@pytest.mark.parametrize("tempfail", [[], ["--tempfail"]], ids=["plain", "tempfail"])
def test_garbage_on_standard_input_is_counted_as_unrecognised(
    db: Database, campaign: Campaign, tempfail: list[str]
) -> None:
    # It was an IndexError inside flufl.bounce, and with --tempfail an MTA retrying forever.
    result = CliRunner().invoke(
        cli, ["--db", db.url, "bounces", "ingest", *tempfail], input=b"garbage\n", env=env(campaign)
    )
    assert (result.exit_code, result.output) == (
        0,
        "1 melding: 0 harde returer, 0 myke, 0 avvist av mottakers regler, 0 klager, "
        "0 autosvar, 0 avmeldinger, 1 ukjent, 0 forfalskede, 0 uten kjent levering, "
        "0 tatt inn før.\n",
    )


def test_ingest_an_unsubscribe_mail_from_standard_input(db: Database, campaign: Campaign) -> None:
    raw = unsubscribe_mail(campaign.sent[TOMRA])
    args = ["--db", db.url, "bounces", "ingest", "--json"]
    result = CliRunner().invoke(cli, args, input=raw, env=env(campaign))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["unsubscribe"] == 1
    assert db.scalar("SELECT reason FROM suppressions WHERE value = ?", (TOMRA,)) == "unsubscribed"


def test_bad_input_is_one_line_and_exit_status_2(db: Database, campaign: Campaign) -> None:
    runner = CliRunner()
    empty = runner.invoke(cli, ["--db", db.url, "bounces", "ingest"], input=b"", env=env(campaign))
    assert (empty.exit_code, empty.output) == (2, "varsel: ingen melding på standard inn\n")
    both = runner.invoke(
        cli,
        ["--db", db.url, "bounces", "ingest", "--maildir", "a", "--mbox", "b"],
        env=env(campaign),
    )
    assert (both.exit_code, both.output) == (
        2,
        "varsel: bruk enten --maildir eller --mbox, ikke begge\n",
    )
    no_box = runner.invoke(
        cli, ["--db", db.url, "bounces", "ingest", "--mbox", "none.mbox"], env=env(campaign)
    )
    assert (no_box.exit_code, no_box.output) == (
        2,
        "varsel: none.mbox: finnes ikke eller er ikke en fil\n",
    )
    url = runner.invoke(cli, ["--db", db.url, "bounces", "poll", "--imap", "pop3://x@y/", "--once"])
    assert url.exit_code == 2
    assert url.output.startswith("varsel: ugyldig IMAP-adresse «pop3://x@y/»")


def test_poll_once(db: Database, campaign: Campaign, dovecot: Dovecot) -> None:
    url = f"imaps://cli-{db.dialect}@nsr-org.no@127.0.0.1:{dovecot.imaps_port}/INBOX"
    settings = {
        **env(campaign),
        "VARSEL_IMAP_PASSWORD": "hemmelig",
        "VARSEL_IMAP_CA_FILE": str(dovecot.ca_file),
    }
    box = ImapMailbox.from_url(url, Settings.load(environ=settings))
    conn = box.connect()
    conn.append("INBOX", None, None, bounce("gmail-5.1.1.eml", campaign.sent[TOMRA]))
    conn.logout()
    runner = CliRunner()
    args = ["--db", db.url, "bounces", "poll", "--imap", url, "--once", "--json"]
    first = runner.invoke(cli, args, env=settings)
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["hard"] == 1
    again = runner.invoke(cli, args, env=settings)
    assert sum(json.loads(again.output).values()) == 0


def test_tempfail_lets_the_mta_try_again_when_the_store_is_unusable(
    campaign: Campaign, tmp_path: Path
) -> None:
    (tmp_path / "not-a-store.db").write_text("nonsense", "ascii")
    raw = bounce("postfix-5.1.1.eml", campaign.sent[TOMRA])
    args = ["--db", str(tmp_path / "not-a-store.db"), "bounces", "ingest", "--tempfail"]
    result = CliRunner().invoke(cli, args, input=raw, env=env(campaign))
    assert result.exit_code == 75
    store = tmp_path / "not-a-store.db"
    # Said in words, as every error is, not by the class that carried it.
    assert (
        result.output
        == f"varsel: prøver igjen senere: lageret {store}: er ikke en SQLite-database\n"
    )


@pytest.mark.parametrize(("tempfail", "status"), [([], 2), (["--tempfail"], 75)])
def test_a_folder_to_keep_in_that_cannot_be_made_leaves_the_mail_with_the_mta(
    db: Database, campaign: Campaign, tmp_path: Path, tempfail: list[str], status: int
) -> None:
    # With --tempfail a usage error (2) would have Postfix bounce the bounce: it would be lost.
    (tmp_path / "file").write_text("x", "ascii")
    args = ["--db", db.url, "bounces", "ingest", *tempfail, "--keep", str(tmp_path / "file")]
    result = CliRunner().invoke(cli, args, input=b"garbage\n", env=env(campaign))
    assert result.exit_code == status
    assert result.output.endswith(f"{tmp_path / 'file'}: er en fil, ikke en mappe for en Maildir\n")


@pytest.mark.parametrize(("tempfail", "status"), [([], 2), (["--tempfail"], 75)])
def test_a_broken_settings_file_leaves_the_mail_with_the_mta(
    db: Database, campaign: Campaign, tmp_path: Path, tempfail: list[str], status: int
) -> None:
    # The settings were read before the command ran, where --tempfail could not see the error:
    # exit status 2, and Postfix would have dropped the bounce.
    broken = tmp_path / "varsel.toml"
    broken.write_text("[smtp\n", "utf-8")
    raw = bounce("postfix-5.1.1.eml", campaign.sent[TOMRA])
    args = ["--db", db.url, "--config", str(broken), "bounces", "ingest", *tempfail]
    result = CliRunner().invoke(cli, args, input=raw, env=env(campaign))
    assert result.exit_code == status
    assert str(broken) in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert db.scalar("SELECT count(*) FROM bounce_messages") == 0


def test_ingest_auto_replies_and_challenges_suppress_nothing(
    db: Database, campaign: Campaign
) -> None:
    to = campaign.sent[TOMRA]
    names = [
        "autoreply/fravaerende-report-nb.eml",
        "autoreply/out-of-office-en.eml",
        "autoreply/boxbe-challenge.eml",
        "autoreply/challenge-as-dsn-nb.eml",
    ]
    for name in names:
        args = ["--db", db.url, "bounces", "ingest", "--json"]
        result = CliRunner().invoke(cli, args, input=bounce(name, to), env=env(campaign))
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["auto_reply"] == 1, name
    assert db.scalar("SELECT state FROM deliveries WHERE id = ?", (to.id,)) == "sent"
    assert db.scalar("SELECT count(*) FROM suppressions") == 0
    # A real DSN afterwards still stops the address.
    real = bounce("autoreply/dsn-auto-generated-5.1.1.eml", to)
    result = CliRunner().invoke(
        cli, ["--db", db.url, "bounces", "ingest"], input=real, env=env(campaign)
    )
    assert result.output.startswith("1 melding: 1 hard retur,"), result.output
    assert db.scalar("SELECT reason FROM suppressions WHERE value = ?", (TOMRA,)) == "hard_bounce"
