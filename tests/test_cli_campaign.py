"""`varsel campaign ...` as the operator sees it: status words, decisions, whole lines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from helpers import campaign_toml, sample_campaign
from varsel.cli import cli, err, out
from varsel.db import Database
from varsel.send_report import SendReport


@pytest.fixture(autouse=True)
def width_80(monkeypatch: pytest.MonkeyPatch) -> None:
    """The consoles as wide as a plain terminal, whatever runs the tests."""
    monkeypatch.setattr(out, "_width", 80)
    monkeypatch.setattr(err, "_width", 80)


def run(db: Database, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--db", db.url, "campaign", *args])


def in_doubt(db: Database, campaign_id: int, n: int, status: str = "done") -> None:
    """The campaign as a crash leaves it: n deliveries in doubt, the rest sent."""
    with db.transaction():
        db.execute("UPDATE deliveries SET state = 'sent' WHERE campaign_id = ?", (campaign_id,))
        db.execute(
            "UPDATE deliveries SET state = 'in_doubt' WHERE id IN (SELECT id FROM deliveries "
            "WHERE campaign_id = ? ORDER BY id LIMIT ?)",
            (campaign_id, n),
        )
        db.execute("UPDATE campaigns SET status = ? WHERE id = ?", (status, campaign_id))


def sending(db: Database, campaign_id: int) -> None:
    """The campaign as a sender at work leaves it."""
    db.execute("UPDATE campaigns SET status = 'sending' WHERE id = ?", (campaign_id,))


def test_pause_resume_and_cancel_name_the_status_in_bokmal(db: Database, campaign_id: int) -> None:
    sending(db, campaign_id)
    then = f" Send resten med «varsel campaign send {campaign_id}»."
    for command, word, more in (
        ("pause", "pauset", ""),
        ("resume", "klar", then),
        ("cancel", "avbrutt", ""),
    ):
        result = run(db, command, str(campaign_id))
        assert result.exit_code == 0, result.output
        assert result.output == f"Kampanje {campaign_id} er nå «{word}».{more}\n"


def test_resuming_a_campaign_of_the_workers_hands_it_back_to_them(
    db: Database, campaign_id: int
) -> None:
    from varsel.leases import WORKERS

    db.execute(
        "UPDATE campaigns SET status = 'paused', sender_pid = ? WHERE id = ?",
        (WORKERS, campaign_id),
    )
    result = run(db, "resume", str(campaign_id))
    if db.dialect == "postgresql":
        # Theirs to send at once, as the console makes it (workers run on PostgreSQL only).
        assert result.output == (
            f"Kampanje {campaign_id} er nå «sendes». Arbeiderne (`varsel worker`) sender resten.\n"
        )
        assert db.scalar("SELECT status FROM campaigns WHERE id = ?", (campaign_id,)) == "sending"
    else:
        assert result.output == (
            f"Kampanje {campaign_id} er nå «klar». "
            f"Send resten med «varsel campaign send {campaign_id}».\n"
        )


def test_a_campaign_that_is_not_sending_is_not_paused(db: Database, campaign_id: int) -> None:
    from varsel import audit

    before = db.query("SELECT status, updated_at FROM campaigns")
    result = run(db, "pause", str(campaign_id))
    assert (result.exit_code, result.output) == (
        2,
        f"varsel: kampanje {campaign_id} er «klar»; bare en kampanje som sendes, kan pauses\n",
    )
    assert db.query("SELECT status, updated_at FROM campaigns") == before
    assert audit.entries(db, action=audit.Action.CAMPAIGN_PAUSE) == []


def test_send_names_a_paused_campaigns_status_in_bokmal(db: Database, campaign_id: int) -> None:
    sending(db, campaign_id)
    assert run(db, "pause", str(campaign_id)).exit_code == 0
    result = run(db, "send", str(campaign_id), "--no-approval", "--smtp", "smtp://127.0.0.1:1")
    assert result.exit_code == 2
    assert f"kampanje {campaign_id} er «pauset»; gjenoppta den" in result.output


def test_a_finished_campaign_with_deliveries_in_doubt_waits_for_a_decision(
    db: Database, campaign_id: int
) -> None:
    in_doubt(db, campaign_id, 3)
    result = run(db, "status", str(campaign_id))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"Kampanje {campaign_id} «Test»: venter på avgjørelse: 3 usikre"
    # The command is on one line, whole, though the line is longer than the terminal.
    assert lines[-2:] == [
        "Send dem på nytt (de kan komme fram to ganger) med "
        f"«varsel campaign resend-in-doubt {campaign_id}».",
        "Eller avgjør dem uten ny sending, når loggen til e-posttjeneren viser om de kom fram: "
        f"«varsel campaign settle-in-doubt {campaign_id} --as sent» eller «--as failed».",
    ]


def test_settle_in_doubt_decides_without_sending_and_the_campaign_is_done_with(
    db: Database, campaign_id: int
) -> None:
    in_doubt(db, campaign_id, 3)
    first = db.scalar(
        "SELECT min(id) FROM deliveries WHERE campaign_id = ? AND state = 'in_doubt'",
        (campaign_id,),
    )
    one = run(db, "settle-in-doubt", str(campaign_id), "--as", "sent", "--delivery", str(first))
    assert (one.exit_code, one.output) == (0, "1 usikker leveranse er avgjort som sendt.\n")
    rest = run(db, "settle-in-doubt", str(campaign_id), "--as", "failed")
    assert (rest.exit_code, rest.output) == (
        0,
        "2 usikre leveranser er avgjort som feilet (sendes ikke på nytt).\n",
    )
    status = run(db, "status", str(campaign_id))
    assert status.output.splitlines()[0] == f"Kampanje {campaign_id} «Test»: ferdig"
    again = run(db, "settle-in-doubt", str(campaign_id), "--as", "sent")
    assert again.output == (
        f"Kampanje {campaign_id} har ingen usikre leveranser; ingenting er endret.\n"
    )


def test_settle_in_doubt_refuses_a_delivery_not_in_doubt_in_one_line(
    db: Database, campaign_id: int
) -> None:
    in_doubt(db, campaign_id, 1)
    before = db.query("SELECT id, state FROM deliveries ORDER BY id")
    result = run(db, "settle-in-doubt", str(campaign_id), "--as", "sent", "--delivery", "99999")
    assert result.exit_code == 2
    assert result.output == (
        f"varsel: leveranse 99999 er ikke usikker i kampanje {campaign_id} "
        f"(se «varsel campaign status {campaign_id}»); ingenting er endret\n"
    )
    assert db.query("SELECT id, state FROM deliveries ORDER BY id") == before
    no_choice = run(db, "settle-in-doubt", str(campaign_id))
    assert no_choice.exit_code == 2
    assert "--as" in no_choice.output


def test_the_send_summary_says_the_campaign_waits_for_a_decision() -> None:
    counts = {"sent": 163, "deferred": 0, "failed": 0, "suppressed": 0, "in_doubt": 1, "queued": 0}
    text = SendReport(3, counts, 163, 2.0, "done", 1).summary()
    assert text.startswith("Kampanje 3 venter på avgjørelse (1 usikker): 163 sendt,")
    assert "\n1 leveranse er usikker (forbindelsen brøt" in text
    assert "«varsel campaign resend-in-doubt 3»" in text
    assert "«varsel campaign settle-in-doubt 3 --as sent»" in text


def test_resend_in_doubt_says_when_there_is_nothing_to_do(db: Database, campaign_id: int) -> None:
    result = run(db, "resend-in-doubt", str(campaign_id))
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"Kampanje {campaign_id} har ingen usikre leveranser; ingenting er endret.\n"
    )


def test_resend_in_doubt_counts_in_the_singular(db: Database, campaign_id: int) -> None:
    in_doubt(db, campaign_id, 1)
    result = run(db, "resend-in-doubt", str(campaign_id))
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"1 usikker leveranse er lagt i kø igjen; kjør «varsel campaign send {campaign_id}».\n"
    )


def test_list_without_a_terminal_prints_whole_names(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    name = "Sikkerhetsinformasjon [b]til[/b] virksomheter i Oslo politidistrikt om dataangrep 2026"
    sample_campaign(db, brreg, tmp_path, campaign_toml(name=name))
    result = run(db, "list")
    assert result.exit_code == 0, result.output
    assert any(name in line for line in result.output.splitlines())


def test_send_refuses_a_workers_campaign_whose_lease_ran_out(
    db: Database, campaign_id: int
) -> None:
    # All workers stopped a while ago: the campaign is still theirs until an operator pauses it.
    from varsel.leases import WORKERS

    db.execute(
        "UPDATE campaigns SET status = 'sending', sender_pid = ?, "
        "sender_lease_until = '2020-01-01T00:00:00.000Z' WHERE id = ?",
        (WORKERS, campaign_id),
    )
    before = db.query("SELECT * FROM campaigns"), db.query("SELECT id, state FROM deliveries")
    result = run(db, "send", str(campaign_id), "--no-approval", "--smtp", "smtp://127.0.0.1:1")
    assert (result.exit_code, result.output) == (
        2,
        f"varsel: kampanje {campaign_id} er gitt til arbeiderne («varsel worker»), og bare de "
        "sender den; vil du sende den selv, sett den på pause med "
        f"«varsel campaign pause {campaign_id}» og send den så med "
        f"«varsel campaign send {campaign_id}»\n",
    )
    after = db.query("SELECT * FROM campaigns"), db.query("SELECT id, state FROM deliveries")
    assert after == before


def test_status_prints_a_long_campaign_name_whole_on_one_line(
    db: Database, campaign_id: int
) -> None:
    name = "Sikkerhetsråd til frisører og byggefirma i Oslo politidistrikt [vår 2026]"
    db.execute("UPDATE campaigns SET name = ? WHERE id = ?", (name, campaign_id))
    result = run(db, "status", str(campaign_id))
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.startswith(f"Kampanje {campaign_id} «{name}»: ")
    assert len(first) > 80


def _create(db: Database, tmp_path: Path) -> Result:
    from helpers import PASSWORD, key_settings, next_code, operator

    secret = operator(db, key_settings(tmp_path), "kari", "author")
    return CliRunner().invoke(
        cli,
        [
            "--db",
            db.url,
            "campaign",
            "create",
            str(Path(__file__).parent.parent / "examples" / "pilot.toml"),
        ],
        env={
            "VARSEL_DKIM_KEY_DIR": str(tmp_path / "keys"),
            "VARSEL_USER": "kari",
            "VARSEL_PASSWORD": PASSWORD,
            "VARSEL_TOTP": next_code(secret),
        },
    )


def test_create_warns_in_one_line_when_the_registry_data_is_old(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    from datetime import date

    from varsel.registry import import_dump
    from varsel.snapshot import norway_today

    # The audit's case: a dump dated 15 December 2025, imported today.
    import_dump(db, brreg / "enheter-sample.json", dump_date="2025-12-15")
    import_dump(db, brreg / "underenheter-sample.json", dump_date="2025-12-15")
    result = _create(db, tmp_path)
    assert result.exit_code == 0, result.output
    days = (norway_today() - date(2025, 12, 15)).days
    assert result.stderr == (
        f"advarsel: Lageret har registerdata fra 2025-12-15 (dumpdato), {days} dager gamle, "
        "eldre enn 7 dager; hent endringene siden med «varsel registry update --fetch» (eller "
        "en ny dump) og lag kampanjen på nytt hvis mye kan ha endret seg.\n"
    )
    assert result.stdout.split()[-1] == "1"  # the id stays last


def test_create_says_nothing_of_fresh_registry_data(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    from varsel.registry import import_dump
    from varsel.snapshot import norway_today

    today = norway_today().isoformat()
    import_dump(db, brreg / "enheter-sample.json", dump_date=today)
    import_dump(db, brreg / "underenheter-sample.json", dump_date=today)
    result = _create(db, tmp_path)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


def test_forget_help_says_returned_letters_free_text_is_erased_too(db: Database) -> None:
    # 7563562: the print house's words on a returned letter may name the addressee.
    result = run(db, "forget", "--help")
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "trykkeriets fritekst om returnerte brev" in said
    assert "(også årsakskoden for et returnert brev)" in said


def test_status_says_the_most_common_reasons_worded_and_counted_whole(
    db: Database, campaign_id: int
) -> None:
    ids = [int(r[0]) for r in db.query("SELECT id FROM deliveries ORDER BY id")]
    with db.transaction():
        for n, did in enumerate(ids[:3]):
            db.execute(
                "UPDATE deliveries SET state = 'failed', last_reply = ? WHERE id = ?",
                (f"550 5.1.1 <person{n}@firma{n}.no>: Recipient address rejected", did),
            )
        # A letter that could not be made, as `varsel letters` leaves it.
        db.execute(
            "UPDATE deliveries SET channel = 'letter', key = '912345678', state = 'failed', "
            "last_reply = 'no_postal_address' WHERE id = ?",
            (ids[3],),
        )
    result = run(db, "status", str(campaign_id))
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[lines.index("Vanligste grunner:") + 1 :] == [
        "  feilet         3  550 5.1.1 <(adresse)>: Recipient address rejected",
        "  feilet         1  Brev: ingen postadresse eller forretningsadresse i registeret",
    ]
    assert "@firma" not in result.output


def test_send_outside_the_window_says_when_it_begins_and_sends_nothing_before(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    import datetime as dt
    import threading
    import time
    from zoneinfo import ZoneInfo

    from varsel.campaign import CampaignStatus, set_status
    from varsel.db import connect
    from varsel.send_window import WINDOW_DAYS
    from varsel.testing import SmtpSink

    # Open only on the day after tomorrow: closed now (unless the test runs for two days).
    oslo = dt.datetime.now(ZoneInfo("Europe/Oslo"))
    day = (oslo + dt.timedelta(days=2)).date()
    window = f'[window]\ndays = ["{WINDOW_DAYS[day.weekday()]}"]\nstart = "09:15"\n'
    campaign_id = sample_campaign(db, brreg, tmp_path, campaign_toml() + window)
    results: list[Result] = []
    with SmtpSink() as sink, connect(db.url, migrate=False) as other:
        args = ["--db", db.url, "campaign", "send", str(campaign_id), "--no-approval"]
        sending = threading.Thread(
            target=lambda: results.append(
                CliRunner().invoke(
                    cli,
                    [*args, "--smtp", sink.url],
                    env={"VARSEL_DKIM_KEY_DIR": str(tmp_path / "keys")},
                )
            )
        )
        sending.start()
        started = time.monotonic()
        while other.scalar("SELECT status FROM campaigns WHERE id = ?", (campaign_id,)) != (
            CampaignStatus.SENDING.value
        ):
            assert time.monotonic() - started < 30
            time.sleep(0.05)
        time.sleep(1.5)  # the send is under way: nothing goes out before the window
        received = len(sink.messages)
        set_status(other, campaign_id, CampaignStatus.PAUSED, actor="kari")
        sending.join(30)
    [result] = results
    assert result.exit_code == 0, result.output
    assert received == 0
    assert len(sink.messages) == 0
    months = (
        "januar",
        "februar",
        "mars",
        "april",
        "mai",
        "juni",
        "juli",
        "august",
        "september",
        "oktober",
        "november",
        "desember",
    )
    days = ("mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag")
    when = f"{days[day.weekday()]} {day.day}. {months[day.month - 1]} kl. 09.15"
    assert (
        f"Kampanje {campaign_id} er utenfor sendevinduet sitt ([window]): sendingen begynner "
        f"{when} (Europe/Oslo) og venter til da."
    ) in " ".join(result.stderr.split())
    assert (
        db.scalar(
            "SELECT count(*) FROM deliveries WHERE campaign_id = ? AND state = 'sent'",
            (campaign_id,),
        )
        == 0
    )


def test_create_in_a_store_that_does_not_exist_says_so_and_makes_none(tmp_path: Path) -> None:
    # A mistyped --db was made into a new store, whose accounts are none: «feil brukernavn,
    # passord eller engangskode» sent the author looking for a mistake in the password.
    definition = tmp_path / "c.toml"
    definition.write_text(campaign_toml(), "utf-8")
    typo = tmp_path / "varsle.db"
    result = CliRunner().invoke(
        cli,
        ["--db", str(typo), "campaign", "create", str(definition), "--user", "kari"],
        env={"VARSEL_PASSWORD": "x", "VARSEL_TOTP": "123456"},
    )
    assert (result.exit_code, result.output) == (
        2,
        f"varsel: lageret {typo} finnes ikke (lag det med «varsel init»)\n",
    )
    assert not typo.exists()


@pytest.fixture
def ctrl_c_raises() -> Iterator[None]:
    """Python's own SIGINT handler, as in a terminal (a background job has SIGINT ignored)."""
    import signal

    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.mark.usefixtures("ctrl_c_raises")
def test_ctrl_c_during_a_send_says_what_was_sent_and_how_to_send_the_rest(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    import os
    import signal
    import threading

    from varsel.testing import SmtpSink

    campaign_id = sample_campaign(db, brreg, tmp_path)
    emails = "SELECT count(*) FROM deliveries WHERE campaign_id = ? AND channel = 'email'"
    assert db.scalar(emails, (campaign_id,)) == 6
    with SmtpSink() as sink:

        def ctrl_c() -> None:
            sink.wait_for(2, timeout=30)
            os.kill(os.getpid(), signal.SIGINT)

        threading.Thread(target=ctrl_c, daemon=True).start()
        args = ["--db", db.url, "campaign", "send", str(campaign_id), "--no-approval"]
        # Two at once, then one every five seconds: Ctrl-C comes after the first two.
        result = CliRunner().invoke(
            cli,
            [*args, "--rate", "0.2", "--smtp", sink.url],
            env={"VARSEL_DKIM_KEY_DIR": str(tmp_path / "keys")},
        )
    assert result.exit_code == 130, result.output
    sent = db.scalar(emails + " AND state = 'sent'", (campaign_id,))
    # Stopped at once: what was on the wire finished (the first two, perhaps the third), and
    # not every message scheduled (all six, at this rate half a minute).
    assert sent in (2, 3)
    assert result.output == (
        f"varsel: avbrutt: kampanje {campaign_id} har {sent} sendt, {6 - sent} igjen; "
        f"«varsel campaign send {campaign_id}» sender resten\n"
    )
