"""The evaluation report as one self-contained HTML file (inline CSS and SVG), or as PDF.

Both are drawn from the same view: a list of sections, each a list of blocks (paragraphs,
figures, tables, definitions, comments) with every text already in the report's language
(Bokmål, Nynorsk or English, from the message catalogs) and every number formatted for it.
The HTML comes from a Jinja2 template with autoescaping; the PDF from a Typst template that
reads the view as JSON, so no text from the store is ever parsed as markup by either.

This module is the report's entry: `build_view` puts the sections together, the rest writes
them. The view's shape is in `evaluate_view`, the sections in `evaluate_sections` (feedback in
`evaluate_feedback`), the words, numbers, dates and summary paragraph in `evaluate_words`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import jinja2
from markupsafe import Markup

from varsel.errors import N_, UserError, os_reason
from varsel.evaluate import Evaluation
from varsel.evaluate_feedback import feedback_section
from varsel.evaluate_sections import (
    bounce_section,
    channels_section,
    checks_section,
    compare_section,
    funnel_section,
    groups_section,
    method_section,
    reach_section,
)
from varsel.evaluate_view import Chrome, View
from varsel.evaluate_words import Words, campaign_name, municipality, summary
from varsel.exports import name_taken, taken, write_new


class ReportError(UserError):
    """The report could not be written."""


# -- the view ---------------------------------------------------------------------------


def build_view(ev: Evaluation, compare: Evaluation | None = None, language: str = "nb") -> View:
    """Every section of the report, in reading order, in the language (nb, nn or en)."""
    w = Words(language)
    c = ev.campaign
    spec = c.spec
    meta = (
        (w(N_("Kampanje")), campaign_name(ev, w)),
        (w(N_("Avsender")), f"{spec.organisation} ({spec.from_address})"),
        (w(N_("Dokument")), spec.document_title),
        (w(N_("Opprettet")), w.date(c.created_at)),
        (w(N_("Rapporten er laget")), w.date_time(ev.generated_at)),
    )
    sections = [
        reach_section(ev, w),
        funnel_section(ev, w),
        channels_section(ev, w),
        checks_section(ev, w),
        groups_section(
            w,
            "kommuner",
            w(N_("Utfall per kommune")),
            ev.coverage.by_municipality,
            w(N_("Kommune")),
            lambda g: municipality(g, w),
            top=True,
        ),
        groups_section(
            w,
            "storrelse",
            w(N_("Utfall etter antall ansatte")),
            ev.coverage.by_size,
            w(N_("Ansatte")),
            lambda g: w(g.name),  # coverage's Bokmål names of the size bands: catalog ids
        ),
        bounce_section(ev, w),
        feedback_section(ev, w),
    ]
    if compare is not None:
        sections.append(compare_section(ev, compare, w))
    sections.append(method_section(w))
    return View(
        language=language,
        title=w(N_("Evaluering av kampanjen «%(name)s»"), name=c.name),
        meta=meta,
        summary=summary(ev, w),
        sections=tuple(sections),
        chrome=Chrome(
            summary=w(N_("Sammendrag")),
            footer=w(
                N_(
                    "Laget av varsel. Tallene er hentet fra utsendelsens egne data; det er ikke "
                    "brukt sporing av noe slag. Definisjonene står under «Slik er tallene regnet»."
                )
            ),
            page=w(N_("Side %(page)s av %(pages)s"), page="{page}", pages="{pages}"),
        ),
    )


# -- writing ------------------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("varsel", "templates/report"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(view: View) -> str:
    """The report as one HTML document with everything inline."""
    template = _environment().get_template("report.html.j2")
    return template.render(view=view, markup=Markup)


def render_pdf(view: View) -> bytes:
    """The report as PDF, typeset by Typst from the same view, with its fonts embedded."""
    import typst

    source = resources.files("varsel").joinpath("templates/report/report.typ").read_bytes()
    try:
        pdf = typst.compile(source, format="pdf", sys_inputs={"view": view.as_json()})
    except typst.TypstError as e:  # a bug in the template, not the user's doing
        raise RuntimeError(f"typst: {e.message}") from e
    assert isinstance(pdf, bytes)  # noqa: S101 - one document gives one PDF
    return pdf


def write_report(
    ev: Evaluation,
    out: Path,
    *,
    compare: Evaluation | None = None,
    pdf: bool = False,
    language: str = "nb",
) -> list[Path]:
    """Write the report in the language to out (.html, or .pdf); with pdf=True an .html out
    gets a .pdf twin. Each is a new file, its owner's alone: one that is there is refused."""
    suffix = out.suffix.lower()
    if suffix not in (".html", ".htm", ".pdf"):
        raise ReportError(f"{out}: filen må slutte på .html eller .pdf")
    if not out.parent.is_dir():
        raise ReportError(f"{out}: mappen {out.parent} finnes ikke")
    paths = [out] if suffix == ".pdf" or not pdf else [out, out.with_suffix(".pdf")]
    # The report holds recipients' comments, and the copy there may be an operator's annotated
    # one: never replaced. Checked before the (slow) typesetting, and again as each is placed.
    for path in paths:
        if taken(path):
            raise ReportError(name_taken(path))
    view = build_view(ev, compare, language)
    written: list[Path] = []
    try:
        for path in paths:
            data = render_pdf(view) if path.suffix.lower() == ".pdf" else render_html(view)
            try:
                write_new(path, data if isinstance(data, bytes) else data.encode("utf-8"))
            except FileExistsError:
                raise ReportError(name_taken(path)) from None
            except OSError as e:
                raise ReportError(f"{path}: kan ikke skrives ({os_reason(e)})") from None
            written.append(path)
    except BaseException:
        # All or nothing: an HTML file without the PDF asked for is not a finished report.
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written
