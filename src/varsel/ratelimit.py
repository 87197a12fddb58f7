"""Rate limits kept in the store, so they hold across workers, hosts and restarts.

Each limit counts hits in fixed windows keyed by (scope, key) and judges a request by a
sliding estimate: the current window's hits plus the previous window's, weighted by how much
of it still overlaps the last `window` seconds. That closes the burst a plain fixed window
allows at its edge, with one row per key and window.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from varsel.db import Database

GLOBAL = "*"  # the key of a limit that counts everyone together


@dataclass(frozen=True)
class Limit:
    """At most `hits` per `window` seconds, for each key of a scope."""

    scope: str
    hits: int
    window: int


@dataclass(frozen=True)
class Decision:
    """The answer to one request: allowed or not, and when to try again."""

    allowed: bool
    scope: str
    estimate: float  # hits in the last window, by the sliding estimate, this one included
    retry_after: int  # seconds until the estimate falls below the limit (0 when allowed)


@functools.lru_cache(maxsize=4096)  # a visitor asks again and again: hash each once
def hashed_key(secret: bytes, value: str) -> str:
    """A keyed hash of an IP or e-mail address: the store never holds the value itself."""
    return hmac.new(secret, value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


# Hits of windows that have ended, by (store, scope, key, window start): no request counts in
# a past window any more, so each is read from the store once per process, not per request.
_ended: dict[tuple[str, str, str, int], int] = {}
_ENDED_MAX = 50_000  # entries kept before starting afresh (a new window needs them no more)


def _previous(db: Database, limit: Limit, key: str, start: int) -> int:
    cache_key = (db.url, limit.scope, key, start)
    hits = _ended.get(cache_key)
    if hits is None:
        hits = int(
            db.scalar(
                "SELECT hits FROM rate_limits WHERE scope = ? AND key = ? AND window_start = ?",
                (limit.scope, key, start),
            )
            or 0
        )
        if len(_ended) >= _ENDED_MAX:
            _ended.clear()
        _ended[cache_key] = hits
    return hits


def _start(limit: Limit, now: float) -> int:
    return int(now) - int(now) % limit.window


def _judge(db: Database, limit: Limit, key: str, hits: int, now: float) -> Decision:
    # The current window's hits, this one included, and the previous window's, weighted by
    # how much of it still overlaps the last `window` seconds.
    start = _start(limit, now)
    previous = _previous(db, limit, key, start - limit.window)
    overlap = 1.0 - (now - start) / limit.window
    estimate = hits + previous * overlap
    if estimate <= limit.hits:
        return Decision(True, limit.scope, estimate, 0)
    # The estimate falls as the previous window slides out; if the current window alone is
    # over the limit, only the next window helps.
    if hits <= limit.hits and previous:
        wait = (estimate - limit.hits) / previous * limit.window
    else:
        wait = start + limit.window - now
    return Decision(False, limit.scope, estimate, max(1, math.ceil(wait)))


_UPSERT = (
    "INSERT INTO rate_limits (scope, key, window_start, hits, expires_at) VALUES {rows} "
    "ON CONFLICT (scope, key, window_start) "
    "DO UPDATE SET hits = rate_limits.hits + excluded.hits "
    "RETURNING scope, key, window_start, hits"
)


Counter = tuple[str, str, int]  # (scope, key, window start): one row of rate_limits


def _add(db: Database, counts: dict[Counter, tuple[int, int]]) -> dict[Counter, int]:
    """Add hits to counters, {counter: (hits, expires_at)}, in one statement; the new totals."""
    # Atomic on both stores, so concurrent workers never lose a hit. The counters are
    # distinct, as PostgreSQL requires of one upsert.
    params: list[object] = []
    for counter, (n, expires_at) in counts.items():
        params += (*counter, n, expires_at)
    rows = ", ".join("(?, ?, ?, ?, ?)" for _ in counts)
    return {
        (str(scope), str(key), int(start)): int(hits)
        for scope, key, start, hits in db.execute(_UPSERT.format(rows=rows), params).fetchall()
    }


def consume(
    db: Database, checks: Sequence[tuple[Limit, str]], *, now: float | None = None
) -> Decision:
    """Count one request against each (limit, key) in order; the first refusal stops counting.

    Refused requests count too, so hammering keeps a client out rather than letting it in
    again the moment the window slides. Joins the caller's transaction when there is one.
    """
    return consume_many(db, [checks], now=now)[0]


def consume_many(
    db: Database, requests: Sequence[Sequence[tuple[Limit, str]]], *, now: float | None = None
) -> list[Decision]:
    """consume() for several requests at once, in order, with one statement per check.

    The n-th check of every request still counting is added in one upsert (a key that several
    requests hit gets all their hits at once), and each request is judged by the total as it
    stood after its own hit: the requests in the list come before any later one, as if each
    had been counted alone. Joins the caller's transaction when there is one.
    """
    at = time.time() if now is None else now
    decisions = [Decision(True, "", 0.0, 0) for _ in requests]
    going = [r for r, checks in enumerate(requests) if checks]
    stage = 0
    with contextlib.nullcontext() if db.in_transaction else db.transaction():
        while going:
            counters: list[Counter] = []
            counts: dict[Counter, tuple[int, int]] = {}
            for r in going:
                limit, key = requests[r][stage]
                start = _start(limit, at)
                counter = (limit.scope, key, start)
                counters.append(counter)
                n, _ = counts.get(counter, (0, 0))
                counts[counter] = (n + 1, start + 2 * limit.window)
            totals = _add(db, counts)
            # The i-th of n hits on a counter saw its total as it stood after the i-th.
            seen: dict[Counter, int] = {}
            still = []
            for r, counter in zip(going, counters, strict=True):
                limit, key = requests[r][stage]
                seen[counter] = seen.get(counter, 0) + 1
                hits = totals[counter] - counts[counter][0] + seen[counter]
                decisions[r] = _judge(db, limit, key, hits, at)
                if decisions[r].allowed and stage + 1 < len(requests[r]):
                    still.append(r)
            going = still
            stage += 1
    return decisions


def purge(db: Database, *, now: float | None = None) -> int:
    """Delete counters no limit looks at any more; returns how many."""
    at = int(time.time() if now is None else now)
    with db.transaction():
        return int(db.execute("DELETE FROM rate_limits WHERE expires_at <= ?", (at,)).rowcount)
