"""Where the sender's messages are built: worker processes for large sends, else this process.

The workers run `builder` and nothing of the sender. Until one has started, and for small sends
and the last retries, messages are built here, a few at a time between turns of the connections.

The build workers also read the claimed deliveries' units from the SQLite file themselves
(`reads_units`), on a read-only connection each, instead of the sender's reader thread: that
takes ~10 µs a message off the sender's loop, and more in turns of the GIL it no longer
shares (unsigned, its CPU fell from 78 to 54-57 µs a message; signed, where the signatures
are what limits a send, it neither gains nor loses: docs/benchmarks.md). A server's store
(PostgreSQL) is read by the sender, as before.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import multiprocessing
import os
from collections.abc import Callable

from varsel.builder import (
    Job,
    Outcome,
    ReadUnits,
    build_in_worker,
    build_jobs,
    init_worker,
    ready,
)
from varsel.message import MessageFactory, MessageSpec
from varsel.outbox import Delivery
from varsel.verp import Verp

POOL_FROM = 200  # deliveries; smaller sends build messages in-process
# Messages per task for a build worker: each task costs two trips between the processes.
CHUNK = 128
LOCAL_SLICE = 16  # messages built at a time in this process, between turns of the connections


class BuildPool:
    """One run's message building: hands built messages on, or says which could not be built."""

    def __init__(
        self,
        spec: MessageSpec,
        keys: list[tuple[str, str, str]],
        local_factory: MessageFactory,
        verp: Verp,
        processes: int | None,
        queued: int,
        built: Callable[[list[Delivery], list[Outcome]], None],
        failed: Callable[[list[Delivery], BaseException], None],
        read_here: ReadUnits,
        store: tuple[str, int] | None = None,
    ) -> None:
        """store: the SQLite file and campaign whose units the workers may read (not a server's)."""
        self.local_factory = local_factory
        self.read_here = read_here  # the units of jobs built here that came without them
        self.verp = verp
        self.built = built
        self.failed = failed
        self.building = 0  # messages handed to the build workers and not yet back
        self.futures: set[asyncio.Future[list[Outcome]]] = set()
        self.ready = False  # a worker has started
        self.closed: asyncio.Future[None] | None = None
        if processes is None:
            # Signing is most of a message's cost, and takes every core; an unsigned message
            # (benchmarks, tests) costs less to build than to send, so one worker keeps up, and
            # each more would only cost another interpreter's start.
            cores = (os.cpu_count() or 1) if keys else 1
            processes = cores if queued >= POOL_FROM else 0
        self.executor: concurrent.futures.ProcessPoolExecutor | None = None
        self.worker_store = store
        if processes > 0:
            self.executor = concurrent.futures.ProcessPoolExecutor(
                processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=init_worker,
                initargs=(spec, keys, verp, self.worker_store),
            )

    @property
    def reads_units(self) -> bool:
        """Whether messages claimed now are built by workers that read their units themselves."""
        return self.ready and self.executor is not None and self.worker_store is not None

    def start(self) -> None:
        """Notice when the first worker has started (on the event loop)."""
        if self.executor is not None:
            # A worker takes some tenths of a second to start (a new interpreter, its
            # imports, the factory); until one has, messages are built here instead.
            started = asyncio.get_running_loop().run_in_executor(self.executor, ready)
            started.add_done_callback(self._started)

    def _started(self, future: asyncio.Future[None]) -> None:
        if not future.cancelled():
            future.exception()  # a worker that cannot start fails the build tasks, with the reason
        self.ready = True

    def close_early(self) -> None:
        """Let the build workers exit while the last messages go out (the outbox is empty)."""
        if self.executor is not None:
            # Deliveries deferred from here on are few (those in flight), and built in-process.
            self.closed = asyncio.ensure_future(asyncio.to_thread(self.executor.shutdown))
            self.executor = None

    async def finished(self) -> None:
        """Wait for the messages being built; their callbacks have run when this returns."""
        await asyncio.gather(*self.futures, return_exceptions=True)

    async def shutdown(self) -> None:
        """Stop the workers; what they were still building is cancelled."""
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)
        if self.closed is not None:
            await self.closed

    async def build(self, deliveries: list[Delivery], jobs: list[Job]) -> None:
        """Build (and sign) the messages, in the worker processes when there are any."""
        pool = self.executor
        if pool is None:
            self._build_here(deliveries, jobs)
            return
        done = 0
        while done < len(jobs) and not self.ready:
            # A few at a time, so that the connections send them while the rest are built.
            here = slice(done, done + LOCAL_SLICE)
            if not self._build_here(deliveries[here], jobs[here]):
                return
            done += LOCAL_SLICE
            await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        for start in range(done, len(jobs), CHUNK):
            part = deliveries[start : start + CHUNK]
            future = loop.run_in_executor(pool, build_in_worker, jobs[start : start + CHUNK])
            self.building += len(part)
            self.futures.add(future)
            future.add_done_callback(functools.partial(self._built, part))

    def _built(self, deliveries: list[Delivery], future: asyncio.Future[list[Outcome]]) -> None:
        self.building -= len(deliveries)
        self.futures.discard(future)
        if future.cancelled():
            return  # the pool was shut down: they are still claimed, and requeued next run
        error = future.exception()
        if error is None:
            self.built(deliveries, future.result())
        else:
            self.failed(deliveries, error)

    def _build_here(self, deliveries: list[Delivery], jobs: list[Job]) -> bool:
        """Build in this process; False if a message could not be built (the run stops)."""
        try:
            built = build_jobs(self.local_factory, jobs, self.verp, self.read_here)
        except Exception as e:
            self.failed(deliveries, e)
            return False
        self.built(deliveries, built)
        return True
