"""Rate limits kept in the store, so they hold across workers, hosts and restarts.

Each limit counts hits in fixed windows keyed by (scope, key) and judges a request by a
sliding estimate: the current window's hits plus the previous window's, weighted by how much
of it still overlaps the last `window` seconds. That closes the burst a plain fixed window
allows at its edge, with one row per key and window.
"""

from __future__ import annotations

import contextlib
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


def _hit(db: Database, limit: Limit, key: str, now: float) -> Decision:
    start = int(now) - int(now) % limit.window
    # One statement: the upsert is atomic on both stores, so concurrent workers never lose a hit.
    hits = int(
        db.execute(
            "INSERT INTO rate_limits (scope, key, window_start, hits, expires_at) "
            "VALUES (?, ?, ?, 1, ?) ON CONFLICT (scope, key, window_start) "
            "DO UPDATE SET hits = rate_limits.hits + 1 RETURNING hits",
            (limit.scope, key, start, start + 2 * limit.window),
        ).fetchone()[0]
    )
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


def consume(
    db: Database, checks: Sequence[tuple[Limit, str]], *, now: float | None = None
) -> Decision:
    """Count one request against each (limit, key) in order; the first refusal stops counting.

    Refused requests count too, so hammering keeps a client out rather than letting it in
    again the moment the window slides. Joins the caller's transaction when there is one.
    """
    at = time.time() if now is None else now
    decision = Decision(True, "", 0.0, 0)
    with contextlib.nullcontext() if db.in_transaction else db.transaction():
        for limit, key in checks:
            decision = _hit(db, limit, key, at)
            if not decision.allowed:
                break
    return decision


def purge(db: Database, *, now: float | None = None) -> int:
    """Delete counters no limit looks at any more; returns how many."""
    at = int(time.time() if now is None else now)
    with db.transaction():
        return int(db.execute("DELETE FROM rate_limits WHERE expires_at <= ?", (at,)).rowcount)
