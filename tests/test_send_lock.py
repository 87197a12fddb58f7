from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from helpers import FAST, campaign_toml
from varsel import outbox
from varsel.channel.smtp_relay import RelayConfig
from varsel.config import Settings
from varsel.db import Database
from varsel.sender import send_campaign
from varsel.testing import SmtpSink

CAMPAIGN = campaign_toml()


def test_a_send_refused_before_it_starts_changes_nothing_and_is_not_audited(
    db: Database, campaign_id: int, settings: Settings, tmp_path: Path
) -> None:
    from varsel import audit
    from varsel.send_gate import send_checked
    from varsel.sender import SendError

    before = db.query("SELECT status, sender_pid, sender_lease_until FROM campaigns")
    no_keys = Settings.load(environ={}, dkim_key_dir=str(tmp_path / "none"))
    with SmtpSink() as sink:
        relay = RelayConfig.from_url(sink.url)
        with pytest.raises(SendError, match=r"DKIM-nøkkelen .* finnes ikke"):
            send_checked(
                db, no_keys, campaign_id, actor="kari", no_approval=True, relay=relay, options=FAST
            )
        assert db.query("SELECT status, sender_pid, sender_lease_until FROM campaigns") == before
        assert audit.entries(db, action=audit.Action.CAMPAIGN_SEND) == []
        # Run again at once, as it should have been: nothing is in the way.
        report = send_checked(
            db, settings, campaign_id, actor="kari", no_approval=True, relay=relay, options=FAST
        )
    assert report.stopped == "done"
    assert len(audit.entries(db, action=audit.Action.CAMPAIGN_SEND)) == 1


def _hold(db: Database, campaign_id: int, holder: str) -> None:
    """Leave the campaign locked by `holder` for another half minute, as a sender would."""
    from varsel.clock import utcnow

    until = (utcnow() + dt.timedelta(seconds=30)).isoformat()
    db.execute(
        "UPDATE campaigns SET status = 'sending', sender_pid = ?, sender_lease_until = ? "
        "WHERE id = ?",
        (holder, until, campaign_id),
    )


def test_a_lock_left_by_a_process_of_this_host_that_ended_is_taken_over_at_once(
    db: Database, campaign_id: int, settings: Settings
) -> None:
    import os
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    _hold(db, campaign_id, f"{os.uname().nodename}:{gone.pid}:0badc0de")
    with SmtpSink() as sink:
        report = send_campaign(
            db, settings, campaign_id, relay=RelayConfig.from_url(sink.url), options=FAST
        )
    assert report.stopped == "done"
    assert report.counts["sent"] == 6


@pytest.mark.parametrize("where", ["live", "other host"])
def test_a_lock_held_by_a_live_process_or_another_host_is_respected(
    db: Database, campaign_id: int, settings: Settings, where: str
) -> None:
    import os
    import subprocess

    from varsel.sender import SendError

    with subprocess.Popen(["sleep", "30"]) as live:
        try:
            host = os.uname().nodename if where == "live" else "other-host.example"
            pid = live.pid if where == "live" else 1
            _hold(db, campaign_id, f"{host}:{pid}:0badc0de")
            with pytest.raises(SendError) as caught:
                send_campaign(
                    db,
                    settings,
                    campaign_id,
                    relay=RelayConfig.from_url("smtp://127.0.0.1:1"),
                    options=FAST,
                )
        finally:
            live.kill()
    assert re.fullmatch(
        rf"kampanje {campaign_id} sendes allerede av {host}:{pid}:0badc0de; vent, eller stopp den "
        r"prosessen; låsen går ut kl\. \d\d\.\d\d\.\d\d",
        caught.value.message,
    )
    assert outbox.counts(db, campaign_id)["queued"] == 6


@pytest.mark.parametrize("end", ["finish", "release"])
def test_a_pause_that_came_as_the_last_deliveries_went_out_leaves_the_campaign_done(
    db: Database, campaign_id: int, end: str
) -> None:
    # However the run ended, on its own (finish) or on an error (release): nothing is left to
    # resume, so the campaign is done, not paused for ever.
    from varsel import send_lock

    _hold(db, campaign_id, "host:1:run")
    db.execute("UPDATE campaigns SET status = 'paused' WHERE id = ?", (campaign_id,))
    db.execute("UPDATE deliveries SET state = 'sent' WHERE campaign_id = ?", (campaign_id,))
    if end == "finish":
        send_lock.finish(db, campaign_id, "host:1:run", 6, "paused")
    else:
        send_lock.release(db, campaign_id, "host:1:run", 6)
    assert db.query_one(
        "SELECT status, sender_pid, sender_lease_until FROM campaigns WHERE id = ?",
        (campaign_id,),
    ) == ("done", None, None)
    kinds = [
        r[0] for r in db.query("SELECT kind FROM events WHERE campaign_id = ?", (campaign_id,))
    ]
    assert kinds[-2:] == ["pause_came_too_late", "send_run"]


def test_a_run_that_fails_while_paused_with_deliveries_left_stays_paused(
    db: Database, campaign_id: int
) -> None:
    from varsel import send_lock

    _hold(db, campaign_id, "host:1:run")
    db.execute("UPDATE campaigns SET status = 'paused' WHERE id = ?", (campaign_id,))
    send_lock.release(db, campaign_id, "host:1:run", 0)
    assert db.query_one(
        "SELECT status, sender_pid FROM campaigns WHERE id = ?", (campaign_id,)
    ) == ("paused", None)
    assert outbox.counts(db, campaign_id)["queued"] == 6


def test_a_run_whose_lock_was_taken_over_leaves_the_campaign_to_its_new_holder(
    db: Database, campaign_id: int
) -> None:
    from varsel import send_lock

    _hold(db, campaign_id, "host:2:new")
    db.execute("UPDATE deliveries SET state = 'sent' WHERE campaign_id = ?", (campaign_id,))
    send_lock.release(db, campaign_id, "host:1:old", 0)
    assert db.query_one(
        "SELECT status, sender_pid FROM campaigns WHERE id = ?", (campaign_id,)
    ) == ("sending", "host:2:new")


def _to_workers(db: Database, campaign_id: int, status: str) -> None:
    """The campaign as `campaign start` left it, its lease run out long ago."""
    from varsel.leases import WORKERS

    db.execute(
        "UPDATE campaigns SET status = ?, sender_pid = ?, "
        "sender_lease_until = '2020-01-01T00:00:00.000Z' WHERE id = ?",
        (status, WORKERS, campaign_id),
    )


@pytest.mark.parametrize("status", ["sending", "ready"])
def test_a_workers_campaign_is_not_taken_by_a_single_sender_though_its_lease_ran_out(
    db: Database, campaign_id: int, status: str
) -> None:
    from varsel import send_lock
    from varsel.leases import WORKERS
    from varsel.sender import SendError

    _to_workers(db, campaign_id, status)
    with pytest.raises(SendError) as caught:
        send_lock.take(db, campaign_id, "host:1:cli", None)
    assert caught.value.message == (
        f"kampanje {campaign_id} er gitt til arbeiderne («varsel worker»), og bare de sender "
        f"den; vil du sende den selv, sett den på pause med «varsel campaign pause "
        f"{campaign_id}» og send den så med «varsel campaign send {campaign_id}»"
    )
    assert db.query_one(
        "SELECT status, sender_pid FROM campaigns WHERE id = ?", (campaign_id,)
    ) == (status, WORKERS)


def test_a_paused_workers_campaign_is_taken_back_by_a_single_sender(
    db: Database, campaign_id: int, settings: Settings
) -> None:
    _to_workers(db, campaign_id, "paused")
    with SmtpSink() as sink:
        report = send_campaign(
            db, settings, campaign_id, relay=RelayConfig.from_url(sink.url), options=FAST
        )
    assert report.counts["sent"] == 6
    assert db.query_one(
        "SELECT status, sender_pid FROM campaigns WHERE id = ?", (campaign_id,)
    ) == ("done", None)
    kinds = [
        r[0] for r in db.query("SELECT kind FROM events WHERE campaign_id = ?", (campaign_id,))
    ]
    assert "taken_from_workers" in kinds


def test_a_paused_workers_campaign_waits_for_the_emails_its_workers_still_hold(
    db: Database, campaign_id: int
) -> None:
    from varsel import send_lock
    from varsel.leases import WORKERS
    from varsel.sender import SendError

    _to_workers(db, campaign_id, "paused")
    db.execute(
        "UPDATE deliveries SET state = 'claimed', claimed_by = 'host:9:w', "
        "lease_until = '2999-01-01T00:00:00.000Z' WHERE id IN "
        "(SELECT id FROM deliveries WHERE campaign_id = ? ORDER BY id LIMIT 2)",
        (campaign_id,),
    )
    with pytest.raises(SendError) as caught:
        send_lock.take(db, campaign_id, "host:1:cli", None)
    assert caught.value.message == (
        f"arbeiderne gjør seg ferdige med 2 e-poster i kampanje {campaign_id}; "
        "prøv igjen om et minutt"
    )
    assert db.query_one(
        "SELECT status, sender_pid FROM campaigns WHERE id = ?", (campaign_id,)
    ) == ("paused", WORKERS)
