"""The sender's writes to the outbox, committed in groups: durable marks and outcomes.

A mark (the delivery's `data_started_at`) must be committed before the message's final dot;
outcomes follow it in order. `DbThread` commits on a thread of its own (PostgreSQL, where a
commit waits for the server); `DbInline` commits a SQLite file on the event loop at the end of
the turn that queued the marks.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

# Outcomes alone wait this long for a commit to share (a mark's, which follows soon while
# sending); marks are committed at once.
COMMIT_LINGER = 0.02

Write = tuple[str, tuple[Any, ...]]  # a statement and its parameters


class DbThread:
    """The sender's one database thread: writes committed in groups as soon as a mark waits,
    and other calls (claims, leases) in turn with them.

    The thread commits again as soon as a commit ends and more marks wait, without a turn of
    the event loop in between (a busy loop took ~1.5 ms to start each commit, against ~0.3 ms
    for the commit itself); only the news that a group is committed goes to the loop.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, apply: Callable[[list[Write]], None]
    ) -> None:
        self.loop = loop
        self.apply = apply
        # The loop appends writes and the thread takes them without a lock (a deque's append
        # and popleft are atomic): a lock per statement cost more than the rest of write().
        self.writes: collections.deque[Write] = collections.deque()
        self.mutex = threading.Lock()
        self.lock = threading.Condition(self.mutex)
        # Shared with the thread, under the lock:
        self.first_at = 0.0  # when the oldest write not yet taken was queued (about)
        self.urgent = False  # a waiter wants what is queued committed now
        self.calls: collections.deque[
            tuple[Callable[..., Any], tuple[Any, ...], concurrent.futures.Future[Any]]
        ] = collections.deque()
        self.closed = False
        # The loop's own: how many writes were queued, and who waits for which to commit.
        self.queued = 0
        self.committed = 0
        self.waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="varsel-db", daemon=True)
        self.thread.start()

    # On the event loop

    def write(self, write: Write) -> None:
        """Queue a statement for a group commit within COMMIT_LINGER (sooner if a mark waits)."""
        self.queued += 1
        writes = self.writes
        writes.append(write)
        if len(writes) == 1:
            with self.mutex:
                self.first_at = time.monotonic()
                self.lock.notify()  # the linger's clock starts now

    def committed_future(self) -> asyncio.Future[None]:
        """A future done when everything queued so far is committed; starts that commit."""
        waiter = self.loop.create_future()
        if self.error is not None:
            waiter.set_exception(self.error)
        elif self.queued <= self.committed:
            waiter.set_result(None)
        else:
            self.waiters.append((self.queued, waiter))
            with self.mutex:
                if not self.urgent:
                    self.urgent = True
                    self.lock.notify()
        return waiter

    def call(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Run fn(*args) on the thread, in turn with the commits."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self.mutex:
            if self.closed:
                raise RuntimeError("the database thread has stopped")
            self.calls.append((fn, args, future))
            self.lock.notify()
        return asyncio.wrap_future(future, loop=self.loop)

    def _done(self, upto: int, error: BaseException | None) -> None:
        self.committed = max(self.committed, upto)
        if error is not None and self.error is None:
            self.error = error
        waiters = self.waiters
        while waiters and (error is not None or waiters[0][0] <= upto):
            _, waiter = waiters.popleft()
            if not waiter.done():
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)

    def close(self) -> None:
        """Commit what is queued, run the calls, and stop."""
        with self.mutex:
            self.closed = True
            self.lock.notify()
        self.thread.join()

    async def aclose(self) -> None:
        """close(), without holding up the loop."""
        await asyncio.to_thread(self.close)

    # On the thread

    def _run(self) -> None:
        taken = 0  # writes taken so far
        call_next = False  # commits and calls take turns when both wait
        lock, writes = self.lock, self.writes
        while True:
            with self.mutex:
                while True:
                    due = writes and (
                        self.urgent
                        or self.closed
                        or time.monotonic() - self.first_at >= COMMIT_LINGER
                    )
                    job: tuple[Callable[..., Any], tuple[Any, ...], Any] | None = None
                    if self.calls and (call_next or not due):
                        batch, job = [], self.calls.popleft()
                        break
                    if due:
                        # Whatever the loop appends meanwhile stays for the next group.
                        batch = [writes.popleft() for _ in range(len(writes))]
                        self.urgent = False
                        break
                    if self.urgent:  # nothing queued: what was waited for is committed
                        self.urgent = False
                        with contextlib.suppress(RuntimeError):  # the loop is closed
                            self.loop.call_soon_threadsafe(self._done, taken, None)
                    if self.closed and not self.calls:
                        return
                    linger = COMMIT_LINGER - (time.monotonic() - self.first_at)
                    lock.wait(linger if writes else None)
            if job is not None:
                call_next = False
                fn, args, future = job
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn(*args))
                    except BaseException as e:  # handed to the caller
                        future.set_exception(e)
                continue
            call_next = True
            taken += len(batch)
            error: BaseException | None = None
            try:
                self.apply(batch)
            except BaseException as e:  # every waiter gets it
                error = e
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                self.loop.call_soon_threadsafe(self._done, taken, error)


class DbInline:
    """A SQLite file's writes and calls on the event loop itself, as DbThread takes them.

    A SQLite commit of a group (no fsync in WAL mode with synchronous=NORMAL) costs ~0.3 ms;
    handed to a thread it waited for the GIL besides, while the loop ran: 1–4 ms per mark,
    half of each connection's time. Marks queued in one turn of the loop are committed
    together at the end of that turn.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, apply: Callable[[list[Write]], None]
    ) -> None:
        self.loop = loop
        self.apply = apply
        self.writes: list[Write] = []
        self.waiters: list[asyncio.Future[None]] = []
        self.soon: asyncio.Handle | None = None  # the commit at the end of this turn
        self.later: asyncio.TimerHandle | None = None  # the commit of outcomes nobody waits for
        self.error: BaseException | None = None

    def write(self, write: Write) -> None:
        """Queue a statement for a group commit within COMMIT_LINGER (sooner if a mark waits)."""
        self.writes.append(write)
        if self.later is None and self.soon is None:
            self.later = self.loop.call_later(COMMIT_LINGER, self._commit)

    def committed_future(self) -> asyncio.Future[None]:
        """A future done when everything queued so far is committed; starts that commit."""
        waiter = self.loop.create_future()
        if self.error is not None:
            waiter.set_exception(self.error)
        elif not self.writes:
            waiter.set_result(None)
        else:
            self.waiters.append(waiter)
            if self.soon is None:
                self.soon = self.loop.call_soon(self._commit)
        return waiter

    def call(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Run fn(*args) now."""
        future = self.loop.create_future()
        try:
            future.set_result(fn(*args))
        except Exception as e:  # handed to the caller
            future.set_exception(e)
        return future

    def _commit(self) -> None:
        for handle in (self.soon, self.later):
            if handle is not None:
                handle.cancel()
        self.soon = self.later = None
        batch, self.writes = self.writes, []
        waiters, self.waiters = self.waiters, []
        try:
            if batch:
                self.apply(batch)
        except Exception as e:  # every waiter gets it
            self.error = self.error or e
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(e)
            return
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def aclose(self) -> None:
        """Commit what is queued."""
        if self.writes:
            self._commit()
