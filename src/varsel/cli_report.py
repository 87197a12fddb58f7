"""`varsel report ...`: coverage, exports of the businesses not reached, the evaluation report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text as Styled  # Text(...) is errors.Text to the catalogs

from varsel.cli import State, out
from varsel.cli_output import CAMPAIGN_ID, NorskGroup

if TYPE_CHECKING:
    from varsel.coverage import Coverage, Group

# Made here, not imported: cli.py imports this module while it is still loading.
pass_state = click.make_pass_decorator(State)


@click.group(cls=NorskGroup)
def report() -> None:
    """Hvem en kampanje nådde, og hvor godt den virket."""


@report.command("coverage")
@click.argument("campaign_id", type=CAMPAIGN_ID, metavar="KAMPANJE")
@click.option("--json", "as_json", is_flag=True, help="Skriv ut ett JSON-objekt.")
@pass_state
def report_coverage(state: State, campaign_id: int, as_json: bool) -> None:
    """Ett utfall for hver virksomhet kampanjen valgte, med summer per gruppe."""
    from varsel.coverage import coverage

    result = coverage(state.db, campaign_id)
    if as_json:
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
        return
    render_coverage(out, result)


def render_coverage(console: Console, c: Coverage, *, rollups: bool = True) -> None:
    """The coverage report as Rich tables in Norwegian; without rollups, the totals only."""
    from varsel.coverage import NOT_REACHED, ON_THE_WAY, Outcome, label
    from varsel.i18n import fmt_count, fmt_int, fmt_share

    console.print(
        Styled.assemble(
            (f"Kampanje {c.campaign_id} «{c.campaign_name}»", "bold"),
            f": {fmt_count(c.units, 'virksomhet', 'virksomheter')}, {fmt_int(c.reached)} nådd "
            f"({fmt_share(c.reached, c.units)}), {fmt_int(c.on_the_way)} på vei, "
            f"{fmt_int(c.not_reached)} ikke nådd.",
        ),
        soft_wrap=True,
    )

    def table(title: str, first: str, *numbers: str) -> Table:
        t = Table(title=title, title_justify="left")
        t.add_column(first)
        for name in numbers:
            t.add_column(name, justify="right")
        return t

    def capital(text: str) -> str:
        return text[:1].upper() + text[1:]

    outcomes = table("Utfall", "Utfall", "Virksomheter", "Andel")
    for o in Outcome:
        outcomes.add_row(label(o), fmt_int(c.outcomes[o]), fmt_share(c.outcomes[o], c.units))
    # Of no businesses, nothing is 100 %: «–», as every other share of them.
    total = fmt_share(c.units, c.units)
    outcomes.add_row(Styled("Sum", "bold"), Styled(fmt_int(c.units), "bold"), total)
    console.print(outcomes)
    details = [(capital(label(r)), n) for r, n in c.unreachable.items() if n]
    details += [(f"Venter: {label(k)}", n) for k, n in c.pending.items()]
    if details:
        why = table("Ikke nådd og ventende", "Årsak", "Virksomheter")
        for name, n in details:
            why.add_row(name, fmt_int(n))
        console.print(why)
    if not rollups:
        return

    def groups(title: str, what: str, rows: tuple[Group, ...], *, keyed: bool = True) -> None:
        t = table(
            title,
            what,
            "Virksomheter",
            "E-post",
            "Brev",
            "Altinn",
            "Venter",
            "Ikke nådd",
            "Andel nådd",
        )
        for g in rows:
            o = g.outcomes
            t.add_row(
                f"{g.name} ({g.key})" if keyed and g.key != g.name else g.name,
                fmt_int(g.units),
                fmt_int(o[Outcome.EMAIL_ACCEPTED]),
                fmt_int(o[Outcome.LETTER_POSTED]),
                fmt_int(o[Outcome.ALTINN_DELIVERED]),
                # A letter made but not posted yet is on its way, as the summary counts it:
                # under «Brev» it looked reached while «Andel nådd» left it out.
                fmt_int(sum(o[x] for x in ON_THE_WAY)),
                fmt_int(sum(o[x] for x in NOT_REACHED)),
                fmt_share(g.reached, g.units),
            )
        console.print(t)

    groups("Per kommune", "Kommune", c.by_municipality)
    groups("Etter antall ansatte", "Ansatte", c.by_size, keyed=False)
    groups("Etter næring (SN2025-seksjon)", "Næring", c.by_section)
    groups("Etter organisasjonsform", "Form", c.by_form)
    console.print(
        "«Brev» er brev postlagt; «Venter» er det som ennå er i utboksen og brev som er laget, "
        "men ikke postlagt ennå. «Andel nådd» teller e-post levert, brev postlagt og levert i "
        "Altinn. Se docs/reports.md.",
        soft_wrap=True,
    )


@report.command("unreached")
@click.argument("campaign_id", type=CAMPAIGN_ID, metavar="KAMPANJE")
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="FIL.csv eller FIL.xlsx (ny: en fil som finnes fra før, blir ikke overskrevet).",
)
@click.option(
    "--include-suppressed",
    is_flag=True,
    help="Ta også med virksomhetene som har bedt om ikke å bli kontaktet (utelatt ellers).",
)
@pass_state
def report_unreached(
    state: State, campaign_id: int, out_path: Path, include_suppressed: bool
) -> None:
    """Eksporter virksomhetene som ikke ble nådd, med postadresser (personopplysninger: logges)."""
    from varsel.audit import cli_actor
    from varsel.unreached import export_unreached

    result = export_unreached(
        state.db,
        campaign_id,
        out_path,
        actor=cli_actor(),
        include_suppressed=include_suppressed,
    )
    out.print(result.summary(), soft_wrap=True)


@report.command("evaluate")
@click.argument("campaign_id", type=CAMPAIGN_ID, metavar="KAMPANJE")
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help=(
        "FIL.html (frittstående) eller FIL.pdf (ny: en fil som finnes fra før, blir ikke "
        "overskrevet; det gjelder også PDF-en ved siden av)."
    ),
)
@click.option("--pdf", is_flag=True, help="Skriv også en PDF ved siden av HTML-filen.")
@click.option(
    "--compare",
    "compare_id",
    type=CAMPAIGN_ID,
    metavar="KAMPANJE",
    help="Vis denne kampanjen ved siden av.",
)
@click.option(
    "--language",
    type=click.Choice(["nb", "nn", "en"]),
    default="nb",
    show_default=True,
    help="Rapportens språk: nb (bokmål), nn (nynorsk) eller en (engelsk).",
)
@pass_state
def report_evaluate(
    state: State,
    campaign_id: int,
    out_path: Path,
    pdf: bool,
    compare_id: int | None,
    language: str,
) -> None:
    """Skriv evalueringsrapporten: sammendrag, hvem som ble nådd, kodesjekker, tilbakemeldinger."""
    from varsel.evaluate import evaluate
    from varsel.evaluate_render import write_report

    if compare_id == campaign_id:  # a report beside itself compares nothing
        raise click.UsageError(
            f"--compare {compare_id}: det er kampanjen rapporten gjelder; oppgi en annen"
        )
    from varsel import audit

    ev = evaluate(state.db, campaign_id)
    other = evaluate(state.db, compare_id) if compare_id is not None else None
    written = write_report(ev, out_path, compare=other, pdf=pdf, language=language)
    # The report quotes recipients' free-text comments (which may name people and
    # businesses): a personal-data export, logged as `report unreached` is. Counts only.
    detail = {
        "what": "evaluation",
        "files": [str(path.resolve()) for path in written],
        "comments": ev.feedback.comments_total
        + (other.feedback.comments_total if other is not None else 0),
        "compare": compare_id,
    }
    with state.db.transaction():
        audit.record(
            state.db,
            audit.cli_actor(),
            audit.Action.PERSONAL_DATA_EXPORT,
            f"campaign:{campaign_id}",
            detail,
        )
    for path in written:
        out.print(f"Skrev {path}", soft_wrap=True)
