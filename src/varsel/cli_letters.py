"""`varsel letters`: letters for the units e-mail cannot reach; the print house's reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from varsel.cli import State, err, out
from varsel.cli_output import CAMPAIGN_ID, COUNT, NorskGroup
from varsel.errors import Interrupted
from varsel.i18n import fmt_count

# Made here rather than imported: cli.py imports this module at its end, and a decorator taken
# from a module still being imported has no type mypy can see.
pass_state = click.make_pass_decorator(State)


class _LettersGroup(NorskGroup):
    """`varsel letters CAMPAIGN --out DIR` is short for `varsel letters make CAMPAIGN --out DIR`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["make", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_LettersGroup)
def letters() -> None:
    """Brev i posten: `varsel letters KAMPANJE --out MAPPE` lager dem (se docs/letters.md)."""


@letters.command("make")
@click.argument("campaign_id", type=CAMPAIGN_ID, metavar="KAMPANJE")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Ny mappe for PDF-ene med brev, manifest.csv og unreachable.csv.",
)
@click.option("--per-letter", is_flag=True, help="Skriv også hvert brev som egen PDF.")
@click.option(
    "--batch-size",
    type=COUNT,
    default=500,
    show_default=True,
    help="Brev per PDF.",
)
@click.option(
    "--no-approval",
    is_flag=True,
    help="Lag brev uten godkjenning med fire øyne (logges; VARSEL_ALLOW_NO_APPROVAL=false "
    "forbyr det).",
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
    """Lag brev til enhetene uten brukbar e-post, eller der e-posten kom i retur.

    Brev når mottakerne slik e-post gjør, så de krever at kampanjen er godkjent med fire øyne
    (eller --no-approval), som `campaign send`.
    """
    from varsel.audit import cli_actor
    from varsel.letters import make_letters_checked
    from varsel.progress import count_bar

    made = 0

    def counted(n: int) -> None:
        nonlocal made
        made += n
        advance(n)

    try:
        with count_bar(f"Lager brev for kampanje {campaign_id}", "brev", err) as advance:
            result = make_letters_checked(
                state.db,
                state.settings,
                campaign_id,
                out_dir,
                actor=cli_actor(),
                no_approval=no_approval,
                per_letter=per_letter,
                batch_size=batch_size,
                progress=counted,
            )
    except KeyboardInterrupt:
        # Each batch's file and rows are committed together (or not at all): what was made
        # is in the folder's manifest, and a new run makes only the letters not made yet.
        if not made:
            raise Interrupted(f"avbrutt: ingen brev til kampanje {campaign_id} er laget") from None
        raise Interrupted(
            f"avbrutt: {fmt_count(made, 'brev', 'brev')} til kampanje {campaign_id} er laget i "
            f"{out_dir} (manifest.csv); resten lages med «varsel letters {campaign_id} "
            "--out NY_MAPPE»"
        ) from None
    out.print(result.summary(), soft_wrap=True)


def _report(state: State, campaign_id: int, path: Path, kind: str) -> None:
    from varsel.letter_returns import Report, record_report

    result = record_report(state.db, campaign_id, Report(kind), path)
    out.print(result.summary(), soft_wrap=True)


_CSV: dict[str, Any] = {"type": click.Path(dir_okay=False, path_type=Path)}


@letters.command("posted")
@click.argument("campaign_id", type=CAMPAIGN_ID, metavar="KAMPANJE")
@click.argument("csv_file", metavar="CSV-FIL", **_CSV)
@pass_state
def letters_posted(state: State, campaign_id: int, csv_file: Path) -> None:
    """Registrer brev trykkeriet leverte til posten (CSV med delivery_id[, orgnr, date])."""
    _report(state, campaign_id, csv_file, "posted")


@letters.command("returned")
@click.argument("campaign_id", type=CAMPAIGN_ID, metavar="KAMPANJE")
@click.argument("csv_file", metavar="CSV-FIL", **_CSV)
@pass_state
def letters_returned(state: State, campaign_id: int, csv_file: Path) -> None:
    """Registrer brev som kom i retur (CSV med delivery_id[, orgnr, date, reason])."""
    _report(state, campaign_id, csv_file, "returned")
