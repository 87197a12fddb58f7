"""The evaluation report as one self-contained HTML file (inline CSS and SVG), or as PDF.

Both are drawn from the same view: a list of sections, each a list of blocks (paragraphs,
figures, tables, definitions, comments) with every text already in the report's language
(Bokmål, Nynorsk or English, from the message catalogs) and every number formatted for it.
The HTML comes from a Jinja2 template with autoescaping; the PDF from a Typst template that
reads the view as JSON, so no text from the store is ever parsed as markup by either.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
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
from varsel.errors import N_, UserError, os_reason
from varsel.evaluate import Evaluation
from varsel.i18n import fmt_decimal, fmt_int, fmt_share
from varsel.segment import FOREIGN

TOP_MUNICIPALITIES = 15
LANGUAGES = ("nb", "nn", "en")
_CHANNEL_NAMES = {
    "epost": N_("E-post"),
    "brev": N_("Brev"),
    "altinn": N_("Altinn"),
    "sms": N_("SMS"),
}
_LANGUAGE_NAMES = {"nb": N_("bokmål"), "nn": N_("nynorsk"), "en": N_("engelsk")}
# Babel's locale for each language's dates: British English, as the document e-mail writes.
_DATE_LOCALES = {"nb": "nb", "nn": "nn", "en": "en_GB"}
_OSLO = ZoneInfo("Europe/Oslo")


class ReportError(UserError):
    """The report could not be written."""


class Words:
    """The report's texts in one language: catalog look-ups, numbers and dates."""

    def __init__(self, language: str) -> None:
        # Imported here: varsel.web's console imports this module while it loads.
        from varsel.web.templating import gettext

        self.language = language
        self._gettext = gettext

    def __call__(self, msgid: str, /, **values: str) -> str:
        """The message in the language, its values filled in (a literal % is written %%)."""
        return self._gettext(self.language, msgid) % values

    def num(self, n: int) -> str:
        return fmt_int(n, self.language)

    def share(self, part: int, whole: int) -> str:
        return fmt_share(part, whole, self.language)

    def decimal(self, x: float) -> str:
        return fmt_decimal(x, self.language)

    def date(self, iso: str) -> str:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
        return format_date(moment, "long", locale=_DATE_LOCALES[self.language])

    def date_time(self, iso: str) -> str:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
        pattern = "d MMMM y, HH:mm" if self.language == "en" else "d. MMMM y 'kl.' HH:mm"
        return format_datetime(moment, pattern, tzinfo=_OSLO, locale=_DATE_LOCALES[self.language])

    def outcome(self, value: str) -> str:
        """An outcome, reason or pending state (coverage's labels, which are catalog ids)."""
        return self(label(value))

    def outcomes(self) -> dict[Outcome, str]:
        return {o: self.outcome(o) for o in Outcome}

    def joined(self, items: Sequence[str]) -> str:
        """'a, b og c'."""
        if len(items) == 1:
            return items[0]
        return self(N_("%(first)s og %(last)s"), first=", ".join(items[:-1]), last=items[-1])


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


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
class Chrome:
    """The words around the sections: the summary's heading, the footer, the page numbers."""

    summary: str
    footer: str
    page: str  # "Side {page} av {pages}": Typst fills in the numbers


@dataclass(frozen=True)
class View:
    """The whole report, ready to render."""

    language: str
    title: str
    meta: tuple[tuple[str, str], ...]
    summary: str
    sections: tuple[Section, ...]
    chrome: Chrome

    def as_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False)


def _figure(svg: Callable[[str], str], caption: str, alt: str) -> Figure:
    return Figure(svg(alt), caption, alt)


def build_view(ev: Evaluation, compare: Evaluation | None = None, language: str = "nb") -> View:
    """Every section of the report, in reading order, in the language (nb, nn or en)."""
    w = Words(language)
    c = ev.campaign
    spec = c.spec
    meta = (
        (w(N_("Kampanje")), _campaign_name(ev, w)),
        (w(N_("Avsender")), f"{spec.organisation} ({spec.from_address})"),
        (w(N_("Dokument")), spec.document_title),
        (w(N_("Opprettet")), w.date(c.created_at)),
        (w(N_("Rapporten er laget")), w.date_time(ev.generated_at)),
    )
    sections = [
        _reach_section(ev, w),
        _funnel_section(ev, w),
        _channels_section(ev, w),
        _checks_section(ev, w),
        _groups_section(
            w,
            "kommuner",
            w(N_("Utfall per kommune")),
            ev.coverage.by_municipality,
            w(N_("Kommune")),
            lambda g: _municipality(g, w),
            top=True,
        ),
        _groups_section(
            w,
            "storrelse",
            w(N_("Utfall etter antall ansatte")),
            ev.coverage.by_size,
            w(N_("Ansatte")),
            lambda g: w(g.name),  # coverage's Bokmål names of the size bands: catalog ids
        ),
        _bounce_section(ev, w),
        _feedback_section(ev, w),
    ]
    if compare is not None:
        sections.append(_compare_section(ev, compare, w))
    sections.append(_method_section(w))
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


def _campaign_name(ev: Evaluation, w: Words) -> str:
    return w(N_("%(id)s «%(name)s»"), id=str(ev.campaign.id), name=ev.campaign.name)


def _area(ev: Evaluation, w: Words) -> str:
    """The municipalities, named: 'Oslo, Bærum og Asker', or 'N kommuner'."""
    names = [_municipality(g, w) for g in ev.coverage.by_municipality]
    if not names:
        return w(N_("ingen kommuner"))
    if len(names) > 4:
        return w(N_("%(n)s kommuner"), n=w.num(len(names)))
    return w.joined(names)


def summary(ev: Evaluation, w: Words) -> str:
    """One paragraph for a reader who has not seen the campaign."""
    c, f, ch = ev.coverage, ev.funnel, ev.checks
    o = c.outcomes
    parts = [
        w(
            N_("Kampanjen «%(name)s» gikk til %(units)s virksomheter i %(area)s."),
            name=ev.campaign.name,
            units=w.num(c.units),
            area=_area(ev, w),
        ),
        w(
            N_("%(valid)s av dem (%(share)s) hadde en brukbar e-postadresse i Enhetsregisteret."),
            valid=w.num(f.valid),
            share=w.share(f.valid, c.units),
        ),
    ]
    delivered = w.num(o[Outcome.EMAIL_ACCEPTED])
    if f.bounced:
        parts.append(
            w(
                N_("E-posten ble levert til %(delivered)s av dem, mens %(bounced)s kom i retur."),
                delivered=delivered,
                bounced=w.num(f.bounced),
            )
        )
    else:
        parts.append(w(N_("E-posten ble levert til %(delivered)s av dem."), delivered=delivered))
    letters, altinn = w.num(ev.letters.sent), w.num(ev.altinn.arrived)
    if ev.letters.units and ev.altinn.units:
        parts.append(
            w(
                N_("%(letters)s fikk brev i posten og %(altinn)s ble nådd gjennom Altinn."),
                letters=letters,
                altinn=altinn,
            )
        )
    elif ev.letters.units:
        parts.append(w(N_("%(letters)s fikk brev i posten."), letters=letters))
    elif ev.altinn.units:
        parts.append(w(N_("%(altinn)s ble nådd gjennom Altinn."), altinn=altinn))
    totals = {
        "reached": w.num(c.reached),
        "reached_share": w.share(c.reached, c.units),
        "not_reached": w.num(c.not_reached),
        "not_reached_share": w.share(c.not_reached, c.units),
    }
    if c.on_the_way:
        parts.append(
            w(
                N_(
                    "Til sammen er %(reached)s (%(reached_share)s) nådd, %(on_the_way)s er på "
                    "vei, og %(not_reached)s (%(not_reached_share)s) er ikke nådd."
                ),
                on_the_way=w.num(c.on_the_way),
                **totals,
            )
        )
    else:
        parts.append(
            w(
                N_(
                    "Til sammen er %(reached)s (%(reached_share)s) nådd, og %(not_reached)s "
                    "(%(not_reached_share)s) er ikke nådd."
                ),
                **totals,
            )
        )
    if ch.delivered:
        parts.append(
            w(
                N_(
                    "%(verified)s av dem som fikk e-posten (%(share)s) sjekket kontrollkoden på "
                    "nettsiden vår for å se at e-posten var ekte."
                ),
                verified=w.num(ch.verified),
                share=w.share(ch.verified, ch.delivered),
            )
        )
    fb = ev.feedback
    mean = fb.mean
    if not fb.answers:
        parts.append(w(N_("Ingen har gitt tilbakemelding ennå.")))
    elif mean is None:
        parts.append(w(N_("%(answers)s ga tilbakemelding."), answers=w.num(fb.answers)))
    else:
        parts.append(
            w(
                N_("%(answers)s ga tilbakemelding; i snitt vurderte de nytten til %(mean)s av 5."),
                answers=w.num(fb.answers),
                mean=w.decimal(mean),
            )
        )
    return " ".join(parts)


def _share_row(w: Words, name: str, n: int, whole: int) -> tuple[str, ...]:
    return (name, w.num(n), w.share(n, whole))


def _reach_section(ev: Evaluation, w: Words) -> Section:
    cov = ev.coverage
    units, share = w(N_("Virksomheter")), w(N_("Andel"))
    blocks: list[Block] = [
        Paragraph(
            w(
                N_(
                    "Hver virksomhet kampanjen valgte, er telt én gang, med det beste som skjedde "
                    "med den: levert i Altinn, e-post levert, brev postlagt og så videre (se "
                    "«Slik er tallene regnet» nederst)."
                )
            )
        ),
        _figure(
            lambda alt: stacked_bars(
                w(N_("Utfall for alle valgte virksomheter")),
                [(w(N_("Alle")), cov.outcomes)],
                alt,
                legend=True,
                language=w.language,
                names=w.outcomes(),
            ),
            w(N_("Utfall for %(units)s valgte virksomheter."), units=w.num(cov.units)),
            _alt_outcomes(w, cov.outcomes, cov.units),
        ),
        Table(
            w(N_("Utfall")),
            (w(N_("Utfall")), units, share),
            (
                *(_share_row(w, w.outcome(o), cov.outcomes[o], cov.units) for o in Outcome),
                _share_row(w, w(N_("Sum")), cov.units, cov.units),
            ),
        ),
    ]
    reasons = [(r, n) for r, n in cov.unreachable.items() if n]
    if reasons:
        blocks.append(
            Table(
                w(N_("Hvorfor virksomheter ikke ble nådd")),
                (w(N_("Årsak")), units, w(N_("Andel av ikke nådd"))),
                tuple(
                    _share_row(w, _capital(w.outcome(r)), n, cov.outcomes[Outcome.UNREACHABLE])
                    for r, n in reasons
                ),
            )
        )
    if cov.pending:
        blocks.append(
            Table(
                w(N_("Det som fortsatt venter i utboksen")),
                (w(N_("Tilstand")), units, w(N_("Andel av ventende"))),
                tuple(
                    _share_row(w, _capital(w.outcome(k)), n, cov.outcomes[Outcome.PENDING])
                    for k, n in cov.pending.items()
                ),
            )
        )
    return Section("naadd", w(N_("Hvem ble nådd")), tuple(blocks))


def _alt_outcomes(w: Words, outcomes: Mapping[Outcome, int], whole: int) -> str:
    parts = [f"{w.outcome(o)}: {w.num(n)} ({w.share(n, whole)})" for o, n in outcomes.items() if n]
    return "; ".join(parts) + "."


def _funnel_section(ev: Evaluation, w: Words) -> Section:
    f = ev.funnel
    steps = [
        (w(N_("Valgt ut")), f.selected, w(N_("Virksomhetene kampanjen valgte fra registeret."))),
        (
            w(N_("Har e-post i registeret")),
            f.on_record,
            w(N_("Enhetsregisteret har noe i e-postfeltet, brukbart eller ikke.")),
        ),
        (
            w(N_("Gyldig e-postadresse")),
            f.valid,
            w(N_("Adressen kan brukes (riktig form, ekte domene).")),
        ),
        (
            w(N_("Tatt imot av e-posttjenesten")),
            f.accepted,
            w(N_("E-posttjenesten vår tok imot minst én e-post til virksomheten.")),
        ),
        (
            w(N_("Kom i retur")),
            f.bounced,
            w(N_("Alle e-postene til virksomheten kom i retur etterpå.")),
        ),
        (
            w(N_("Sjekket koden")),
            f.verified,
            w(N_("Noen skrev inn kontrollkoden fra e-posten på nettsiden.")),
        ),
        (
            w(N_("Lastet ned dokumentet")),
            f.downloaded,
            w(N_("Adressen hentet dokumentet via en lenke fra nettsiden vår.")),
        ),
        (
            w(N_("Ga tilbakemelding")),
            f.feedback,
            w(N_("Noen svarte på skjemaet med koden fra e-posten.")),
        ),
    ]
    bounced_step = 4  # a loss, not a step: drawn in red
    bars = [
        (name, n, "#c62828" if i == bounced_step else "#1b5e9b")
        for i, (name, n, _) in enumerate(steps)
    ]
    return Section(
        "trakt",
        w(N_("Fra utvalg til handling: e-post")),
        (
            Paragraph(
                w(
                    N_(
                        "Trakten viser hvor mange virksomheter som kom videre til hvert steg. «Kom "
                        "i retur» er et tap, ikke et steg: de som kom fram, er de som ble tatt "
                        "imot minus de som kom i retur (%(delivered)s)."
                    ),
                    delivered=w.num(f.delivered),
                )
            ),
            _figure(
                lambda alt: bar_chart(w(N_("Trakten for e-post")), bars, alt, language=w.language),
                w(N_("Fra utvalg til handling, i antall virksomheter.")),
                "; ".join(f"{name}: {w.num(n)}" for name, n, _ in steps) + ".",
            ),
            Table(
                w(N_("Trakten for e-post")),
                (
                    w(N_("Steg")),
                    w(N_("Virksomheter")),
                    w(N_("Andel av valgte")),
                    w(N_("Hva det betyr")),
                ),
                tuple(
                    (name, w.num(n), w.share(n, f.selected), meaning) for name, n, meaning in steps
                ),
            ),
        ),
    )


def _channels_section(ev: Evaluation, w: Words) -> Section:
    lt, at = ev.letters, ev.altinn
    rows = (
        (w(N_("Virksomheter i kanalen")), w.num(lt.units), w.num(at.units)),
        (w(N_("Sendt (brev laget / sendt til Altinn)")), w.num(lt.sent), w.num(at.sent)),
        (
            w(N_("Kom fram (postlagt / levert i innboksen)")),
            w.num(lt.arrived),
            w.num(at.arrived),
        ),
        (w(N_("Feilet (brev i retur / avvist)")), w.num(lt.failed), w.num(at.failed)),
        (w(N_("Sjekket koden")), w.num(lt.verified), w.num(at.verified)),
    )
    text = w(
        N_(
            "Virksomheter uten brukbar e-post, og de der e-posten kom i retur, kan få brev i "
            "posten eller en melding i Altinn. Brevet og Altinn-meldingen har også en "
            "kontrollkode."
        )
    )
    if not (lt.units or at.units):
        text += " " + w(N_("Denne kampanjen har ikke brukt brev eller Altinn."))
    heading = w(N_("Brev og Altinn"))
    return Section(
        "kanaler",
        heading,
        (Paragraph(text), Table(heading, ("", w(N_("Brev")), w(N_("Altinn"))), rows)),
    )


def _checks_section(ev: Evaluation, w: Words) -> Section:
    ch = ev.checks
    # The sender named in the campaign's definition: a council's report must not speak of
    # the police. A definition without one gets neutral words.
    sender = ev.campaign.spec.organisation.strip() or w(N_("en offentlig avsender"))
    rows = (
        (
            w(N_("Sjekket koden, av dem som fikk e-posten")),
            w.num(ch.verified),
            w.num(ch.delivered),
            w.share(ch.verified, ch.delivered),
        ),
        (
            w(N_("Sjekket koden før de lastet ned dokumentet")),
            w.num(ch.downloaded_after_check),
            w.num(ch.downloaded),
            w.share(ch.downloaded_after_check, ch.downloaded),
        ),
        (
            w(N_("Tilbakemeldinger gitt etter at koden var sjekket")),
            w.num(ch.answers_with_code),
            w.num(ch.answers),
            w.share(ch.answers_with_code, ch.answers),
        ),
    )
    return Section(
        "kode",
        w(N_("Sjekket mottakerne koden før de handlet?")),
        (
            Paragraph(
                w(
                    N_(
                        "Dette er målet på phishing-spørsmålet: stoler folk på en e-post fra "
                        "%(sender)s uten å sjekke den? Hver melding har en kontrollkode som "
                        "mottakeren kan skrive inn på nettsiden vår. Vi ser bare det folk gjør på "
                        "våre egne sider; dokumentet ligger også på den offentlige adressen i "
                        "e-posten, og de som henter det der, ser vi ikke."
                    ),
                    sender=sender,
                )
            ),
            Table(
                w(N_("Kontroll av koden")),
                (w(N_("Mål")), w(N_("Antall")), w(N_("Av")), w(N_("Andel"))),
                rows,
            ),
            Paragraph(
                w(
                    N_(
                        "Koden ble sjekket %(lookups)s ganger i alt (gjentatte sjekker telles "
                        "hver gang), og dokumentet ble hentet %(downloads)s ganger gjennom "
                        "nettsiden vår, også av andre enn mottakerne."
                    ),
                    lookups=w.num(ch.lookups),
                    downloads=w.num(ch.downloads),
                )
            ),
        ),
    )


def _municipality(g: Group, w: Words) -> str:
    """A municipality's own name; the group of foreign addresses in the language."""
    return w(N_("Utlandet")) if g.key == FOREIGN else g.name


def _groups_section(
    w: Words,
    section_id: str,
    heading: str,
    groups: Sequence[Group],
    what: str,
    name: Callable[[Group], str],
    *,
    top: bool = False,
) -> Section:
    shown = [dataclasses.replace(g, name=name(g)) for g in groups]
    if top and len(shown) > TOP_MUNICIPALITIES:
        rest = shown[TOP_MUNICIPALITIES - 1 :]
        merged = {o: sum(g.outcomes.get(o, 0) for g in rest) for o in Outcome}
        shown = [
            *shown[: TOP_MUNICIPALITIES - 1],
            Group(
                "andre",
                w(N_("%(n)s andre kommuner"), n=w.num(len(rest))),
                sum(g.units for g in rest),
                merged,
            ),
        ]
    head = (what, w(N_("Virksomheter")), *(w.outcome(o) for o in Outcome), w(N_("Andel nådd")))
    rows = tuple(
        (
            g.name,
            w.num(g.units),
            *(w.num(g.outcomes.get(o, 0)) for o in Outcome),
            w.share(g.reached, g.units),
        )
        for g in shown
    )
    figure = _figure(
        lambda alt: stacked_bars(
            heading,
            [(g.name, g.outcomes) for g in shown],
            alt,
            legend=True,
            language=w.language,
            names=w.outcomes(),
        ),
        w(N_("%(heading)s. Hver stolpe er 100 %% av virksomhetene i gruppen."), heading=heading),
        "; ".join(
            w(N_("%(group)s: %(share)s nådd"), group=g.name, share=w.share(g.reached, g.units))
            for g in shown
        )
        + ".",
    )
    reached = ", ".join(w.outcome(o)[0].lower() + w.outcome(o)[1:] for o in REACHED)
    return Section(
        section_id,
        heading,
        (
            Paragraph(w(N_("«Andel nådd» regner med %(outcomes)s."), outcomes=reached)),
            figure,
            Table(heading, head, rows),
        ),
    )


def _bounce_section(ev: Evaluation, w: Words) -> Section:
    blocks: list[Block] = []
    if not ev.bounces:
        blocks.append(Paragraph(w(N_("Ingen e-post kom i retur eller ble avvist."))))
    else:
        total = sum(b.bounced + b.refused for b in ev.bounces)
        blocks += [
            Paragraph(
                w(
                    N_(
                        "«I retur» er e-post som mottakerens e-posttjeneste sendte tilbake etter "
                        "at vår tjeneste hadde tatt imot den; «avvist» er e-post som ble avvist "
                        "for godt allerede ved sending. Årsaken er lest av statuskoden i svaret. "
                        "Midlertidige feil og filtre teller med her, selv om e-posten kan ha "
                        "kommet fram senere."
                    )
                )
            ),
            Table(
                w(N_("Årsaker til retur")),
                (w(N_("Årsak")), w(N_("I retur")), w(N_("Avvist")), w(N_("Andel"))),
                tuple(
                    (
                        w(b.label),  # evaluate's Bokmål label: a catalog id
                        w.num(b.bounced),
                        w.num(b.refused),
                        w.share(b.bounced + b.refused, total),
                    )
                    for b in ev.bounces
                ),
            ),
        ]
    if ev.auto_replies:
        blocks.append(
            Paragraph(
                w(
                    N_(
                        "I tillegg kom %(n)s automatiske svar (fravær og lignende). De betyr at "
                        "e-posten kom fram, og teller ikke som retur."
                    ),
                    n=w.num(ev.auto_replies),
                )
            )
        )
    return Section("retur", w(N_("Hvorfor e-post kom i retur")), tuple(blocks))


def _feedback_section(ev: Evaluation, w: Words) -> Section:
    fb = ev.feedback
    heading = w(N_("Tilbakemeldinger"))
    if not fb.answers:
        return Section("tilbakemelding", heading, (Paragraph(w(N_("Ingen svar ennå."))),))
    mean = fb.mean
    parts = [w(N_("%(n)s svar."), n=w.num(fb.answers))]
    if mean is not None:
        parts.append(
            w(
                N_("Nytten ble vurdert til %(mean)s av 5 i snitt (%(scored)s ga karakter)."),
                mean=w.decimal(mean),
                scored=w.num(fb.scored),
            )
        )
    parts.append(
        w(
            N_("%(yes)s mente rådene var relevante for virksomheten, %(no)s mente ikke det."),
            yes=w.num(fb.relevant_yes),
            no=w.num(fb.relevant_no),
        )
    )
    blocks: list[Block] = [
        Paragraph(" ".join(parts)),
        _figure(
            lambda alt: bar_chart(
                w(N_("Hvor nyttig var rådene (1 = lite, 5 = svært)")),
                [(str(k), n, "#1b5e9b") for k, n in fb.scores.items()],
                alt,
                language=w.language,
            ),
            w(N_("Fordeling av karakterene for nytte.")),
            "; ".join(f"{k}: {w.num(n)}" for k, n in fb.scores.items()) + ".",
        ),
        Table(
            w(N_("Foretrukket kanal neste gang")),
            (w(N_("Kanal")), w(N_("Svar")), w(N_("Andel"))),
            tuple(
                _share_row(w, w(_CHANNEL_NAMES[k]) if k in _CHANNEL_NAMES else k, n, fb.answers)
                for k, n in fb.channels.items()
            ),
        ),
    ]
    if fb.comments:
        shown, total = len(fb.comments), fb.comments_total
        note = (
            w(
                N_(
                    "Fritekst fra svarene (%(total)s i alt, de %(shown)s nyeste vises). Teksten "
                    "er vist slik den ble skrevet og kan inneholde personopplysninger."
                ),
                total=w.num(total),
                shown=w.num(shown),
            )
            if total > shown
            else w(
                N_(
                    "Fritekst fra svarene (%(total)s i alt). Teksten er vist slik den ble "
                    "skrevet og kan inneholde personopplysninger."
                ),
                total=w.num(total),
            )
        )
        blocks.append(Paragraph(note))
        blocks.append(Comments(tuple((_comment_meta(c, w), c.text) for c in fb.comments)))
    return Section("tilbakemelding", heading, tuple(blocks))


def _comment_meta(c: Any, w: Words) -> str:
    language = w(_LANGUAGE_NAMES[c.language]) if c.language in _LANGUAGE_NAMES else c.language
    if c.usefulness is None:
        return f"{w.date(c.at)}, {language}"
    return w(
        N_("%(date)s, %(language)s, nytte %(usefulness)s"),
        date=w.date(c.at),
        language=language,
        usefulness=str(c.usefulness),
    )


def _compare_section(a: Evaluation, b: Evaluation, w: Words) -> Section:
    def row(name: str, f: Any) -> tuple[str, str, str]:
        return (name, f(a), f(b))

    def share(part: Any, whole: Any) -> Any:
        return lambda e: f"{w.num(part(e))} ({w.share(part(e), whole(e))})"

    def mean(e: Evaluation) -> str:
        m = e.feedback.mean
        return "–" if m is None else w.decimal(m)

    def units(e: Evaluation) -> int:
        return e.coverage.units

    def name(e: Evaluation) -> str:
        return _campaign_name(e, w)

    rows = (
        row(w(N_("Valgte virksomheter")), lambda e: w.num(e.coverage.units)),
        row(w(N_("Gyldig e-postadresse")), share(lambda e: e.funnel.valid, units)),
        row(
            w.outcome(Outcome.EMAIL_ACCEPTED),
            share(lambda e: e.coverage.outcomes[Outcome.EMAIL_ACCEPTED], units),
        ),
        row(
            w.outcome(Outcome.EMAIL_BOUNCED),
            share(lambda e: e.funnel.bounced, lambda e: e.funnel.accepted),
        ),
        row(w(N_("Brev sendt")), share(lambda e: e.letters.sent, units)),
        row(w.outcome(Outcome.ALTINN_DELIVERED), share(lambda e: e.altinn.arrived, units)),
        row(w(N_("Nådd i alt")), share(lambda e: e.coverage.reached, units)),
        row(
            w(N_("Sjekket koden (av dem som fikk e-post)")),
            share(lambda e: e.checks.verified, lambda e: e.checks.delivered),
        ),
        row(
            w(N_("Sjekket koden før nedlasting")),
            share(lambda e: e.checks.downloaded_after_check, lambda e: e.checks.downloaded),
        ),
        row(w(N_("Tilbakemeldinger")), lambda e: w.num(e.feedback.answers)),
        row(w(N_("Nytte i snitt (1–5)")), mean),
    )
    return Section(
        "sammenligning",
        w(N_("Sammenlignet med kampanje %(id)s"), id=str(b.campaign.id)),
        (Table(w(N_("De to kampanjene side om side")), ("", name(a), name(b)), rows),),
    )


def _method_section(w: Words) -> Section:
    items = (
        (
            w(N_("Utfall")),
            w(
                N_(
                    "Hver valgt virksomhet får ett utfall: det sterkeste tegnet på at meldingen "
                    "kom fram, i denne rekkefølgen: levert i Altinn, e-post levert, brev "
                    "postlagt, brev laget, venter i utboksen, brev i retur, e-post i retur, "
                    "sperret, ikke nådd."
                )
            ),
        ),
        (
            w.outcome(Outcome.EMAIL_ACCEPTED),
            w(
                N_(
                    "Vår e-posttjeneste tok imot e-posten, og den kom ikke i retur. Om den ble "
                    "lest, vet vi ikke: vi bruker ingen sporing."
                )
            ),
        ),
        (
            w(N_("Venter")),
            w(
                N_(
                    "I kø, utsatt etter en midlertidig feil, under sending, eller usikker: "
                    "sendingen ble avbrutt midt i, og en operatør må avgjøre om den skal sendes "
                    "igjen."
                )
            ),
        ),
        (
            w(N_("Sjekket koden")),
            w(
                N_(
                    "Noen skrev inn kontrollkoden fra meldingen på nettsiden vår og fikk svar om "
                    "at den var ekte. En e-post til en adresse som deles av flere virksomheter, "
                    "teller for hver av dem."
                )
            ),
        ),
        (
            w(N_("Sjekket før nedlasting")),
            w(
                N_(
                    "Første sjekk av koden kom før første nedlasting av dokumentet til samme "
                    "e-postadresse. Nedlastinger direkte fra den offentlige adressen ser vi ikke."
                )
            ),
        ),
        (
            w(N_("Tilbakemelding etter sjekk")),
            w(
                N_(
                    "Svaret ble sendt fra skjemaet som siden for kontroll av koden lenker til; det "
                    "bærer koden. Svar uten kode kom rett fra skjemaet."
                )
            ),
        ),
        (
            w(N_("Ugyldig e-post")),
            w(
                N_(
                    "E-postfeltet i registeret har noe som ikke er en adresse (et telefonnummer, "
                    "en skrivefeil)."
                )
            ),
        ),
    )
    return Section("metode", w(N_("Slik er tallene regnet")), (Definitions(items),))


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
    gets a .pdf twin."""
    suffix = out.suffix.lower()
    if suffix not in (".html", ".htm", ".pdf"):
        raise ReportError(f"{out}: filen må slutte på .html eller .pdf")
    if not out.parent.is_dir():
        raise ReportError(f"{out}: mappen {out.parent} finnes ikke")
    view = build_view(ev, compare, language)
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
