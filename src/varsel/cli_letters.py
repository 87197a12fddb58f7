"""`varsel letters`: letters for the units e-mail cannot reach; the print house's reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from varsel.cli import State, err, out

# Made here rather than imported: cli.py imports this module at its end, and a decorator taken
# from a module still being imported has no type mypy can see.
pass_state = click.make_pass_decorator(State)


class _LettersGroup(click.Group):
    """`varsel letters CAMPAIGN --out DIR` is short for `varsel letters make CAMPAIGN --out DIR`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["make", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_LettersGroup)
def letters() -> None:
    """Postal letters: `varsel letters CAMPAIGN --out DIR` makes them (see docs/letters.md)."""


@letters.command("make")
@click.argument("campaign_id", type=int)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="New folder for the batch PDFs, manifest.csv and unreachable.csv.",
)
@click.option("--per-letter", is_flag=True, help="Also write every letter as its own PDF.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    help="Letters per batch PDF.",
)
@click.option(
    "--no-approval",
    is_flag=True,
    help="Make letters without four-eyes approval (audited; VARSEL_ALLOW_NO_APPROVAL=false "
    "forbids it).",
)
@pass_state
def letters_make(
    state: State,
    campaign_id: int,
    out_dir: Path,
    per_letter: bool,
    batch_size: int,
    no_approval: bool,
) -> None:
    """Make letters for the units without usable e-mail, or whose e-mail bounced.

    Letters go to recipients like e-mail does, so they need the campaign's four-eyes approval
    (or --no-approval), as `campaign send` does.
    """
    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    from varsel.approval import authorise_send
    from varsel.audit import cli_actor
    from varsel.letters import make_letters

    authorise_send(
        state.db, state.settings, campaign_id, actor=cli_actor(), no_approval=no_approval
    )

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.completed:>8,} brev"),
        TimeElapsedColumn(),
        console=err,
        disable=not err.is_terminal,
    )
    task = bar.add_task(f"Lager brev for kampanje {campaign_id}", total=None)
    with bar:
        result = make_letters(
            state.db,
            campaign_id,
            out_dir,
            per_letter=per_letter,
            batch_size=batch_size,
            actor=cli_actor(),
            progress=lambda n: bar.advance(task, n),
        )
    out.print(result.summary(), soft_wrap=True)


def _report(state: State, campaign_id: int, path: Path, kind: str) -> None:
    from varsel.letter_returns import Report, record_report

    result = record_report(state.db, campaign_id, Report(kind), path)
    out.print(result.summary())


_CSV: dict[str, Any] = {"type": click.Path(dir_okay=False, path_type=Path)}


@letters.command("posted")
@click.argument("campaign_id", type=int)
@click.argument("csv_file", **_CSV)
@pass_state
def letters_posted(state: State, campaign_id: int, csv_file: Path) -> None:
    """Record letters the print house handed to the post (CSV with delivery_id[, orgnr, date])."""
    _report(state, campaign_id, csv_file, "posted")


@letters.command("returned")
@click.argument("campaign_id", type=int)
@click.argument("csv_file", **_CSV)
@pass_state
def letters_returned(state: State, campaign_id: int, csv_file: Path) -> None:
    """Record letters that came back (CSV with delivery_id[, orgnr, date, reason])."""
    _report(state, campaign_id, csv_file, "returned")
