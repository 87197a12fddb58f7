"""Worker leases on the store's clock: renewal, expiry and the in-doubt rule."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import campaign_toml
from varsel import leases, outbox
from varsel.campaign import create_campaign
from varsel.config import Settings
from varsel.db import Database, connect
from varsel.leases import start_campaign
from varsel.registry import import_dump

pytestmark = pytest.mark.postgres

CAMPAIGN = campaign_toml()


@pytest.fixture
def campaign(pg_url: str, brreg: Path, tmp_path: Path) -> Iterator[tuple[Database, int]]:
    db = connect(pg_url)
    import_dump(db, brreg / "enheter-sample.json")
    path = tmp_path / "c.toml"
    path.write_text(CAMPAIGN, "utf-8")
    settings = Settings.load(environ={}, dkim_key_dir=str(tmp_path / "keys"))
    cid = create_campaign(db, settings, path).campaign.id
    start_campaign(db, cid)
    yield db, cid
    db.close()


def test_the_store_clock_reads_the_servers_time(campaign: tuple[Database, int]) -> None:
    db, _ = campaign
    clock = leases.StoreClock()
    server = clock.sync(db)
    assert abs(clock.now() - server) < 0.5
    assert clock.iso(60) > clock.iso()
    assert leases.iso_at(0.5) == "1970-01-01T00:00:00.500Z"


def test_expired_leases_come_back_queued_or_in_doubt(campaign: tuple[Database, int]) -> None:
    db, cid = campaign
    clock = leases.StoreClock()
    clock.sync(db)
    taken = outbox.claim(db, cid, "a:1:0", 4, clock.iso(), clock.iso(0.2))
    db.execute("UPDATE deliveries SET data_started_at = ? WHERE id = ?", (clock.iso(), taken[0].id))
    assert leases.recover_expired(db, cid) == (0, 0)  # not yet
    time.sleep(0.3)
    assert leases.recover_expired(db, cid) == (1, 3)
    counts = outbox.counts(db, cid)
    assert (counts["in_doubt"], counts["queued"], counts["claimed"]) == (1, 5, 0)


def test_renewal_keeps_a_workers_leases_and_only_its_own(campaign: tuple[Database, int]) -> None:
    db, cid = campaign
    clock = leases.StoreClock()
    clock.sync(db)
    outbox.claim(db, cid, "a:1:0", 2, clock.iso(), clock.iso(0.2))
    outbox.claim(db, cid, "b:2:0", 2, clock.iso(), clock.iso(0.2))
    assert leases.renew(db, "a:1:0", cid, 30) == 2
    time.sleep(0.3)
    assert leases.recover_expired(db, cid) == (0, 2)
    held = db.query("SELECT DISTINCT claimed_by FROM deliveries WHERE state = 'claimed'")
    assert held == [("a:1:0",)]


def test_a_worker_taken_over_gives_back_what_it_held_at_once_and_is_stopped(
    campaign: tuple[Database, int],
) -> None:
    db, cid = campaign
    clock = leases.StoreClock()
    clock.sync(db)
    leases.register(db, "vert:42:ab", 4, None)
    leases.register(db, "vert:43:cd", 4, None)
    taken = outbox.claim(db, cid, "vert:42:ab", 3, clock.iso(), clock.iso(30))
    outbox.claim(db, cid, "vert:43:cd", 2, clock.iso(), clock.iso(30))
    db.execute("UPDATE deliveries SET data_started_at = ? WHERE id = ?", (clock.iso(), taken[0].id))
    with db.transaction():
        assert leases.take_over(db, "vert:42:ab") == (1, 2)  # its leases have not run out
    held = db.query("SELECT DISTINCT claimed_by FROM deliveries WHERE state = 'claimed'")
    assert held == [("vert:43:cd",)]  # another worker's claim stands
    counts = outbox.counts(db, cid)
    assert (counts["in_doubt"], counts["claimed"]) == (1, 2)
    states = {w.id: w.state for w in leases.workers(db)}
    assert states == {"vert:42:ab": "stopped", "vert:43:cd": "running"}


def test_a_registered_worker_is_running_then_stopped_with_its_counts(
    campaign: tuple[Database, int],
) -> None:
    db, cid = campaign
    leases.register(db, "vert:42:ab", 4, 9100)
    leases.heartbeat(db, "vert:42:ab", cid, leases.Counters(sent=7, rate=3.5), 2, 1)
    (row,) = leases.workers(db)
    assert (row.host, row.pid, row.state, row.campaign_id, row.sent, row.leases) == (
        "vert",
        42,
        "running",
        cid,
        7,
        2,
    )
    leases.deregister(db, "vert:42:ab", leases.Counters(sent=9), 1)
    (row,) = leases.workers(db)
    assert (row.state, row.sent, row.campaign_id) == ("stopped", 9, None)


def test_workers_stopped_long_ago_are_forgotten(campaign: tuple[Database, int]) -> None:
    db, _ = campaign
    for worker_id in ("gammel:1:aa", "ny:2:bb", "i-gang:3:cc"):
        leases.register(db, worker_id, 4, None)
    leases.deregister(db, "gammel:1:aa", leases.Counters(), 0)
    leases.deregister(db, "ny:2:bb", leases.Counters(), 0)
    db.execute(
        "UPDATE workers SET heartbeat_at = '2020-01-01T00:00:00.000Z' WHERE id = 'gammel:1:aa'"
    )
    assert leases.forget_stopped(db) == 1
    assert sorted(w.host for w in leases.workers(db)) == ["i-gang", "ny"]


def test_a_worker_given_a_campaign_says_why_it_would_wait(campaign: tuple[Database, int]) -> None:
    from varsel.campaign import CampaignError, CampaignStatus, set_status

    db, cid = campaign
    assert leases.waiting_for(db, cid) is None  # started: the workers send it
    set_status(db, cid, CampaignStatus.PAUSED)
    assert leases.waiting_for(db, cid) == (
        f"Kampanje {cid} er pauset; arbeideren venter til noen kjører "
        f"«varsel campaign resume {cid}»"
    )
    db.execute("UPDATE campaigns SET status = 'ready', sender_pid = NULL WHERE id = ?", (cid,))
    assert leases.waiting_for(db, cid) == (
        f"Kampanje {cid} er ikke gitt til arbeiderne ennå; arbeideren venter til noen kjører "
        f"«varsel campaign start {cid}»"
    )
    with pytest.raises(CampaignError, match=f"^kampanje {cid + 1} finnes ikke$"):
        leases.waiting_for(db, cid + 1)


def test_starting_a_paused_or_finished_campaign_names_its_status_in_bokmal(
    campaign: tuple[Database, int],
) -> None:
    from varsel.campaign import CampaignError

    db, cid = campaign
    for status, said in (
        ("paused", f"kampanje {cid} er «pauset»; gjenoppta den med «varsel campaign resume»"),
        ("done", f"kampanje {cid} er «ferdig»"),
    ):
        db.execute("UPDATE campaigns SET status = ?, sender_pid = NULL WHERE id = ?", (status, cid))
        with pytest.raises(CampaignError) as caught:
            start_campaign(db, cid)
        assert caught.value.message == said


def test_starting_refusals_are_said_in_the_consoles_languages(
    campaign: tuple[Database, int],
) -> None:
    # The console's «Gi til arbeiderne» shows these refusals in the page's language.
    from varsel.campaign import CampaignError
    from varsel.web.console_auth import translate

    db, cid = campaign
    db.execute("UPDATE campaigns SET status = 'paused', sender_pid = NULL WHERE id = ?", (cid,))
    with pytest.raises(CampaignError) as caught:
        start_campaign(db, cid)
    assert translate("en", caught.value.message) == (
        f"campaign {cid} is “paused”; resume it with “varsel campaign resume”"
    )
    assert translate("nn", caught.value.message) == (
        f"kampanje {cid} er «pausa»; ta han opp att med «varsel campaign resume»"
    )
    with pytest.raises(CampaignError) as caught:
        start_campaign(db, cid + 1)
    assert translate("en", caught.value.message) == f"campaign {cid + 1} does not exist"
