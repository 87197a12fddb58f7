"""The sender's claims: a batch of deliveries claimed, and what their messages need read.

The claim commits on the sender's database thread (outbox.claim_rows). The read after it (the
units' names and municipalities, and their suppressions: outbox.with_units) runs on a connection
of its own when the store is a SQLite file, so that the sender's durable marks need not wait
for it; or, when the build workers read the units themselves (build_pool.reads_units), not here
at all. A batch comes back split into messages to build and deliveries to settle as suppressed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from varsel import claimed_units, outbox
from varsel.builder import Job
from varsel.claimed_units import UnitToName
from varsel.db import Database, connect
from varsel.outbox import Delivery, DeliveryState


@dataclass
class Claim:
    """One claimed batch: what to build, what was suppressed, and when more is due."""

    count: int
    deliveries: list[Delivery]
    jobs: list[Job]
    suppressed: list[Delivery]
    next_due: str | None


class Claimer:
    """Claims one campaign's deliveries for one sender, a batch at a time."""

    def __init__(
        self,
        db: Database,
        campaign_id: int,
        worker_id: str,
        batch: int,
        on_db_thread: Callable[..., Awaitable[Any]],
        times: Callable[[], tuple[str, str]],
        units_elsewhere: Callable[[], bool] = lambda: False,
    ) -> None:
        self.db = db
        self.campaign_id = campaign_id
        self.worker_id = worker_id
        self.batch = batch
        self.on_db_thread = on_db_thread
        self.times = times  # now, and when the lease of deliveries claimed now runs out
        self.units_elsewhere = units_elsewhere  # the build workers read the units themselves
        # Claimed deliveries' units are read on a connection of their own (SQLite files).
        self.reader_db: Database | None = None
        self.reader = (
            concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="varsel-read")
            if db.dialect == "sqlite" and ":memory:" not in db.url
            else None
        )

    async def claim(self) -> Claim:
        """Claim a batch on the database thread; read what its messages need on another."""
        # The read and the objects made from it took three quarters of a claim's ~10 ms, while
        # every connection's durable mark waited behind it on the database thread.
        rows, next_due = await self.on_db_thread(self._claim_rows)
        if self.units_elsewhere():
            return self._unread(rows, next_due)
        if self.reader is None:
            claim: Claim = await self.on_db_thread(self._claimed, self.db, rows, next_due)
            return claim
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.reader, self._read_claimed, rows, next_due)

    def close(self) -> None:
        """Close the reader's connection and its thread."""
        if self.reader is not None:
            self.reader.submit(self._close_reader).result()
            self.reader.shutdown()

    def _claim_rows(self) -> tuple[list[Any], str | None]:
        db = self.db
        now, until = self.times()
        rows = outbox.claim_rows(db, self.campaign_id, self.worker_id, self.batch, now, until)
        next_due = None
        if not rows:
            next_due = db.scalar(
                "SELECT min(next_attempt_at) FROM deliveries WHERE campaign_id = ? AND state = ?",
                (self.campaign_id, DeliveryState.DEFERRED.value),
            )
        return rows, next_due

    def _read_claimed(self, rows: list[Any], next_due: str | None) -> Claim:
        if self.reader_db is None:
            self.reader_db = connect(self.db.url, migrate=False)
        return self._claimed(self.reader_db, rows, next_due)

    def _unread(self, rows: list[Any], next_due: str | None) -> Claim:
        """The batch as it was claimed: its jobs' units are read by the build workers."""
        claim = Claim(len(rows), [], [], [], next_due)
        for r in sorted(rows, key=lambda r: int(r[0])):
            _add(claim, outbox.delivery_of(r), outbox.address_suppressed(r), None)
        return claim

    def _claimed(self, db: Database, rows: list[Any], next_due: str | None) -> Claim:
        claimed = outbox.with_units(db, self.campaign_id, rows)
        claim = Claim(len(claimed), [], [], [], next_due)
        for c in claimed:
            # Suppressed units are left out (claimed_units.to_name).
            _add(claim, c.delivery, c.address_suppressed, claimed_units.to_name(c.units))
        return claim

    def _close_reader(self) -> None:
        if self.reader_db is not None:
            self.reader_db.close()
            self.reader_db = None


def _add(
    claim: Claim, d: Delivery, address_blocked: bool, units: tuple[UnitToName, ...] | None
) -> None:
    """One claimed delivery into the batch: to build, or, with its address suppressed or none
    of its units left, to settle as suppressed without a message. units None: the build
    worker reads them (and settles a delivery with none left itself, builder.SUPPRESSED)."""
    if address_blocked or units == ():
        claim.suppressed.append(d)
        return
    claim.deliveries.append(d)
    claim.jobs.append((d.id, d.address, d.language, d.code, d.unsubscribe_token, units))
