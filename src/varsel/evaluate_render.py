"""The evaluation report as one self-contained HTML file (inline CSS and SVG), or as PDF.

Both are drawn from the same view: a list of sections, each a list of blocks (paragraphs,
figures, tables, definitions, comments) with every number already formatted in Norwegian.
The HTML comes from a Jinja2 template with autoescaping; the PDF from a Typst template that
reads the view as JSON, so no text from the store is ever parsed as markup by either.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from babel.dates import format_date, format_datetime
from markupsafe import Markup

from varsel.charts import bar_chart, stacked_bars
from varsel.coverage import REACHED, Group, Outcome, label
from varsel.errors import UserError, os_reason
from varsel.evaluate import Evaluation, fmt_decimal
from varsel.i18n import fmt_int, fmt_share

TOP_MUNICIPALITIES = 15
_CHANNEL_NAMES = {"epost": "E-post", "brev": "Brev", "altinn": "Altinn", "sms": "SMS"}
_LANGUAGES = {"nb": "bokmål", "nn": "nynorsk", "en": "engelsk"}


class ReportError(UserError):
    """The report could not be written."""


# -- the view ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """A data table; the first column names the row."""

    caption: str
    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    kind: str = "table"


@dataclass(frozen=True)
class Figure:
    """An inline SVG chart with its caption; the SVG carries its own title and description."""

    svg: str
    caption: str
    alt: str
    kind: str = "figure"


@dataclass(frozen=True)
class Paragraph:
    text: str
    kind: str = "p"


@dataclass(frozen=True)
class Definitions:
    """Terms and what they mean."""

    items: tuple[tuple[str, str], ...]
    kind: str = "dl"


@dataclass(frozen=True)
class Comments:
    """Free-text answers; possibly personal, always escaped."""

    items: tuple[tuple[str, str], ...]  # (meta line, text)
    kind: str = "comments"


Block = Table | Figure | Paragraph | Definitions | Comments


@dataclass(frozen=True)
class Section:
    id: str
    heading: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class View:
    """The whole report, ready to render."""

    title: str
    meta: tuple[tuple[str, str], ...]
    summary: str
    sections: tuple[Section, ...]

    def as_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False)


def _figure(svg: Any, caption: str, alt: str) -> Figure:
    return Figure(svg(alt), caption, alt)


def _date(iso: str) -> str:
    return format_date(datetime.fromisoformat(iso.replace("Z", "+00:00")), "long", locale="nb")


def _datetime(iso: str) -> str:
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return format_datetime(
        moment, "d. MMMM y 'kl.' HH:mm", tzinfo=ZoneInfo("Europe/Oslo"), locale="nb"
    )


def build_view(ev: Evaluation, compare: Evaluation | None = None) -> View:
    """Every section of the report, in reading order."""
    c = ev.campaign
    spec = c.spec
    meta = (
        ("Kampanje", f"{c.id} «{c.name}»"),
        ("Avsender", f"{spec.organisation} ({spec.from_address})"),
        ("Dokument", spec.document_title),
        ("Opprettet", _date(c.created_at)),
        ("Rapporten er laget", _datetime(ev.generated_at)),
    )
    sections = [
        _reach_section(ev),
        _funnel_section(ev),
        _channels_section(ev),
        _checks_section(ev),
        _groups_section(
            "kommuner", "Utfall per kommune", ev.coverage.by_municipality, "Kommune", top=True
        ),
        _groups_section("storrelse", "Utfall etter antall ansatte", ev.coverage.by_size, "Ansatte"),
        _bounce_section(ev),
        _feedback_section(ev),
    ]
    if compare is not None:
        sections.append(_compare_section(ev, compare))
    sections.append(_method_section())
    return View(
        title=f"Evaluering av kampanjen «{c.name}»",
        meta=meta,
        summary=ev.summary(),
        sections=tuple(sections),
    )


def _share_row(name: str, n: int, whole: int) -> tuple[str, ...]:
    return (name, fmt_int(n), fmt_share(n, whole))


def _reach_section(ev: Evaluation) -> Section:
    cov = ev.coverage
    outcomes = [(o, cov.outcomes[o]) for o in Outcome]
    blocks: list[Block] = [
        Paragraph(
            "Hver virksomhet kampanjen valgte, er telt én gang, med det beste som skjedde med "
            "den: levert i Altinn, e-post levert, brev postlagt og så videre (se «Slik er "
            "tallene regnet» nederst)."
        ),
        _figure(
            lambda alt: stacked_bars(
                "Utfall for alle valgte virksomheter", [("Alle", cov.outcomes)], alt, legend=True
            ),
            f"Utfall for {fmt_int(cov.units)} valgte virksomheter.",
            _alt_outcomes(cov.outcomes, cov.units),
        ),
        Table(
            "Utfall",
            ("Utfall", "Virksomheter", "Andel"),
            (
                *(_share_row(label(o), n, cov.units) for o, n in outcomes),
                _share_row("Sum", cov.units, cov.units),
            ),
        ),
    ]
    reasons = [(r, n) for r, n in cov.unreachable.items() if n]
    if reasons:
        blocks.append(
            Table(
                "Hvorfor virksomheter ikke ble nådd",
                ("Årsak", "Virksomheter", "Andel av ikke nådd"),
                tuple(
                    _share_row(label(r).capitalize(), n, cov.outcomes[Outcome.UNREACHABLE])
                    for r, n in reasons
                ),
            )
        )
    if cov.pending:
        blocks.append(
            Table(
                "Det som fortsatt venter i utboksen",
                ("Tilstand", "Virksomheter", "Andel av ventende"),
                tuple(
                    _share_row(label(k).capitalize(), n, cov.outcomes[Outcome.PENDING])
                    for k, n in cov.pending.items()
                ),
            )
        )
    return Section("naadd", "Hvem ble nådd", tuple(blocks))


def _alt_outcomes(outcomes: Mapping[Outcome, int], whole: int) -> str:
    parts = [f"{label(o)}: {fmt_int(n)} ({fmt_share(n, whole)})" for o, n in outcomes.items() if n]
    return "; ".join(parts) + "."


def _funnel_section(ev: Evaluation) -> Section:
    f = ev.funnel
    steps = [
        ("Valgt ut", f.selected, "Virksomhetene kampanjen valgte fra registeret."),
        (
            "Har e-post i registeret",
            f.on_record,
            "Enhetsregisteret har noe i e-postfeltet, brukbart eller ikke.",
        ),
        ("Gyldig e-postadresse", f.valid, "Adressen kan brukes (riktig form, ekte domene)."),
        (
            "Tatt imot av e-posttjenesten",
            f.accepted,
            "E-posttjenesten vår tok imot minst én e-post til virksomheten.",
        ),
        ("Kom i retur", f.bounced, "Alle e-postene til virksomheten kom i retur etterpå."),
        ("Sjekket koden", f.verified, "Noen skrev inn kontrollkoden fra e-posten på nettsiden."),
        (
            "Lastet ned dokumentet",
            f.downloaded,
            "Adressen hentet dokumentet via en lenke fra nettsiden vår.",
        ),
        ("Ga tilbakemelding", f.feedback, "Noen svarte på skjemaet med koden fra e-posten."),
    ]
    bars = [(name, n, "#c62828" if name == "Kom i retur" else "#1b5e9b") for name, n, _ in steps]
    return Section(
        "trakt",
        "Fra utvalg til handling: e-post",
        (
            Paragraph(
                "Trakten viser hvor mange virksomheter som kom videre til hvert steg. «Kom i "
                "retur» er et tap, ikke et steg: de som kom fram, er de som ble tatt imot minus "
                f"de som kom i retur ({fmt_int(f.delivered)})."
            ),
            _figure(
                lambda alt: bar_chart("Trakten for e-post", bars, alt),
                "Fra utvalg til handling, i antall virksomheter.",
                "; ".join(f"{name}: {fmt_int(n)}" for name, n, _ in steps) + ".",
            ),
            Table(
                "Trakten for e-post",
                ("Steg", "Virksomheter", "Andel av valgte", "Hva det betyr"),
                tuple(
                    (name, fmt_int(n), fmt_share(n, f.selected), meaning)
                    for name, n, meaning in steps
                ),
            ),
        ),
    )


def _channels_section(ev: Evaluation) -> Section:
    lt, at = ev.letters, ev.altinn
    rows = (
        ("Virksomheter i kanalen", fmt_int(lt.units), fmt_int(at.units)),
        ("Sendt (brev laget / sendt til Altinn)", fmt_int(lt.sent), fmt_int(at.sent)),
        ("Kom fram (postlagt / levert i innboksen)", fmt_int(lt.arrived), fmt_int(at.arrived)),
        ("Feilet (brev i retur / avvist)", fmt_int(lt.failed), fmt_int(at.failed)),
        ("Sjekket koden", fmt_int(lt.verified), fmt_int(at.verified)),
    )
    text = (
        "Virksomheter uten brukbar e-post, og de der e-posten kom i retur, kan få brev i "
        "posten eller en melding i Altinn. Brevet og Altinn-meldingen har også en kontrollkode."
    )
    if not (lt.units or at.units):
        text += " Denne kampanjen har ikke brukt brev eller Altinn."
    return Section(
        "kanaler",
        "Brev og Altinn",
        (Paragraph(text), Table("Brev og Altinn", ("", "Brev", "Altinn"), rows)),
    )


def _checks_section(ev: Evaluation) -> Section:
    ch = ev.checks
    # The sender named in the campaign's definition: a council's report must not speak of
    # the police. A definition without one gets neutral words.
    sender = ev.campaign.spec.organisation.strip() or "en offentlig avsender"
    rows = (
        (
            "Sjekket koden, av dem som fikk e-posten",
            fmt_int(ch.verified),
            fmt_int(ch.delivered),
            fmt_share(ch.verified, ch.delivered),
        ),
        (
            "Sjekket koden før de lastet ned dokumentet",
            fmt_int(ch.downloaded_after_check),
            fmt_int(ch.downloaded),
            fmt_share(ch.downloaded_after_check, ch.downloaded),
        ),
        (
            "Tilbakemeldinger gitt etter at koden var sjekket",
            fmt_int(ch.answers_with_code),
            fmt_int(ch.answers),
            fmt_share(ch.answers_with_code, ch.answers),
        ),
    )
    return Section(
        "kode",
        "Sjekket mottakerne koden før de handlet?",
        (
            Paragraph(
                f"Dette er målet på phishing-spørsmålet: stoler folk på en e-post fra {sender} "
                "uten å sjekke den? Hver melding har en kontrollkode som mottakeren kan skrive "
                "inn på nettsiden vår. Vi ser bare det folk gjør på våre egne sider; dokumentet "
                "ligger også på den offentlige adressen i e-posten, og de som henter det der, "
                "ser vi ikke."
            ),
            Table("Kontroll av koden", ("Mål", "Antall", "Av", "Andel"), rows),
            Paragraph(
                f"Koden ble sjekket {fmt_int(ch.lookups)} ganger i alt (gjentatte sjekker "
                f"telles hver gang), og dokumentet ble hentet {fmt_int(ch.downloads)} ganger "
                "gjennom nettsiden vår, også av andre enn mottakerne."
            ),
        ),
    )


def _groups_section(
    section_id: str, heading: str, groups: Sequence[Group], what: str, *, top: bool = False
) -> Section:
    shown = list(groups)
    if top and len(shown) > TOP_MUNICIPALITIES:
        rest = shown[TOP_MUNICIPALITIES - 1 :]
        merged = {o: sum(g.outcomes.get(o, 0) for g in rest) for o in Outcome}
        shown = [
            *shown[: TOP_MUNICIPALITIES - 1],
            Group("andre", f"{len(rest)} andre kommuner", sum(g.units for g in rest), merged),
        ]
    head = (what, "Virksomheter", *(label(o) for o in Outcome), "Andel nådd")
    rows = tuple(
        (
            g.name,
            fmt_int(g.units),
            *(fmt_int(g.outcomes.get(o, 0)) for o in Outcome),
            fmt_share(g.reached, g.units),
        )
        for g in shown
    )
    figure = _figure(
        lambda alt: stacked_bars(heading, [(g.name, g.outcomes) for g in shown], alt, legend=True),
        f"{heading}. Hver stolpe er 100 % av virksomhetene i gruppen.",
        "; ".join(f"{g.name}: {fmt_share(g.reached, g.units)} nådd" for g in shown) + ".",
    )
    reached = ", ".join(label(o)[0].lower() + label(o)[1:] for o in REACHED)
    return Section(
        section_id,
        heading,
        (
            Paragraph(f"«Andel nådd» regner med {reached}."),
            figure,
            Table(heading, head, rows),
        ),
    )


def _bounce_section(ev: Evaluation) -> Section:
    blocks: list[Block] = []
    if not ev.bounces:
        blocks.append(Paragraph("Ingen e-post kom i retur eller ble avvist."))
    else:
        total = sum(b.bounced + b.refused for b in ev.bounces)
        blocks += [
            Paragraph(
                "«I retur» er e-post som mottakerens e-posttjeneste sendte tilbake etter at "
                "vår tjeneste hadde tatt imot den; «avvist» er e-post som ble avvist for godt "
                "allerede ved sending. Årsaken er lest av statuskoden i svaret. Midlertidige "
                "feil og filtre teller med her, selv om e-posten kan ha kommet fram senere."
            ),
            Table(
                "Årsaker til retur",
                ("Årsak", "I retur", "Avvist", "Andel"),
                tuple(
                    (
                        b.label,
                        fmt_int(b.bounced),
                        fmt_int(b.refused),
                        fmt_share(b.bounced + b.refused, total),
                    )
                    for b in ev.bounces
                ),
            ),
        ]
    if ev.auto_replies:
        blocks.append(
            Paragraph(
                f"I tillegg kom {fmt_int(ev.auto_replies)} automatiske svar (fravær og "
                "lignende). De betyr at e-posten kom fram, og teller ikke som retur."
            )
        )
    return Section("retur", "Hvorfor e-post kom i retur", tuple(blocks))


def _feedback_section(ev: Evaluation) -> Section:
    fb = ev.feedback
    if not fb.answers:
        return Section("tilbakemelding", "Tilbakemeldinger", (Paragraph("Ingen svar ennå."),))
    mean = fb.mean
    blocks: list[Block] = [
        Paragraph(
            f"{fmt_int(fb.answers)} svar. "
            + (
                f"Nytten ble vurdert til {fmt_decimal(mean)} av 5 i snitt "
                f"({fmt_int(fb.scored)} ga karakter). "
                if mean is not None
                else ""
            )
            + f"{fmt_int(fb.relevant_yes)} mente rådene var relevante for virksomheten, "
            f"{fmt_int(fb.relevant_no)} mente ikke det."
        ),
        _figure(
            lambda alt: bar_chart(
                "Hvor nyttig var rådene (1 = lite, 5 = svært)",
                [(str(k), n, "#1b5e9b") for k, n in fb.scores.items()],
                alt,
            ),
            "Fordeling av karakterene for nytte.",
            "; ".join(f"{k}: {fmt_int(n)}" for k, n in fb.scores.items()) + ".",
        ),
        Table(
            "Foretrukket kanal neste gang",
            ("Kanal", "Svar", "Andel"),
            tuple(
                _share_row(_CHANNEL_NAMES.get(k, k), n, fb.answers) for k, n in fb.channels.items()
            ),
        ),
    ]
    if fb.comments:
        note = (
            f"Fritekst fra svarene ({fmt_int(fb.comments_total)} i alt"
            + (
                f", de {fmt_int(len(fb.comments))} nyeste vises"
                if fb.comments_total > len(fb.comments)
                else ""
            )
            + "). Teksten er vist slik den ble skrevet og kan inneholde personopplysninger."
        )
        blocks.append(Paragraph(note))
        blocks.append(
            Comments(
                tuple(
                    (
                        f"{_date(c.at)}, {_LANGUAGES.get(c.language, c.language)}"
                        + (f", nytte {c.usefulness}" if c.usefulness is not None else ""),
                        c.text,
                    )
                    for c in fb.comments
                )
            )
        )
    return Section("tilbakemelding", "Tilbakemeldinger", tuple(blocks))


def _compare_section(a: Evaluation, b: Evaluation) -> Section:
    def row(name: str, f: Any) -> tuple[str, str, str]:
        return (name, f(a), f(b))

    def share(part: Any, whole: Any) -> Any:
        return lambda e: f"{fmt_int(part(e))} ({fmt_share(part(e), whole(e))})"

    def mean(e: Evaluation) -> str:
        m = e.feedback.mean
        return "–" if m is None else fmt_decimal(m)

    def units(e: Evaluation) -> int:
        return e.coverage.units

    rows = (
        row("Valgte virksomheter", lambda e: fmt_int(e.coverage.units)),
        row("Gyldig e-postadresse", share(lambda e: e.funnel.valid, units)),
        row("E-post levert", share(lambda e: e.coverage.outcomes[Outcome.EMAIL_ACCEPTED], units)),
        row("E-post i retur", share(lambda e: e.funnel.bounced, lambda e: e.funnel.accepted)),
        row("Brev sendt", share(lambda e: e.letters.sent, units)),
        row("Levert i Altinn", share(lambda e: e.altinn.arrived, units)),
        row("Nådd i alt", share(lambda e: e.coverage.reached, units)),
        row(
            "Sjekket koden (av dem som fikk e-post)",
            share(lambda e: e.checks.verified, lambda e: e.checks.delivered),
        ),
        row(
            "Sjekket koden før nedlasting",
            share(lambda e: e.checks.downloaded_after_check, lambda e: e.checks.downloaded),
        ),
        row("Tilbakemeldinger", lambda e: fmt_int(e.feedback.answers)),
        row("Nytte i snitt (1–5)", mean),
    )
    head = ("", f"{a.campaign.id} «{a.campaign.name}»", f"{b.campaign.id} «{b.campaign.name}»")
    return Section(
        "sammenligning",
        f"Sammenlignet med kampanje {b.campaign.id}",
        (Table("De to kampanjene side om side", head, rows),),
    )


def _method_section() -> Section:
    items = (
        (
            "Utfall",
            "Hver valgt virksomhet får ett utfall: det sterkeste tegnet på at meldingen kom "
            "fram, i denne rekkefølgen: levert i Altinn, e-post levert, brev postlagt, brev "
            "laget, venter i utboksen, brev i retur, e-post i retur, sperret, ikke nådd.",
        ),
        (
            "E-post levert",
            "Vår e-posttjeneste tok imot e-posten, og den kom ikke i retur. Om den ble lest, "
            "vet vi ikke: vi bruker ingen sporing.",
        ),
        (
            "Venter",
            "I kø, utsatt etter en midlertidig feil, under sending, eller usikker: sendingen "
            "ble avbrutt midt i, og en operatør må avgjøre om den skal sendes igjen.",
        ),
        (
            "Sjekket koden",
            "Noen skrev inn kontrollkoden fra meldingen på nettsiden vår og fikk svar om at "
            "den var ekte. En e-post til en adresse som deles av flere virksomheter, teller "
            "for hver av dem.",
        ),
        (
            "Sjekket før nedlasting",
            "Første sjekk av koden kom før første nedlasting av dokumentet til samme "
            "e-postadresse. Nedlastinger direkte fra den offentlige adressen ser vi ikke.",
        ),
        (
            "Tilbakemelding etter sjekk",
            "Svaret ble sendt fra skjemaet som siden for kontroll av koden lenker til; det "
            "bærer koden. Svar uten kode kom rett fra skjemaet.",
        ),
        (
            "Ugyldig e-post",
            "E-postfeltet i registeret har noe som ikke er en adresse (et telefonnummer, "
            "en skrivefeil).",
        ),
    )
    return Section("metode", "Slik er tallene regnet", (Definitions(items),))


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
    ev: Evaluation, out: Path, *, compare: Evaluation | None = None, pdf: bool = False
) -> list[Path]:
    """Write the report to out (.html, or .pdf); with pdf=True an .html out gets a .pdf twin."""
    suffix = out.suffix.lower()
    if suffix not in (".html", ".htm", ".pdf"):
        raise ReportError(f"{out}: filen må slutte på .html eller .pdf")
    if not out.parent.is_dir():
        raise ReportError(f"{out}: mappen {out.parent} finnes ikke")
    view = build_view(ev, compare)
    written: list[Path] = []
    targets: list[tuple[Path, bytes]] = []
    if suffix == ".pdf":
        targets.append((out, render_pdf(view)))
    else:
        targets.append((out, render_html(view).encode("utf-8")))
        if pdf:
            targets.append((out.with_suffix(".pdf"), render_pdf(view)))
    for path, data in targets:
        tmp = path.with_name(f".{path.name}.part")
        try:
            tmp.write_bytes(data)
            tmp.replace(path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise ReportError(f"{path}: kan ikke skrives ({os_reason(e)})") from None
        written.append(path)
    return written
