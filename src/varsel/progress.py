"""Progress reporting: library code calls a plain callback; the CLI draws a Rich bar."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


class ProgressCallback(Protocol):
    """Told how far a long job has come: bytes done, bytes in all (if known), records done."""

    def __call__(self, done: int, total: int | None, records: int) -> None: ...


def no_progress(done: int, total: int | None, records: int) -> None:
    """A callback that shows nothing."""


@contextlib.contextmanager
def progress_bar(description: str, console: Console | None = None) -> Iterator[ProgressCallback]:
    """A Rich bar showing bytes and records; hidden when output is not a terminal."""
    console = console or Console(stderr=True)
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[records]:>12,} poster"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    )
    task = bar.add_task(description, total=None, records=0)

    def update(done: int, total: int | None, records: int) -> None:
        bar.update(task, completed=done, total=total, records=records)

    with bar:
        yield update


@contextlib.contextmanager
def counts_bar(
    description: str, total: int, console: Console | None = None
) -> Iterator[Callable[[dict[str, int], float], None]]:
    """A Rich bar for sending: finished deliveries of total, the rate, and counts per state."""
    console = console or Console(stderr=True)
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:>8,}/{task.total:,}"),
        TextColumn("{task.fields[rate]:>6.0f}/s"),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    task = bar.add_task(description, total=total, rate=0.0, detail="")

    def update(counts: dict[str, int], rate: float) -> None:
        done = sum(
            counts.get(k, 0) for k in ("sent", "failed", "suppressed", "in_doubt", "cancelled")
        )
        detail = (
            f"sendt {counts.get('sent', 0):,} · utsatt {counts.get('deferred', 0):,} · "
            f"feilet {counts.get('failed', 0):,} · usikre {counts.get('in_doubt', 0):,}"
        )
        bar.update(task, completed=done, rate=rate, detail=detail)

    with bar:
        yield update
