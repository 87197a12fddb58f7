"""Progress reporting: library code calls a plain callback; the CLI draws a Rich bar."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
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
