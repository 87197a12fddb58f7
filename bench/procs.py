"""Measuring a command the benchmarks run: wall time, CPU time and peak resident memory.

The peak is the process's own VmHWM, read from /proc while it runs, not getrusage's
ru_maxrss: across fork (or vfork) and exec, Linux carries the parent's peak into the child's
ru_maxrss, so a child started by a benchmark that has just loaded a large file into DuckDB
would be charged with the benchmark's memory.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_POLL = 0.02  # seconds between reads of the child's VmHWM


def peak_rss_kb(pid: int) -> int:
    """A process's peak resident set since it started its program (VmHWM; 0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) if found else 0


@dataclass(frozen=True)
class Measured:
    """One run of a command."""

    seconds: float  # wall
    cpu: float  # user + system seconds, every thread of the process and its children
    peak_kb: int  # the process's own peak resident set (VmHWM), KiB
    status: int  # exit status


def measure(command: Sequence[str], **popen: object) -> Measured:
    """Run command to its end; its wall and CPU time and its own peak resident set."""
    start = time.perf_counter()
    process = subprocess.Popen(list(command), **popen)  # type: ignore[call-overload]
    peak = [0]
    done = threading.Event()

    def watch() -> None:
        # VmHWM only grows: the last read before the process exits is its peak, give or take
        # what it allocated in its last _POLL seconds (an import's peak is long before that).
        while not done.wait(_POLL):
            peak[0] = max(peak[0], peak_rss_kb(process.pid))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        done.set()
        watcher.join()
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return Measured(seconds, cpu, peak[0], process.returncode)
