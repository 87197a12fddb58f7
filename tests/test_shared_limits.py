"""Token buckets in PostgreSQL, shared by every worker."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from varsel.db import Database, connect
from varsel.shared_limits import HOLD, UNLIMITED, Request, SharedLimits, grant

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(pg_url: str) -> Iterator[Database]:
    with connect(pg_url) as db:
        yield db


def test_a_new_bucket_starts_full_and_grants_no_more_than_it_holds(pg: Database) -> None:
    known: set[str] = set()
    assert grant(pg, [Request("domain:gmail.com", 50, 1.0, 5.0)], known) == {"domain:gmail.com": 5}
    assert grant(pg, [Request("domain:gmail.com", 50, 1.0, 5.0)], known) == {"domain:gmail.com": 0}
    assert known == {"domain:gmail.com"}


def test_a_bucket_refills_at_its_rate_by_the_stores_clock(pg: Database) -> None:
    known: set[str] = set()
    grant(pg, [Request("campaign:1", 100, 20.0, 20.0)], known)
    time.sleep(0.5)
    again = grant(pg, [Request("campaign:1", 100, 20.0, 20.0)], known)["campaign:1"]
    assert 9 <= again <= 11  # 0.5 s at 20 a second, whole tokens only


def test_workers_asking_at_once_share_the_tokens_without_passing_the_limit(
    pg_url: str, pg: Database
) -> None:
    # Eight connections (as eight workers would) ask for tokens of one bucket for 1.5 s.
    rate, capacity, seconds = 40.0, 4.0, 1.5
    grant(pg, [Request("global", 0, rate, capacity)], set())
    taken: list[int] = []
    lock = threading.Lock()

    def ask() -> None:
        with connect(pg_url, migrate=False) as db:
            known = {"global"}
            started = time.monotonic()
            while time.monotonic() - started < seconds:
                n = grant(db, [Request("global", 3, rate, capacity)], known)["global"]
                with lock:
                    taken.append(n)
                time.sleep(0.01)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    assert sum(taken) <= capacity + rate * elapsed
    assert sum(taken) >= rate * seconds * 0.7  # and the limit is used, not starved


def test_a_worker_waits_for_grants_and_an_unlimited_bucket_never_asks() -> None:
    asked: list[list[Request]] = []

    async def fake_store(requests: list[Request]) -> dict[str, int]:
        asked.append(requests)
        return {r.key: 2 for r in requests}

    async def main() -> tuple[float, float, float, float]:
        limits = SharedLimits(fake_store, interval=0.01)
        task = asyncio.create_task(limits.run())
        bucket = limits.bucket("domain:x.no", 10.0, 10.0, lambda: 3)
        free = limits.bucket("campaign:1", UNLIMITED, 10.0, lambda: 3)
        first = bucket.try_take()
        await asyncio.sleep(0.05)
        second, third = bucket.try_take(), bucket.try_take()
        task.cancel()
        return first, second, third, free.try_take()

    first, second, third, free = asyncio.run(main())
    assert (first, second, third, free) == (0.01, 0.0, 0.0, 0.0)
    assert [[(r.key, r.want) for r in a] for a in asked] == [[("domain:x.no", 3)]]


def test_a_turn_asks_for_a_grant_and_promises_its_token_to_one_caller(pg: Database) -> None:
    known: set[str] = set()

    async def from_store(requests: list[Request]) -> dict[str, int]:
        return grant(pg, requests, known)

    async def main() -> tuple[float, float, float, float, float]:
        limits = SharedLimits(from_store, interval=0.01)
        task = asyncio.create_task(limits.run())
        bucket = limits.bucket("domain:turn.no", 1 / 60, 1.0, lambda: 2)  # one a minute
        first = bucket.turn()  # none held: asked for
        await asyncio.sleep(0.05)
        second = bucket.turn()  # the one granted, promised to this caller
        third = bucket.turn()  # promised already: another caller waits and asks
        bucket.end_turn()
        taken, after = bucket.try_take(), bucket.try_take()
        task.cancel()
        return first, second, third, taken, after

    assert asyncio.run(main()) == (0.01, 0.0, 0.01, 0.0, 0.01)


def test_granted_tokens_not_spent_in_time_lapse() -> None:
    async def no_grants(requests: list[Request]) -> dict[str, int]:
        return {}

    limits = SharedLimits(no_grants)
    bucket = limits.bucket("domain:gmail.com", 4.0, 4.0, lambda: 4)
    bucket.granted(2)
    assert bucket.try_take() == 0.0
    bucket.stamp -= HOLD + 0.01  # as if granted longer ago than a worker may hold a token
    assert bucket.try_take() == limits.interval
    assert bucket.tokens == 0
    assert "domain:gmail.com" in limits.wanting


def test_a_smaller_capacity_counts_at_once(pg: Database) -> None:
    known: set[str] = set()
    # A campaign with a large burst leaves a full bucket; one with a burst of 4 asks next.
    assert grant(pg, [Request("domain:gmail.com", 1, 100.0, 1000.0)], known)["domain:gmail.com"]
    first = grant(pg, [Request("domain:gmail.com", 4, 4.0, 4.0)], known)
    second = grant(pg, [Request("domain:gmail.com", 4, 4.0, 4.0)], known)
    assert first == {"domain:gmail.com": 4}
    assert second["domain:gmail.com"] <= 1  # what 4 a second refills in the moments between


def test_full_buckets_are_purged_and_come_back_full(pg: Database) -> None:
    from varsel.shared_limits import purge_full

    known: set[str] = set()
    grant(pg, [Request("domain:a.no", 5, 0.1, 5.0), Request("domain:b.no", 1, 1000.0, 5.0)], known)
    time.sleep(0.05)  # b.no refills at 1,000 a second: full again; a.no is still empty
    with pg.transaction():
        assert purge_full(pg) == 1
    assert pg.query("SELECT key FROM send_buckets") == [("domain:a.no",)]
    # This worker still thinks b.no's row is there: it gets nothing once, then a full bucket.
    request = Request("domain:b.no", 5, 1000.0, 5.0)
    assert grant(pg, [request], known) == {}
    assert "domain:b.no" not in known
    assert grant(pg, [request], known) == {"domain:b.no": 5}
    # The empty bucket was kept: a.no's limit is not reset by the purge.
    assert grant(pg, [Request("domain:a.no", 5, 0.1, 5.0)], known) == {"domain:a.no": 0}


def test_a_purge_never_waits_for_a_bucket_a_worker_holds(pg: Database, pg_url: str) -> None:
    # An idle worker purges while others take tokens: the purge must neither wait for a row a
    # grant has locked nor lock rows in another order than grant's (the two deadlocked once).
    from varsel.shared_limits import purge_full

    known: set[str] = set()
    grant(pg, [Request(f"domain:{n}.no", 1, 1000.0, 5.0) for n in "abc"], known)
    time.sleep(0.05)  # all three full again
    with connect(pg_url) as worker, worker.transaction():
        worker.execute("SELECT 1 FROM send_buckets WHERE key = 'domain:b.no' FOR UPDATE")
        started = time.monotonic()
        with pg.transaction():
            pg.execute("SET LOCAL statement_timeout = '5s'")  # a purge that waits fails here
            assert purge_full(pg) == 2  # b.no is held: left for the next purge
        assert time.monotonic() - started < 2.0
    assert pg.query("SELECT key FROM send_buckets") == [("domain:b.no",)]
