"""`varsel registry` and `varsel segment`: the registry's data, and who a campaign reaches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from varsel.cli import State, err, out

# Made here rather than imported: cli.py imports this module at its end, and a decorator taken
# from a module still being imported has no type mypy can see.
pass_state = click.make_pass_decorator(State)


# -- registry ---------------------------------------------------------------------------


@click.group()
def registry() -> None:
    """Import, update, download and synthesise Enhetsregisteret data."""


@registry.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every file's rejected records here as JSON lines (file, position, reason).",
)
@click.option("--dump-date", metavar="YYYY-MM-DD", help="The date the dump was made.")
@click.option(
    "--allow-shrink",
    is_flag=True,
    help="Import even if more than 5 % of the units would be marked gone "
    "or more than 10 % of the records rejected.",
)
@pass_state
def registry_import(
    state: State,
    paths: tuple[Path, ...],
    rejects: Path | None,
    dump_date: str | None,
    allow_shrink: bool,
) -> None:
    """Import registry dumps (JSON or CSV, gzipped or not; enheter or underenheter).

    An older file imported before is applied again: that undoes a wrong import.
    """
    from varsel.audit import cli_actor
    from varsel.progress import progress_bar
    from varsel.registry import import_dump
    from varsel.registry_extract import start_rejects

    if rejects is not None:
        start_rejects(rejects)
    for path in paths:
        with progress_bar(f"Importerer {path.name}", err) as progress:
            result = import_dump(
                state.db,
                path,
                rejects_path=rejects,
                dump_date=dump_date,
                progress=progress,
                actor=cli_actor(),
                allow_shrink=allow_shrink,
            )
        out.print(result.summary())
        for line in result.first_rejects():
            out.print(f"  avvist: {line}")


@registry.command("update")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@pass_state
def registry_update(state: State, paths: tuple[Path, ...]) -> None:
    """Apply change-feed pages (oppdateringer, JSON, gzipped or not) to the store."""
    from varsel.audit import cli_actor
    from varsel.feed import apply_feed, read_page

    # Every page is read and checked first: one bad page applies none of them.
    pages = [read_page(path) for path in paths]
    for page in pages:
        result = apply_feed(state.db, page, actor=cli_actor())
        out.print(result.summary())


@registry.command("snapshots")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def registry_snapshots(state: State, as_json: bool) -> None:
    """List the imported dumps and change-feed pages (Dato: the dump's, or the day applied)."""
    from varsel.snapshot import list_snapshots

    snaps = list_snapshots(state.db)
    if as_json:
        click.echo(json.dumps([s.as_dict() for s in snaps], ensure_ascii=False, indent=2))
        return
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from varsel.i18n import fmt_int

    # Fits 80 columns with a national dump's counts: the file name goes under the kind and
    # folds; the id, the date and the counts never wrap. Import times are in --json.
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    table.add_column("Id", justify="right", no_wrap=True)
    table.add_column("Innhold og fil", overflow="fold", min_width=12, ratio=1)
    table.add_column("Dato", no_wrap=True)
    for header in ("Poster", "Nye", "Endret", "Borte", "Avvist"):
        table.add_column(header, justify="right", no_wrap=True)
    for s in snaps:
        what = s.kind if s.source == "dump" else f"{s.kind}, endringer"
        table.add_row(
            str(s.id),
            f"{what}\n[dim]{escape(s.file_name)}[/]",
            (s.dump_date or s.imported_at)[:10],
            *(fmt_int(n) for n in (s.records, s.new, s.changed, s.gone + s.removed, s.rejected)),
        )
    out.print(table)


@registry.command("download")
@click.option(
    "--kind", type=click.Choice(["enheter", "underenheter"]), default="enheter", show_default=True
)
@click.option(
    "--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True
)
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to keep the dump file.",
)
@pass_state
def registry_download(state: State, kind: str, fmt: str, out_path: Path) -> None:
    """Download the registry's nightly dump (skipped when unchanged since last time)."""
    from varsel.download import download_dump
    from varsel.progress import progress_bar

    with progress_bar(f"Laster ned {kind} ({fmt})", err) as progress:
        result = download_dump(state.settings, kind=kind, fmt=fmt, out=out_path, progress=progress)
    out.print(result.summary())


@registry.command("synth")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--units", type=click.IntRange(min=0), required=True, help="How many units.")
@click.option("--seed", type=int, required=True, help="Same seed, same file.")
@click.option(
    "--municipality",
    "municipalities",
    multiple=True,
    help="Only units located in this municipality (2024 number); repeat for several.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True
)
@click.option(
    "--kind", type=click.Choice(["enheter", "underenheter"]), default="enheter", show_default=True
)
def registry_synth(
    out_path: Path, units: int, seed: int, municipalities: tuple[str, ...], fmt: str, kind: str
) -> None:
    """Write a synthetic registry dump in exactly the registry's format."""
    from varsel.progress import progress_bar
    from varsel.synth import write_dump

    with progress_bar(f"Lager syntetisk {kind}", err) as progress:
        result = write_dump(
            out_path,
            units=units,
            seed=seed,
            fmt=fmt,
            kind=kind,
            municipalities=municipalities,
            progress=progress,
        )
    out.print(result.summary())


# -- segment ----------------------------------------------------------------------------


@click.group()
def segment() -> None:
    """Select businesses by area, size, industry, legal form and status."""


@segment.command("preview")
@click.option("--municipality", "-m", multiple=True, help="Municipality number or name.")
@click.option("--county", multiple=True, help="County number or name.")
@click.option("--police-district", multiple=True, help="Police district, e.g. oslo.")
@click.option("--min-employees", type=click.IntRange(min=0), help="At least N employees.")
@click.option(
    "--employee-rule",
    type=click.Choice(["auto", "registered", "exact"]),
    help="How to treat hidden counts (1-4).",
)
@click.option("--nace", multiple=True, help="Industry code prefix (SN2025).")
@click.option("--form", multiple=True, help="Include only these legal forms.")
@click.option("--exclude-form", multiple=True, help="Leave out these legal forms.")
@click.option("--sector", multiple=True, help="Institutional sector code prefix.")
@click.option("--include-bankrupt", is_flag=True, default=None, help="Keep bankrupt units.")
@click.option(
    "--include-liquidating", is_flag=True, default=None, help="Keep units being wound up."
)
@click.option("--include-deleted", is_flag=True, default=None, help="Keep deleted units.")
@click.option(
    "--criteria",
    "criteria_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Criteria from a TOML file; options add to it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_state
def segment_preview(
    state: State, /, criteria_file: Path | None, as_json: bool, **options: Any
) -> None:
    """Count the businesses a selection reaches, and how they can be reached."""
    from varsel.segment import Criteria, preview

    criteria = Criteria.build(criteria_file, options)
    result = preview(state.db, criteria)
    if as_json:
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    else:
        from varsel.segment_view import render_preview

        render_preview(out, result)
