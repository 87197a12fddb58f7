"""`varsel registry` and `varsel segment`: the registry's data, and who a campaign reaches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from varsel.cli import State, err, out
from varsel.cli_output import COUNT, NorskGroup

# Made here rather than imported: cli.py imports this module at its end, and a decorator taken
# from a module still being imported has no type mypy can see.
pass_state = click.make_pass_decorator(State)


# -- registry ---------------------------------------------------------------------------


@click.group(cls=NorskGroup)
def registry() -> None:
    """Importer, oppdater, last ned og lag syntetiske data fra Enhetsregisteret."""


@registry.command("import")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path), metavar="FIL...")
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Skriv hver fils avviste poster hit som JSON-linjer (fil, posisjon, grunn).",
)
@click.option("--dump-date", metavar="ÅÅÅÅ-MM-DD", help="Datoen uttrekket ble laget.")
@click.option(
    "--allow-shrink",
    is_flag=True,
    help="Importer selv om mer enn 5 % av enhetene ville blitt merket som borte "
    "eller mer enn 10 % av postene avvist.",
)
@pass_state
def registry_import(
    state: State,
    paths: tuple[Path, ...],
    rejects: Path | None,
    dump_date: str | None,
    allow_shrink: bool,
) -> None:
    """Importer uttrekk fra registeret (JSON eller CSV, gzip eller ikke; enheter, underenheter).

    Alt eller ingenting: feiler én fil, er ingen av filene importert. En eldre fil som er
    importert før, blir brukt på nytt: slik angrer du en feil import.
    """
    from varsel.audit import cli_actor
    from varsel.progress import progress_bar
    from varsel.registry import import_dumps
    from varsel.registry_extract import start_rejects

    _some_files(paths)
    if rejects is not None:
        start_rejects(rejects, paths)
    results = import_dumps(
        state.db_or_new,
        paths,
        rejects_path=rejects,
        dump_date=dump_date,
        progress_bar=lambda description: progress_bar(description, err),
        actor=cli_actor(),
        allow_shrink=allow_shrink,
    )
    for result in results:
        out.print(result.summary(), soft_wrap=True)
        for line in result.first_rejects():
            out.print(f"  avvist: {line}", soft_wrap=True)


@registry.command("update")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path), metavar="[FIL...]")
@click.option(
    "--fetch",
    is_flag=True,
    help="Hent endringene siden sist fra registerets endringslogg i stedet for fra filer.",
)
@click.option(
    "--kind",
    type=click.Choice(["enheter", "underenheter"]),
    help="Med --fetch: bare denne (standard: hver som er importert).",
)
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="MAPPE",
    help="Med --fetch: behold sidene i denne mappen (de har personopplysninger; "
    "standard: ikke behold dem).",
)
@pass_state
def registry_update(
    state: State, paths: tuple[Path, ...], fetch: bool, kind: str | None, keep: Path | None
) -> None:
    """Legg endringssider (oppdateringer, JSON, gzip eller ikke) inn i lageret.

    Med --fetch hentes endringene etter den siste som er lagt inn, side for side, rett fra
    registeret. Hver side legges inn for seg (og lagres bare med --keep); stopper
    hentingen underveis, fortsetter neste kjøring der den slapp.
    """
    from varsel.audit import cli_actor
    from varsel.feed import apply_feed
    from varsel.feed_page import read_page

    if fetch:
        if paths:
            raise click.UsageError("oppgi filer eller --fetch, ikke begge")
        _fetch_feeds(state, kind, keep)
        return
    if kind is not None or keep is not None:
        option = "--kind" if kind is not None else "--keep"
        raise click.UsageError(f"{option} gjelder bare sammen med --fetch")
    _some_files(paths, "oppgi minst én fil, eller --fetch for å hente fra registeret")

    # Every page is read and checked first: one bad page applies none of them.
    pages = [read_page(path) for path in paths]
    for page in pages:
        result = apply_feed(state.db_or_new, page, actor=cli_actor())
        out.print(result.summary(), soft_wrap=True)


def _fetch_feeds(state: State, kind: str | None, keep: Path | None) -> None:
    from varsel.audit import cli_actor
    from varsel.dump import Kind
    from varsel.feed_fetch import fetch_feed, has_start

    db = state.db  # a store to follow holds a dump already: a missing file is a mistyped --db
    # Every register the store follows; with none, the units' register says what is missing.
    kinds = [Kind(kind)] if kind is not None else [k for k in Kind if has_start(db, k)]
    kinds = kinds or [Kind.ENHETER]
    for one in kinds:
        result = fetch_feed(
            db,
            state.settings,
            one,
            keep,
            actor=cli_actor(),
            on_page=lambda page: out.print(page.summary(), soft_wrap=True),
            on_wait=lambda text: err.print(text, soft_wrap=True, markup=False),
        )
        out.print(result.summary(), soft_wrap=True)


def _some_files(paths: tuple[Path, ...], problem: str = "oppgi minst én fil") -> None:
    # Click's own message names the argument's metavar (PATHS), in English grammar.
    if not paths:
        raise click.UsageError(problem)


SNAPSHOTS_SHOWN = 30  # rows of the table by default: a year of daily feed pages is thousands


@registry.command("snapshots")
@click.option("--json", "as_json", is_flag=True, help="Skriv ut JSON.")
@click.option(
    "--limit",
    type=COUNT,
    help=f"Vis bare de nyeste (tabellen: standard {SNAPSHOTS_SHOWN}; JSON: alle).",
)
@click.option("--all", "show_all", is_flag=True, help="Vis alle.")
@pass_state
def registry_snapshots(state: State, as_json: bool, limit: int | None, show_all: bool) -> None:
    """Vis importerte uttrekk og endringssider (Dato: uttrekkets, eller sidens nyeste endring)."""
    from varsel.snapshot import count_snapshots, list_snapshots

    if show_all and limit is not None:
        raise click.UsageError("--limit og --all kan ikke brukes sammen")
    if limit is None and not as_json and not show_all:
        limit = SNAPSHOTS_SHOWN
    snaps = list_snapshots(state.db, newest=None if show_all else limit)
    if as_json:
        click.echo(json.dumps([s.as_dict() for s in snaps], ensure_ascii=False, indent=2))
        return
    if not snaps:
        out.print("Ingenting er importert ennå (varsel registry import).")
        return
    from rich import box
    from rich.table import Table
    from rich.text import Text as Styled  # Text(...) is errors.Text to the catalogs

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
            Styled.assemble(f"{what}\n", (s.file_name, "dim")),
            (s.dump_date or s.imported_at)[:10],
            *(fmt_int(n) for n in (s.records, s.new, s.changed, s.gone + s.removed, s.rejected)),
        )
    out.print(table)
    left_out = count_snapshots(state.db) - len(snaps)
    if left_out > 0:
        out.print(f"{fmt_int(left_out)} eldre er ikke vist (--all viser alle).")
    guessed = [str(s.id) for s in snaps if s.dump_date_guessed]
    if guessed:
        out.print(
            f"Dumpdatoen er gjettet fra filens endringstid for snapshot {', '.join(guessed)}: "
            "rett den med «varsel registry import FIL --dump-date ÅÅÅÅ-MM-DD».",
            soft_wrap=True,
        )


# The dump's kind and file format, as download and synth take them.
dump_kind = click.option(
    "--kind",
    type=click.Choice(["enheter", "underenheter"]),
    default="enheter",
    show_default=True,
    help="Hvilket uttrekk.",
)
dump_format = click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "csv"]),
    default="json",
    show_default=True,
    help="Filformatet.",
)


@registry.command("download")
@dump_kind
@dump_format
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Hvor uttrekket skal lagres.",
)
@pass_state
def registry_download(state: State, kind: str, fmt: str, out_path: Path) -> None:
    """Last ned registerets nattlige uttrekk (hoppes over hvis det ikke er endret siden sist)."""
    from varsel.download import download_dump
    from varsel.progress import progress_bar

    with progress_bar(f"Laster ned {kind} ({fmt})", err) as progress:
        result = download_dump(
            state.settings,
            kind=kind,
            fmt=fmt,
            out=out_path,
            progress=progress,
            on_wait=lambda text: err.print(text, soft_wrap=True, markup=False),
        )
    out.print(result.summary(), soft_wrap=True)


@registry.command("synth")
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Filen som skal lages.",
)
@click.option("--units", type=click.IntRange(min=0), required=True, help="Hvor mange enheter.")
@click.option("--seed", type=int, required=True, help="Samme frø gir samme fil.")
@click.option(
    "--municipality",
    "municipalities",
    multiple=True,
    help="Bare enheter i denne kommunen (nummer fra 2024); gjenta for flere.",
)
@dump_format
@dump_kind
def registry_synth(
    out_path: Path, units: int, seed: int, municipalities: tuple[str, ...], fmt: str, kind: str
) -> None:
    """Lag et syntetisk uttrekk i nøyaktig samme format som registerets."""
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
    out.print(result.summary(), soft_wrap=True)


# -- segment ----------------------------------------------------------------------------


@click.group(cls=NorskGroup)
def segment() -> None:
    """Velg virksomheter etter område, størrelse, næring, organisasjonsform og status."""


@segment.command("preview")
@click.option(
    "--municipality",
    "-m",
    multiple=True,
    help="Kommunenummer eller -navn, også fra før 2020 (Mandal, 1002); flere skilles med komma "
    "eller ved å gjenta valget. Områdene legges sammen.",
)
@click.option(
    "--county",
    multiple=True,
    help="Fylkesnummer eller -navn, også tidligere fylker (Vest-Agder, 16); flere skilles med "
    "komma eller ved å gjenta valget.",
)
@click.option(
    "--police-district",
    multiple=True,
    help="Politidistrikt, for eksempel oslo; flere skilles med komma eller ved å gjenta valget.",
)
@click.option("--min-employees", type=click.IntRange(min=0), help="Minst N ansatte.")
@click.option(
    "--employee-rule",
    type=click.Choice(["auto", "registered", "exact"]),
    help="Hvordan skjulte antall (1–4) regnes.",
)
@click.option(
    "--nace",
    multiple=True,
    help="Begynnelsen på en næringskode (SN2025), med punktum (62.1); flere skilles med komma "
    "eller ved å gjenta valget.",
)
@click.option(
    "--form",
    multiple=True,
    help="Bare disse organisasjonsformene (AS, ENK); flere skilles med komma eller ved å gjenta "
    "valget.",
)
@click.option(
    "--exclude-form",
    multiple=True,
    help="Utelat disse organisasjonsformene; flere skilles med komma eller ved å gjenta valget.",
)
@click.option(
    "--sector",
    multiple=True,
    help="Begynnelsen på en sektorkode; flere skilles med komma eller ved å gjenta valget.",
)
@click.option(
    "--exclude-reached-by",
    multiple=True,
    metavar="KAMPANJE",
    help="Utelat virksomhetene disse kampanjene nådde (også brev og e-post på vei), for en "
    "oppfølgingskampanje; flere skilles med komma eller ved å gjenta valget.",
)
@click.option("--include-bankrupt", is_flag=True, default=None, help="Ta med konkursbo.")
@click.option(
    "--include-liquidating", is_flag=True, default=None, help="Ta med enheter under avvikling."
)
@click.option("--include-deleted", is_flag=True, default=None, help="Ta med slettede enheter.")
@click.option(
    "--criteria",
    "criteria_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Utvalgskriterier fra en TOML-fil; valgene her legges til.",
)
@click.option("--json", "as_json", is_flag=True, help="Skriv ut ett JSON-objekt.")
@pass_state
def segment_preview(
    state: State, /, criteria_file: Path | None, as_json: bool, **options: Any
) -> None:
    """Tell virksomhetene et utvalg når, og hvordan de kan nås."""
    from varsel.segment import preview
    from varsel.segment_criteria import Criteria

    criteria = Criteria.build(criteria_file, options)
    result = preview(state.db, criteria)
    if as_json:
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    else:
        from varsel.segment_view import render_preview

        render_preview(out, result)
