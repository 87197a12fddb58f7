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
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text as Styled  # Text(...) is errors.Text to the catalogs

from varsel.i18n import fmt_int


class ProgressCallback(Protocol):
    """Told how far a long job has come: bytes done, bytes in all (if known), records done."""

    def __call__(self, done: int, total: int | None, records: int) -> None: ...


def no_progress(done: int, total: int | None, records: int) -> None:
    """A callback that shows nothing."""


def _console() -> Console:
    from varsel.cli_output import make_console

    return make_console(stderr=True)  # a file's name is printed escaped, as all CLI output


def _description() -> TextColumn:
    # A file name in the description ("[x].json") is text, not markup.
    return TextColumn("{task.description}", style="bold", markup=False)


class _Count(ProgressColumn):
    """A count in Norwegian format ('20 000 poster'): the task's completed, or one of its fields."""

    def __init__(self, unit: str, field: str | None = None, width: int = 8) -> None:
        super().__init__()
        self.unit, self.field, self.width = unit, field, width

    def render(self, task: Task) -> Styled:
        n = task.completed if self.field is None else task.fields[self.field]
        total = (
            "" if self.field is not None or task.total is None else f"/{fmt_int(int(task.total))}"
        )
        return Styled(f"{fmt_int(int(n)):>{self.width}}{total} {self.unit}".rstrip())


class _Decimal(ProgressColumn):
    """A Rich column with a decimal comma: '4,0/4,0 MB', '1,2 MB/s'."""

    def __init__(self, column: ProgressColumn) -> None:
        super().__init__()
        self.column = column

    def render(self, task: Task) -> Styled:
        shown = self.column.render(task)
        text = shown if isinstance(shown, Styled) else Styled(str(shown))
        return Styled(text.plain.replace(".", ","), style=text.style)


@contextlib.contextmanager
def progress_bar(description: str, console: Console | None = None) -> Iterator[ProgressCallback]:
    """A Rich bar showing bytes and records; hidden when output is not a terminal."""
    console = console or _console()
    bar = Progress(
        _description(),
        BarColumn(),
        _Decimal(DownloadColumn()),
        _Decimal(TransferSpeedColumn()),
        _Count("poster", field="records", width=12),
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
    console = console or _console()
    bar = Progress(
        _description(),
        BarColumn(),
        _Count(""),
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
            f"sendt {fmt_int(counts.get('sent', 0))} · utsatt {fmt_int(counts.get('deferred', 0))}"
            f" · feilet {fmt_int(counts.get('failed', 0))}"
            f" · usikre {fmt_int(counts.get('in_doubt', 0))}"
        )
        bar.update(task, completed=done, rate=rate, detail=detail)

    with bar:
        yield update


@contextlib.contextmanager
def count_bar(description: str, unit: str, console: Console) -> Iterator[Callable[[int], None]]:
    """A Rich line counting things done (no total known); yields advance(n)."""
    bar = Progress(
        _description(),
        _Count(unit),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    task = bar.add_task(description, total=None)
    with bar:
        yield lambda n: bar.advance(task, n)
