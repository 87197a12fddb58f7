"""Ctrl-C during a DuckDB query: the query stops at once, and the command as for any Ctrl-C."""

from __future__ import annotations

import contextlib
import select
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def interruptible(con: Any) -> Iterator[None]:
    """Ctrl-C stops DuckDB's extraction at once, and is a KeyboardInterrupt, not its error.

    Streamed through the ADBC driver, the extraction runs in C and never looks at Python's
    signals: Python's handler would run only once the whole dump was read (half a minute
    for the real one). The C-level handler writes to the wakeup fd at once, so a thread
    watching it interrupts the query. Where DuckDB does look (before streaming), it turns
    the KeyboardInterrupt into its own error ("Query interrupted"), shown as a traceback:
    either way the command now stops as for any Ctrl-C, in one line.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    with contextlib.ExitStack() as stack:
        # Undone in reverse order, every step even when Python's own handler raises the
        # pending KeyboardInterrupt in the middle of another (it may, at any line).
        stack.callback(wake_r.close)
        stack.callback(wake_w.close)
        old = signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
        stack.callback(signal.set_wakeup_fd, old)
        if old != -1:  # someone else (an event loop) reads the wakeup fd: leave it theirs
            yield
            return
        interrupted = threading.Event()
        done = threading.Event()

        def seen() -> None:
            with contextlib.suppress(BlockingIOError, OSError):
                if signal.SIGINT in wake_r.recv(64):
                    interrupted.set()
                    con.interrupt()

        def watch() -> None:
            while not done.is_set():
                if select.select([wake_r], [], [], 0.25)[0]:
                    seen()

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        stack.callback(thread.join)
        stack.callback(done.set)
        try:
            yield
        except Exception:
            done.set()
            thread.join()
            seen()  # a signal the thread had not read yet
            if interrupted.is_set():
                raise KeyboardInterrupt from None
            raise
