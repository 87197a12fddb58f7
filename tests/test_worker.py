"""`varsel worker` on the local PostgreSQL: several processes, one campaign, the same guarantees.

The campaign size of the multi-process tests is the issue's 20,000 deliveries (about two minutes
on two cores); VARSEL_WORKER_TEST_DELIVERIES sets a smaller one for quick runs while developing.
"""

from __future__ import annotations

import collections
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from helpers import campaign_toml, end_connections, in_thread, schema_url, until
from varsel import leases, outbox
from varsel.campaign import CampaignStatus, create_campaign, set_status
from varsel.channel.smtp_relay import RelayConfig
from varsel.cli import cli
from varsel.config import Settings
from varsel.db import Database, connect
from varsel.leases import notify, start_campaign, waiting_for, worker_status
from varsel.registry import import_dump
from varsel.shared_limits import HOLD
from varsel.synth import write_dump
from varsel.testing import Fault, FaultPlan, ReceivedMessage, SmtpSink, Stage
from varsel.worker import Worker, WorkerOptions

pytestmark = pytest.mark.postgres

DELIVERIES = int(os.environ.get("VARSEL_WORKER_TEST_DELIVERIES", "20000"))
UNITS_PER_DELIVERY = 6  # about one synthetic unit in five has an address of its own
LEASE = 5.0  # seconds: a killed worker's deliveries come back this soon
CONNECTIONS = 4  # per worker
CAMPAIGN = campaign_toml(
    name="{name}",
    limits=(
        "connections = {connections}\nrate_per_second = 100000\nper_domain_concurrency = 8\n"
        "per_domain_per_minute = {per_domain}\n"
    ),
)
VERP = re.compile(r"^bounces\+(\d+)")


@dataclass(frozen=True)
class Store:
    """A PostgreSQL schema with the synthetic Oslo registry and two campaigns on it."""

    url: str
    keys: str
    campaign: int  # limits lifted: as fast as the workers go
    limited: int  # 240 messages a minute per recipient domain


@pytest.fixture(scope="module")
def store(postgres_base: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    folder = tmp_path_factory.mktemp("workers")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = schema_url(postgres_base, schema)
    try:
        dump = folder / "oslo.json.gz"
        write_dump(dump, units=DELIVERIES * UNITS_PER_DELIVERY, seed=17, municipalities=("0301",))
        settings = Settings.load(environ={}, dkim_key_dir=str(folder / "keys"))
        ids = []
        with connect(url) as db:
            import_dump(db, dump)
            for name, per_domain in (("Alle", 600_000), ("Begrenset", 240)):
                path = folder / f"{name}.toml"
                path.write_text(
                    CAMPAIGN.format(name=name, connections=CONNECTIONS, per_domain=per_domain),
                    "utf-8",
                )
                ids.append(create_campaign(db, settings, path).campaign.id)
        yield Store(url, str(folder / "keys"), ids[0], ids[1])
    finally:
        with psycopg.connect(postgres_base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def reset(db: Database, campaign_id: int, count: int, where: str = "TRUE") -> int:
    """The first `count` deliveries (matching `where`) queued as new, the rest cancelled."""
    with db.transaction():
        ids = [
            r[0]
            for r in db.query(
                f"SELECT id FROM deliveries WHERE campaign_id = ? AND {where} ORDER BY id LIMIT ?",
                (campaign_id, count),
            )
        ]
        db.execute(
            "UPDATE deliveries SET state = CASE WHEN id = ANY(?) THEN 'queued' ELSE 'cancelled' "
            "END, attempts = 0, next_attempt_at = '2000-01-01T00:00:00.000Z', claimed_by = NULL, "
            "lease_until = NULL, data_started_at = NULL, sent_at = NULL, message_id = NULL, "
            "last_reply = NULL WHERE campaign_id = ?",
            (ids, campaign_id),
        )
        db.execute(
            "UPDATE campaigns SET status = 'ready', sender_pid = NULL, sender_lease_until = NULL "
            "WHERE id = ?",
            (campaign_id,),
        )
        db.execute("DELETE FROM send_buckets")
        db.execute("DELETE FROM workers")
    start_campaign(db, campaign_id)  # past the four-eyes gate, as `campaign start` is
    return len(ids)


def worker_command(store: Store, sink: SmtpSink, campaign_id: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "varsel",
        "--db",
        store.url,
        "worker",
        "--campaign",
        str(campaign_id),
        "--smtp",
        sink.url,
        "--connections",
        str(CONNECTIONS),
        "--build-processes",
        "0",
    ]


def worker_env(store: Store) -> dict[str, str]:
    return {
        **os.environ,
        "VARSEL_DKIM_KEY_DIR": store.keys,
        "VARSEL_WORKER_LEASE_SECONDS": str(LEASE),
    }


def copies(received: list[ReceivedMessage]) -> collections.Counter[int]:
    """How many times the sink received each delivery (named by its VERP envelope sender)."""
    found = (VERP.match(m.mail_from) for m in received)
    return collections.Counter(int(m.group(1)) for m in found if m is not None)


def wait_all(procs: list[subprocess.Popen[bytes]], timeout: float) -> list[str]:
    """Wait for every process to exit; returns what each wrote to stderr.

    Past the timeout every one still running is killed before the test fails, so that no
    worker goes on sending into the next test's store.
    """
    deadline = time.monotonic() + timeout
    errors = []
    try:
        for proc in procs:
            _, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            errors.append((err or b"").decode(errors="replace"))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return errors


def wait_registered(db: Database, before: set[str], count: int, seconds: float = 120) -> None:
    """Wait until `count` workers not in `before` have registered (their signals handled)."""
    started = time.monotonic()
    while len({w for (w,) in db.query("SELECT id FROM workers")} - before) < count:
        assert time.monotonic() - started < seconds, "the workers did not start"
        time.sleep(0.1)


@pytest.mark.slow
def test_four_workers_send_every_delivery_exactly_once(store: Store) -> None:
    with connect(store.url) as db:
        total = reset(db, store.campaign, DELIVERIES)
        assert total == DELIVERIES
        with SmtpSink() as sink:
            procs = [
                subprocess.Popen(
                    worker_command(store, sink, store.campaign),
                    env=worker_env(store),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
                for _ in range(4)
            ]
            errors = wait_all(procs, 60 + DELIVERIES / 50)
            received = sink.messages
        assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
        counts = outbox.counts(db, store.campaign)
        sent_by = dict(
            db.query(
                "SELECT id, sent FROM workers WHERE stopped_at IS NOT NULL AND sent > 0 ORDER BY id"
            )
        )
        status = db.scalar("SELECT status FROM campaigns WHERE id = ?", (store.campaign,))
    assert counts["sent"] == total
    assert counts["queued"] == counts["claimed"] == counts["in_doubt"] == 0
    delivered = copies(received)
    assert len(received) == total
    assert set(delivered.values()) == {1}
    assert len(sent_by) >= 2  # the work was shared
    assert sum(sent_by.values()) == total
    assert status == CampaignStatus.DONE.value


@pytest.mark.slow
def test_killed_workers_lose_nothing_and_send_nothing_twice_outside_the_doubt(
    store: Store,
) -> None:
    rng = random.Random(7)
    with connect(store.url) as db:
        total = reset(db, store.campaign, DELIVERIES)
        # A relay that takes a few milliseconds per message: kills land inside transactions.
        plan = FaultPlan().on_rcpt(lambda r: True, Fault.delay(0.004))
        kills = 0
        with SmtpSink(faults=plan) as sink:
            command, env = worker_command(store, sink, store.campaign), worker_env(store)

            def start() -> subprocess.Popen[bytes]:
                return subprocess.Popen(
                    command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )

            procs = [start() for _ in range(4)]
            for _ in range(4):
                time.sleep(rng.uniform(1.0, 2.5))
                live = [p for p in procs if p.poll() is None]
                if not live:
                    break
                victim = rng.choice(live)
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                kills += 1
                procs[procs.index(victim)] = start()
            wait_all(procs, 90 + DELIVERIES / 40)
            received = sink.messages
        counts = outbox.counts(db, store.campaign)
        states = dict(
            db.query(
                "SELECT id, state FROM deliveries WHERE campaign_id = ? AND state <> 'cancelled'",
                (store.campaign,),
            )
        )
    assert kills >= 2
    assert counts["queued"] == counts["claimed"] == counts["deferred"] == 0
    assert counts["sent"] + counts["in_doubt"] == total  # nothing lost
    assert counts["in_doubt"] <= kills * CONNECTIONS  # one per open connection at most
    delivered = copies(received)
    assert max(delivered.values()) == 1  # nothing sent twice
    for delivery_id, state in states.items():
        if state == "sent":
            assert delivered[delivery_id] == 1
        else:
            assert state == "in_doubt"


def test_a_worker_whose_store_goes_away_stops_in_one_line_and_another_finishes(
    store: Store, postgres_base: str
) -> None:
    # The server ends the worker's connections mid-campaign, as a restart of PostgreSQL or
    # pg_terminate_backend does; told not to wait for the store (VARSEL_WORKER_RECONNECT_
    # SECONDS=0), the worker stops in one line naming the store, exit status 75 for systemd
    # to start it again, and a second worker finishes the campaign from the leases it left.
    with connect(store.url) as db:
        total = reset(db, store.campaign, 1200)
        plan = FaultPlan().on_rcpt(lambda r: True, Fault.delay(0.01))
        name = f"varsel-test-{uuid.uuid4().hex[:8]}"  # the worker's connections, by name
        with SmtpSink(faults=plan) as sink:
            command = worker_command(store, sink, store.campaign)
            first = subprocess.Popen(
                command,
                env={
                    **worker_env(store),
                    "PGAPPNAME": name,
                    "VARSEL_WORKER_RECONNECT_SECONDS": "0",
                },
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            until(lambda: outbox.counts(db, store.campaign)["sent"] >= 100, 60)
            with psycopg.connect(postgres_base, autocommit=True) as admin:
                ended = admin.execute(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
                    "FROM pg_stat_activity WHERE application_name = %s",
                    (name,),
                ).fetchone()
            [error] = wait_all([first], 60)
            second = subprocess.Popen(
                command, env=worker_env(store), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            [later] = wait_all([second], 120)
            received = sink.messages
        counts = outbox.counts(db, store.campaign)
    assert ended is not None
    assert ended[0] >= 3  # its store, control and lease connections
    assert first.returncode == 75
    assert "Traceback" not in error
    lines = error.splitlines()
    assert len(lines) == 1, error
    assert lines[0].startswith("varsel: lageret postgresql://")
    # The server's own word, or a closed socket when a connection finds it so first.
    reasons = (": tjeneren avsluttet forbindelsen (", ": forbindelsen ble brutt;")
    assert any(reason in lines[0] for reason in reasons), lines[0]
    assert lines[0].endswith("kommandoen kan kjøres igjen når lageret er i orden")
    assert second.returncode == 0, later
    assert counts["queued"] == counts["claimed"] == counts["deferred"] == 0
    assert counts["sent"] + counts["in_doubt"] == total  # nothing lost
    assert counts["in_doubt"] <= CONNECTIONS  # a mark written, the dot perhaps not
    assert max(copies(received).values()) == 1  # nothing sent twice


def test_a_worker_whose_store_comes_back_says_so_takes_back_what_it_held_and_finishes(
    store: Store, postgres_base: str
) -> None:
    # The same end of its connections, with the default wait: the worker says in one line
    # that it lost the store and waits for it, gets in again at once (the server is up), gives
    # back at once what it held, and sends the rest itself.
    with connect(store.url) as db:
        total = reset(db, store.campaign, 1200)
        plan = FaultPlan().on_rcpt(lambda r: True, Fault.delay(0.01))
        name = f"varsel-test-{uuid.uuid4().hex[:8]}"
        with SmtpSink(faults=plan) as sink:
            worker = subprocess.Popen(
                worker_command(store, sink, store.campaign),
                env={**worker_env(store), "PGAPPNAME": name},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            until(lambda: outbox.counts(db, store.campaign)["sent"] >= 100, 60)
            [first] = [w for (w,) in db.query("SELECT id FROM workers")]
            ended = end_connections(postgres_base, name)
            [error] = wait_all([worker], 120)
            received = sink.messages
        counts = outbox.counts(db, store.campaign)
        rows = dict(db.query("SELECT id, stopped_at IS NOT NULL FROM workers"))
    assert ended >= 3
    assert worker.returncode == 0, error
    lines = error.splitlines()
    assert len(lines) == 2, error
    assert lines[0].startswith(f"Arbeider {first}: lageret postgresql://")
    assert lines[0].endswith("; prøver å få kontakt igjen i opptil 60 s.")
    [second] = set(rows) - {first}
    assert lines[1] == f"Lageret svarer igjen; arbeider {second} tar over etter {first}."
    assert rows == {first: True, second: True}  # the first is not left looking dead
    assert counts["queued"] == counts["claimed"] == counts["deferred"] == 0
    assert counts["sent"] + counts["in_doubt"] == total  # nothing lost
    assert counts["in_doubt"] <= CONNECTIONS
    assert max(copies(received).values()) == 1  # nothing sent twice


def test_a_worker_whose_store_stays_away_gives_up_after_its_wait_in_one_line(
    postgres_base: str, tmp_path: Path
) -> None:
    # A database of this test's own, whose connections the server refuses and ends: the store
    # stays away for the worker as when PostgreSQL is down, and no other test is touched.
    database = f"varsel_worker_{uuid.uuid4().hex[:8]}"
    url = f"{postgres_base.rsplit('/', 1)[0]}/{database}"
    with psycopg.connect(postgres_base, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {database}")
    try:
        connect(url).close()
        worker = subprocess.Popen(
            [sys.executable, "-m", "varsel", "--db", url, "worker", "--smtp", "smtp://127.0.0.1:9"],
            env={
                **os.environ,
                "VARSEL_DKIM_KEY_DIR": str(tmp_path / "keys"),
                "VARSEL_WORKER_RECONNECT_SECONDS": "2",
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        with connect(url) as db:
            wait_registered(db, set(), 1)
        with psycopg.connect(postgres_base, autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE {database} WITH ALLOW_CONNECTIONS false")
            admin.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = %s",
                (database,),
            )
        started = time.monotonic()
        [error] = wait_all([worker], 60)
        waited = time.monotonic() - started
    finally:
        with psycopg.connect(postgres_base, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {database} WITH (FORCE)")
    assert worker.returncode == 75, error
    lines = error.splitlines()
    assert len(lines) == 2, error
    assert lines[0].endswith("; prøver å få kontakt igjen i opptil 2 s.")
    assert lines[1].startswith(f"varsel: lageret {url}: ")
    assert lines[1].endswith("kommandoen kan kjøres igjen når lageret er i orden")
    assert 2 <= waited < 30


@pytest.mark.slow
def test_a_per_domain_limit_holds_across_workers_and_sigterm_gives_back(store: Store) -> None:
    rate, burst = 240 / 60.0, 4.0  # the campaign's per_domain_per_minute; its bucket's capacity
    domains = ("gmail.com", "hotmail.com")
    where = " OR ".join(f"address LIKE '%@{d}'" for d in domains)
    with connect(store.url) as db:
        total = reset(db, store.limited, 10_000, f"({where})")
        assert total > 100
        before = {w for (w,) in db.query("SELECT id FROM workers")}
        with SmtpSink() as sink:
            procs = [
                subprocess.Popen(
                    worker_command(store, sink, store.limited),
                    env=worker_env(store),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
                for _ in range(3)
            ]
            # Ten seconds of sending, counted from when the workers are up (a busy machine
            # may take seconds to start them; SIGTERM before that would just kill them).
            wait_registered(db, before, 3)
            time.sleep(10.0)
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            errors = wait_all(procs, 30)
            received = sink.messages
        assert [p.returncode for p in procs] == [0, 0, 0], errors
        counts = outbox.counts(db, store.limited)
        stopped = db.scalar("SELECT count(*) FROM workers WHERE stopped_at IS NOT NULL")
        senders = db.scalar("SELECT count(*) FROM workers WHERE sent > 0")
    assert counts["claimed"] == 0  # SIGTERM gave back what was held
    assert counts["sent"] == len(received)
    assert counts["queued"] == total - len(received)
    assert stopped == 3
    assert senders >= 2
    for domain in domains:
        times = sorted(m.received_at for m in received if m.rcpt_tos[0].endswith("@" + domain))
        assert len(times) >= 10  # it did send
        # Any stretch of time holds at most one burst and the rate since, plus what a worker
        # may hold (shared_limits.HOLD), and one message of slack for where the sink reads the
        # time. Each message takes its domain's token just before its final dot.
        for i, first in enumerate(times):
            for j in range(i + 1, len(times)):
                allowed = burst + rate * (times[j] - first + HOLD) + 1
                assert j - i + 1 <= allowed, (
                    f"{j - i + 1} messages to {domain} in {times[j] - first:.2f} s, "
                    f"more than {allowed:.1f}"
                )


# -- in one process: leases, pause and resume, status, SQLite ------------------------------


@pytest.fixture
def small(pg_url: str, brreg: Path, tmp_path: Path) -> Iterator[tuple[Database, Settings, int]]:
    db = connect(pg_url)
    settings = Settings.load(environ={}, database_url=pg_url, dkim_key_dir=str(tmp_path / "keys"))
    import_dump(db, brreg / "enheter-sample.json")
    path = tmp_path / "c.toml"
    path.write_text(CAMPAIGN.format(name="Liten", connections=1, per_domain=600), "utf-8")
    cid = create_campaign(db, settings, path).campaign.id
    yield db, settings, cid
    db.close()


def run_in_thread(
    settings: Settings, sink: SmtpSink, campaign_id: int
) -> tuple[Worker, threading.Thread, list[BaseException]]:
    with connect(settings.database_url) as db:
        start_campaign(db, campaign_id)
    worker = Worker(
        settings,
        RelayConfig.from_url(sink.url),
        WorkerOptions(campaign_id=campaign_id, connections=1, build_processes=0, lease_seconds=3),
    )
    thread, errors = in_thread(worker.run)
    return worker, thread, errors


def test_pause_reaches_a_running_worker_at_once_and_resume_goes_on(
    small: tuple[Database, Settings, int],
) -> None:
    db, settings, cid = small
    plan = FaultPlan()
    for n in range(1, 7):
        plan.on_message(n, Fault.delay(0.3))
    with SmtpSink(faults=plan) as sink:
        _, thread, errors = run_in_thread(settings, sink, cid)
        sink.wait_for(1, 20)
        set_status(db, cid, CampaignStatus.PAUSED)
        notify(db, cid)
        took = until(lambda: outbox.counts(db, cid)["claimed"] == 0, 5)
        paused = outbox.counts(db, cid)
        time.sleep(0.5)
        assert len(sink.messages) == paused["sent"]  # nothing more while paused
        set_status(db, cid, CampaignStatus.READY)
        notify(db, cid)
        thread.join(30)
    assert errors == []
    assert took < 1.5
    assert 1 <= paused["sent"] < 6
    assert paused["queued"] == 6 - paused["sent"]
    assert outbox.counts(db, cid)["sent"] == 6
    assert db.scalar("SELECT status FROM campaigns WHERE id = ?", (cid,)) == "done"


def test_a_worker_stays_idle_outside_the_campaigns_send_window(
    pg_url: str, brreg: Path, tmp_path: Path
) -> None:
    import datetime as dt
    from zoneinfo import ZoneInfo

    from varsel.send_window import WINDOW_DAYS

    # Open only on the day after tomorrow's weekday: shut now.
    later = (dt.datetime.now(ZoneInfo("Europe/Oslo")) + dt.timedelta(days=2)).date()
    window = f'[window]\ndays = ["{WINDOW_DAYS[later.weekday()]}"]\n'
    settings = Settings.load(environ={}, database_url=pg_url, dkim_key_dir=str(tmp_path / "keys"))
    with connect(pg_url) as db:
        import_dump(db, brreg / "enheter-sample.json")
        path = tmp_path / "c.toml"
        text = CAMPAIGN.format(name="Vindu", connections=1, per_domain=600) + window
        path.write_text(text, "utf-8")
        cid = create_campaign(db, settings, path).campaign.id
        start_campaign(db, cid)
        said = waiting_for(db, cid)  # what `varsel worker --campaign` says before it waits
        lease = "SELECT sender_lease_until FROM campaigns WHERE id = ?"
        handed = db.scalar(lease, (cid,))
        with SmtpSink() as sink:
            worker = Worker(
                settings,
                RelayConfig.from_url(sink.url),
                WorkerOptions(campaign_id=cid, connections=1, build_processes=0, lease_seconds=3),
            )
            thread, errors = in_thread(worker.run)
            until(lambda: db.scalar("SELECT count(*) FROM workers") == 1, 10)
            time.sleep(2.0)  # a few polls of the campaign list
            counts = outbox.counts(db, cid)
            status = worker_status(db)
            held = db.scalar(lease, (cid,))
            worker.request_stop()
            thread.join(30)
            received = sink.messages
    assert errors == []
    assert received == []
    assert counts["claimed"] == counts["sent"] == 0
    assert counts["queued"] == 6
    assert [w.campaign_id for w in status.workers] == [None]  # idle, holding nothing
    assert held == handed  # the campaign was never taken up: its mark not renewed
    days = ("mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag")
    months = ("januar", "februar", "mars", "april", "mai", "juni", "juli", "august")
    months += ("september", "oktober", "november", "desember")
    when = f"{days[later.weekday()]} {later.day}. {months[later.month - 1]} kl. 00.00"
    assert said == (
        f"Kampanje {cid} er utenfor sendevinduet sitt ([window]); arbeideren venter til "
        f"{when} (Europe/Oslo)"
    )


def test_a_dead_workers_expired_lease_comes_back_by_the_in_doubt_rule(
    small: tuple[Database, Settings, int],
) -> None:
    db, settings, cid = small
    start_campaign(db, cid)
    clock = leases.StoreClock()
    clock.sync(db)
    taken = outbox.claim(db, cid, "dead:1:0", 6, clock.iso(), clock.iso(0.5))
    db.execute("UPDATE deliveries SET data_started_at = ? WHERE id = ?", (clock.iso(), taken[0].id))
    with SmtpSink() as sink:
        _, thread, errors = run_in_thread(settings, sink, cid)
        thread.join(30)
        received = sink.messages
    assert errors == []
    counts = outbox.counts(db, cid)
    assert (counts["sent"], counts["in_doubt"]) == (5, 1)
    assert taken[0].id not in copies(received)
    assert db.scalar("SELECT kind FROM events WHERE kind = 'lease_expired'") == "lease_expired"


def test_campaign_send_refuses_a_campaign_the_workers_hold(
    small: tuple[Database, Settings, int],
) -> None:
    from varsel.sender import SendError, send_campaign

    db, settings, cid = small
    assert start_campaign(db, cid) is True
    assert start_campaign(db, cid) is False
    # The workers' campaign is theirs, lease or no lease, until an operator pauses it.
    with pytest.raises(SendError, match="er gitt til arbeiderne"):
        send_campaign(db, settings, cid, relay=RelayConfig.from_url("smtp://127.0.0.1:1"))


def test_status_lists_the_workers_and_their_campaigns(
    small: tuple[Database, Settings, int],
) -> None:
    from click.testing import CliRunner

    db, settings, cid = small
    with SmtpSink() as sink:
        _, thread, errors = run_in_thread(settings, sink, cid)
        thread.join(30)
    assert errors == []
    report = worker_status(db)
    assert [w.state for w in report.workers] == ["stopped"]
    assert report.workers[0].sent == 6
    result = CliRunner().invoke(cli, ["--db", db.url, "worker", "--status", "--json"])
    assert result.exit_code == 0, result.output
    assert '"sent": 6' in result.output
    assert '"state": "stopped"' in result.output
    table = CliRunner().invoke(cli, ["--db", db.url, "worker", "--status"])
    assert "stoppet" in table.output


def test_status_names_the_campaigns_status_in_bokmal(
    small: tuple[Database, Settings, int],
) -> None:
    from click.testing import CliRunner

    db, _, cid = small
    start_campaign(db, cid)
    table = CliRunner().invoke(cli, ["--db", db.url, "worker", "--status"])
    assert table.exit_code == 0, table.output
    assert "sendes" in table.output
    assert "│ sending" not in table.output


def test_campaign_status_says_whether_a_worker_runs_for_it(
    small: tuple[Database, Settings, int],
) -> None:
    from click.testing import CliRunner

    db, _, cid = small
    start_campaign(db, cid)
    status = CliRunner().invoke(cli, ["--db", db.url, "campaign", "status", str(cid)])
    assert status.exit_code == 0, status.output
    assert status.output.splitlines()[0].endswith(
        "sendes (av arbeiderne; ingen «varsel worker» kjører nå)"
    )
    leases.register(db, "h:1:a", 4, None)
    status = CliRunner().invoke(cli, ["--db", db.url, "campaign", "status", str(cid)])
    assert status.output.splitlines()[0].endswith("sendes (av arbeiderne; 1 kjører)")


def test_worker_on_sqlite_says_it_needs_postgresql(tmp_path: Path) -> None:
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "v.db"), "worker"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "varsel: varsel worker trenger PostgreSQL (--db postgresql://…); med SQLite sender du "
        "med «varsel campaign send»"
    ]


def test_campaign_start_wants_the_four_eyes_approval(
    small: tuple[Database, Settings, int],
) -> None:
    from click.testing import CliRunner

    db, settings, cid = small
    env = {"VARSEL_DKIM_KEY_DIR": settings.dkim_key_dir}
    refused = CliRunner().invoke(cli, ["--db", db.url, "campaign", "start", str(cid)], env=env)
    assert refused.exit_code == 2
    assert refused.output.startswith(f"varsel: kampanje {cid} er ikke godkjent")
    assert db.scalar("SELECT status FROM campaigns WHERE id = ?", (cid,)) == "ready"
    started = CliRunner().invoke(
        cli, ["--db", db.url, "campaign", "start", str(cid), "--no-approval"], env=env
    )
    assert started.exit_code == 0, started.output
    assert started.output == (
        f"Kampanje {cid} sendes nå av arbeiderne; følg med: varsel worker --status\n"
    )
    row = db.query_one("SELECT status, sender_pid FROM campaigns WHERE id = ?", (cid,))
    assert row == ("sending", "varsel-worker")


def test_worker_json_without_status_is_refused_in_one_line(
    small: tuple[Database, Settings, int],
) -> None:
    from click.testing import CliRunner

    db, _, _ = small
    result = CliRunner().invoke(cli, ["--db", db.url, "worker", "--json"])
    assert result.exit_code == 2
    assert result.output == "varsel: --json gjelder bare sammen med --status\n"


def test_worker_for_a_missing_campaign_is_refused_before_it_registers(
    small: tuple[Database, Settings, int],
) -> None:
    from click.testing import CliRunner

    db, _, cid = small
    result = CliRunner().invoke(
        cli, ["--db", db.url, "worker", "--campaign", str(cid + 1), "--smtp", "smtp://127.0.0.1:1"]
    )
    assert result.exit_code == 2
    assert result.output == f"varsel: kampanje {cid + 1} finnes ikke\n"
    assert db.scalar("SELECT count(*) FROM workers") == 0


def test_worker_for_a_campaign_not_started_says_it_waits(
    small: tuple[Database, Settings, int],
) -> None:
    db, settings, cid = small
    env = {**os.environ, "VARSEL_DKIM_KEY_DIR": settings.dkim_key_dir}
    command = [sys.executable, "-m", "varsel", "--db", db.url, "worker", "--campaign", str(cid)]
    proc = subprocess.Popen(
        [*command, "--smtp", "smtp://127.0.0.1:1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_registered(db, set(), 1, 60)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert err.decode() == (
        f"Kampanje {cid} er ikke gitt til arbeiderne ennå; arbeideren venter til noen kjører "
        f"«varsel campaign start {cid}».\n"
    )
    assert "stoppet etter" in out.decode()
    assert db.scalar("SELECT status FROM campaigns WHERE id = ?", (cid,)) == "ready"


def test_a_relay_that_cannot_be_used_stops_the_worker_and_leaves_the_campaign_to_the_workers(
    small: tuple[Database, Settings, int],
) -> None:
    from click.testing import CliRunner

    db, settings, cid = small
    start_campaign(db, cid)
    with SmtpSink() as sink:
        url = sink.url
    result = CliRunner().invoke(
        cli,
        ["--db", db.url, "worker", "--campaign", str(cid), "--smtp", url, "--build-processes", "0"],
        env={"VARSEL_DKIM_KEY_DIR": settings.dkim_key_dir},
    )
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"varsel: e-posttjeneren {url} kan ikke brukes: ")
    assert lines[0].endswith(
        "(5 forsøk); leveransene som gjenstår, venter i køen til en arbeider kan sende dem "
        "(kampanjen er fortsatt arbeidernes)"
    )
    counts = outbox.counts(db, cid)
    assert (counts["queued"], counts["claimed"], counts["sent"]) == (6, 0, 0)
    row = db.query_one("SELECT status, sender_pid FROM campaigns WHERE id = ?", (cid,))
    assert row == ("sending", "varsel-worker")


WORKERS_TAIL = (
    "leveransene som gjenstår, venter i køen til en arbeider kan sende dem (kampanjen er "
    "fortsatt arbeidernes)"
)


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        (
            Fault.reply(550, "5.7.1 Sender address rejected: not owned by user", stage=Stage.MAIL),
            "avviser utsendelsen: 550 5.7.1 Sender address rejected: not owned by user",
        ),
        (
            Fault.reply(421, "4.3.2 Service shutting down", stage=Stage.MAIL),
            f"kan ikke brukes: 421 4.3.2 Service shutting down (6 forsøk); {WORKERS_TAIL}",
        ),
        (
            Fault.reply(554, "5.7.1 Relay access denied"),
            "avviser utsendelsen: 554 5.7.1 Relay access denied",
        ),
    ],
    ids=["sender_refused", "relay_in_trouble", "same_refusal_across_domains"],
)
def test_a_relay_that_refuses_or_is_in_trouble_stops_the_worker_and_fails_no_delivery(
    small: tuple[Database, Settings, int], fault: Fault, says: str
) -> None:
    from click.testing import CliRunner

    db, settings, cid = small
    start_campaign(db, cid)
    plan = FaultPlan()
    for number in range(1, 101):
        plan.on_message(number, fault)
    with SmtpSink(faults=plan) as sink:
        result = CliRunner().invoke(
            cli,
            # One connection: the relay's trouble stops it after relay_tries (5) plus 1.
            [
                *("--db", db.url, "worker", "--campaign", str(cid), "--smtp", sink.url),
                *("--connections", "1", "--build-processes", "0"),
            ],
            env={"VARSEL_DKIM_KEY_DIR": settings.dkim_key_dir},
        )
        assert sink.messages == []
    assert (result.exit_code, result.output) == (2, f"varsel: e-posttjeneren {sink.url} {says}\n")
    counts = outbox.counts(db, cid)
    assert (counts["failed"], counts["claimed"], counts["sent"]) == (0, 0, 0)
    assert counts["queued"] + counts["deferred"] == 6
    if fault.code >= 500:  # a refusal that was the relay's: no attempt counted
        assert counts["queued"] == 6
        assert db.scalar("SELECT sum(attempts) FROM deliveries WHERE campaign_id = ?", (cid,)) == 0
    assert db.scalar("SELECT count(*) FROM deliveries WHERE claimed_by IS NOT NULL") == 0
    row = db.query_one("SELECT status, sender_pid FROM campaigns WHERE id = ?", (cid,))
    assert row == ("sending", "varsel-worker")


RELAY_DENIED = Fault.reply(554, "5.7.1 Relay access denied")


@pytest.mark.parametrize(
    ("fault", "refused", "failed", "says"),
    [
        (RELAY_DENIED, 100, 0, "554 5.7.1 Relay access denied"),
        (RELAY_DENIED, 2, 2, None),
        (
            Fault.reply(550, "5.7.1 Sender address rejected", stage=Stage.MAIL),
            1,
            0,
            "550 5.7.1 Sender address rejected",
        ),
    ],
    ids=["the_relays_policy_taken_back", "two_refusals_stay_failed", "sender_refused"],
)
def test_a_workers_failed_counters_leave_out_refusals_that_were_the_relays(
    small: tuple[Database, Settings, int],
    fault: Fault,
    refused: int,
    failed: int,
    says: str | None,
) -> None:
    db, settings, cid = small
    plan = FaultPlan()
    for number in range(1, refused + 1):
        plan.on_message(number, fault)
    with SmtpSink(faults=plan) as sink:
        worker, thread, errors = run_in_thread(settings, sink, cid)
        thread.join(30)
    assert not thread.is_alive()
    # Refused alike across domains, or our sender refused: the relay's, back to the queue,
    # and the worker's counters say so too. Two refused, then taken: those two stay failed.
    assert [str(e) for e in errors] == (
        [f"e-posttjeneren {sink.url} avviser utsendelsen: {says}"] if says else []
    )
    counts = outbox.counts(db, cid)
    assert counts["failed"] == failed
    assert worker.totals["failed"] == failed
    assert worker.totals["sent"] == counts["sent"]
    row = db.query_one("SELECT failed, sent FROM workers WHERE id = ?", (worker.id,))
    assert row == (failed, counts["sent"])
    name = f'varsel_worker_deliveries_total{{campaign="{cid}",outcome="failed"}} '
    shown = [
        float(line.removeprefix(name))
        for line in worker.metrics.text().decode().splitlines()
        if line.startswith(name)
    ]
    assert sum(shown) == failed  # the Prometheus counter, never counted to be undone


def test_a_worker_holds_no_leases_in_its_metrics_once_its_campaign_is_sent(
    small: tuple[Database, Settings, int],
) -> None:
    _, settings, cid = small
    plan = FaultPlan()
    for n in range(1, 7):
        plan.on_message(n, Fault.delay(0.5))  # long enough for a renewal (every 0.5 s) mid-run
    with SmtpSink(faults=plan) as sink:
        worker, thread, errors = run_in_thread(settings, sink, cid)
        thread.join(30)
    assert errors == []
    text = worker.metrics.text().decode()
    assert "varsel_lease_renewals_total 0.0" not in text
    assert "varsel_worker_leases 0.0" in text


def test_a_worker_whose_store_is_gone_before_it_registers_closes_its_connections(
    pg_url: str, postgres_base: str, tmp_path: Path
) -> None:
    # As a worker started again in its process when the store, back for a moment, goes again.
    settings = Settings.load(environ={}, database_url=pg_url, dkim_key_dir=str(tmp_path / "k"))
    relay = RelayConfig.from_url("smtp://127.0.0.1:9")
    worker = Worker(settings, relay, WorkerOptions(), predecessor="vert:1:ab")
    pid = worker.control.scalar("SELECT pg_backend_pid()")
    with psycopg.connect(postgres_base, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
    with pytest.raises(psycopg.OperationalError):
        worker.run()
    assert not worker.registered  # the next try takes over its predecessor still
    assert [db.raw_connection().closed for db in (worker.db, worker.control, worker.keeper)] == [
        True,
        True,
        True,
    ]
