from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from varsel.db import Database, connect
from varsel.ratelimit import (
    GLOBAL,
    Limit,
    _judge,
    _passes,
    consume,
    consume_many,
    count,
    purge,
    visitor_network,
)

TEN_PER_MINUTE = Limit("test", 10, 60)


def test_the_eleventh_hit_in_a_window_is_refused(db: Database) -> None:
    decisions = [consume(db, [(TEN_PER_MINUTE, "ip")], now=600.0 + i) for i in range(11)]
    assert [d.allowed for d in decisions] == [True] * 10 + [False]
    assert decisions[-1].retry_after > 0


def test_keys_are_counted_apart(db: Database) -> None:
    for _ in range(10):
        consume(db, [(TEN_PER_MINUTE, "a")], now=600.0)
    assert consume(db, [(TEN_PER_MINUTE, "b")], now=600.0).allowed


def test_the_previous_window_still_counts_while_it_overlaps(db: Database) -> None:
    for _ in range(10):
        consume(db, [(TEN_PER_MINUTE, "ip")], now=659.0)
    # 1 s into the next window, 59/60 of the previous 10 hits still count: no burst of 20.
    assert not consume(db, [(TEN_PER_MINUTE, "ip")], now=661.0).allowed
    assert consume(db, [(TEN_PER_MINUTE, "ip")], now=720.0 + 59).allowed


def test_the_first_refusal_stops_counting(db: Database) -> None:
    per_ip, everyone = Limit("ip", 1, 60), Limit("all", 100, 60)
    consume(db, [(per_ip, "x"), (everyone, GLOBAL)], now=0.0)
    refused = consume(db, [(per_ip, "x"), (everyone, GLOBAL)], now=1.0)
    assert (refused.allowed, refused.scope) == (False, "ip")
    assert db.scalar("SELECT hits FROM rate_limits WHERE scope = 'all'") == 1


def test_counts_are_shared_by_every_connection_to_the_store(db: Database, db_url: str) -> None:
    other = connect(db_url)
    try:
        for i in range(10):
            consume(db if i % 2 else other, [(TEN_PER_MINUTE, "ip")], now=600.0)
        assert not consume(other, [(TEN_PER_MINUTE, "ip")], now=600.0).allowed
    finally:
        other.close()


def test_purge_drops_rows_no_window_looks_at(db: Database) -> None:
    consume(db, [(TEN_PER_MINUTE, "old")], now=0.0)
    consume(db, [(TEN_PER_MINUTE, "new")], now=1000.0)
    assert purge(db, now=1000.0) == 1
    assert db.query("SELECT key FROM rate_limits") == [("new",)]


def test_concurrent_hits_are_not_lost(new_store_url: Callable[[], str]) -> None:
    import threading

    url = new_store_url()
    connect(url).close()
    limit = Limit("race", 1000, 3600)

    def hammer() -> None:
        db = connect(url, migrate=False)
        try:
            for _ in range(25):
                consume(db, [(limit, "k")], now=100.0)
        finally:
            db.close()

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with connect(url) as db:
        assert db.scalar("SELECT hits FROM rate_limits WHERE key = 'k'") == 100


def test_a_batch_counts_its_requests_one_after_another(db: Database) -> None:
    three = Limit("test", 3, 60)
    decisions = consume_many(db, [[(three, "ip")]] * 5, now=600.0)
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert [d.estimate for d in decisions] == [1, 2, 3, 4, 5]
    assert db.scalar("SELECT hits FROM rate_limits WHERE scope = 'test'") == 5


def test_a_batch_continues_where_the_store_stands(db: Database) -> None:
    three = Limit("test", 3, 60)
    consume(db, [(three, "ip")], now=600.0)
    consume(db, [(three, "ip")], now=600.0)
    decisions = consume_many(db, [[(three, "ip")], [(three, "other")], [(three, "ip")]], now=600.0)
    assert [(d.allowed, d.estimate) for d in decisions] == [(True, 3), (True, 1), (False, 4)]


def test_in_a_batch_a_request_refused_by_one_limit_is_not_counted_by_the_next(
    db: Database,
) -> None:
    per_ip, everyone = Limit("ip", 1, 60), Limit("all", 100, 60)
    both = [(per_ip, "x"), (everyone, GLOBAL)]
    other = [(per_ip, "y"), (everyone, GLOBAL)]
    decisions = consume_many(db, [both, both, other], now=0.0)
    assert [(d.allowed, d.scope) for d in decisions] == [
        (True, "all"),
        (False, "ip"),
        (True, "all"),
    ]
    assert db.scalar("SELECT hits FROM rate_limits WHERE scope = 'all'") == 2
    assert db.scalar("SELECT hits FROM rate_limits WHERE scope = 'ip' AND key = 'x'") == 2


def test_counting_without_a_transaction_is_refused(db: Database) -> None:
    with pytest.raises(RuntimeError, match="needs a transaction"):
        count(db, [[(TEN_PER_MINUTE, "ip")]])


def test_workers_counting_the_same_keys_at_once_never_deadlock(
    new_store_url: Callable[[], str],
) -> None:
    import threading

    url = new_store_url()
    connect(url).close()
    limits = [Limit("a", 10_000, 3600), Limit("b", 10_000, 3600), Limit("c", 10_000, 3600)]
    errors: list[Exception] = []

    def worker(order: list[int]) -> None:
        # Each worker's batches name the shared keys in its own order.
        db = connect(url, migrate=False)
        try:
            for _ in range(30):
                with db.transaction():
                    consume_many(db, [[(limits[i], "k")] for i in order])
        except Exception as e:
            errors.append(e)
        finally:
            db.close()

    threads = [threading.Thread(target=worker, args=(o,)) for o in ([0, 1, 2], [2, 1, 0])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with connect(url) as db:
        assert db.query("SELECT scope, hits FROM rate_limits ORDER BY scope") == [
            ("a", 60),
            ("b", 60),
            ("c", 60),
        ]


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("192.0.2.17", "192.0.2.17"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::ffff:192.0.2.17", "192.0.2.17"),  # IPv4 written as IPv6 is the IPv4 address
        ("fe80::1%eth0", "fe80::/64"),
        ("unknown", "unknown"),  # no client address (a test client, a Unix socket)
    ],
)
def test_a_visitor_is_an_ipv4_address_or_an_ipv6_64(address: str, network: str) -> None:
    assert visitor_network(address) == network


def test_one_64_shares_a_limit_across_its_addresses(db: Database) -> None:
    decisions = [
        consume(db, [(TEN_PER_MINUTE, visitor_network(f"2001:db8::{i:x}"))], now=600.0)
        for i in range(1, 12)
    ]
    assert [d.allowed for d in decisions] == [True] * 10 + [False]


def test_a_visitor_who_waits_the_time_given_is_let_in(db: Database) -> None:
    # The audit's case: 12 lookups against 10 per 10 minutes, then the wait the page gives.
    limit = Limit("verify_ip", 10, 600)
    decisions = [consume(db, [(limit, "ip")], now=1000.0 + i) for i in range(12)]
    refused = decisions[-1]
    assert not refused.allowed
    later = consume(db, [(limit, "ip")], now=1011.0 + refused.retry_after)
    assert later.allowed


@settings(max_examples=300, deadline=None)
@given(
    hits=st.integers(1, 40),
    window=st.integers(10, 3600),
    counted=st.integers(1, 200),
    previous=st.integers(0, 200),
    into=st.floats(0.0, 0.999),
)
def test_the_wait_given_is_the_first_whole_second_that_works(
    hits: int, window: int, counted: int, previous: int, into: float
) -> None:
    limit = Limit("x", hits, window)
    start = 7 * window
    now = start + into * window
    decision = _judge(limit, start, counted, previous, now)
    if decision.allowed:
        return
    wait = decision.retry_after
    assert wait >= 1
    assert _passes(limit, start, counted, previous, now + wait)
    if wait > 1:
        assert not _passes(limit, start, counted, previous, now + wait - 1)
