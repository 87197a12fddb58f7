"""The sections of the evaluation report, each built from an Evaluation in one language.

One function per section, in the order the report reads (the feedback section is
`evaluate_feedback`'s); `evaluate_render.build_view` puts them together. The numbers are
evaluate's; the words and their formatting are Words'.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from varsel.charts import bar_chart, stacked_bars
from varsel.coverage import REACHED, Group, Outcome
from varsel.errors import N_
from varsel.evaluate import Evaluation
from varsel.evaluate_view import (
    Block,
    Definitions,
    Paragraph,
    Section,
    Table,
    figure,
)
from varsel.evaluate_words import Words, campaign_name, capital

TOP_MUNICIPALITIES = 15


def share_row(w: Words, name: str, n: int, whole: int) -> tuple[str, ...]:
    """A table's row: the name, the count, and its share of the whole."""
    return (name, w.num(n), w.share(n, whole))


def reach_section(ev: Evaluation, w: Words) -> Section:
    """Who was reached: every unit once, by its best outcome, and why the rest were not."""
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
        figure(
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
                *(share_row(w, w.outcome(o), cov.outcomes[o], cov.units) for o in Outcome),
                share_row(w, w(N_("Sum")), cov.units, cov.units),
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
                    share_row(w, capital(w.outcome(r)), n, cov.outcomes[Outcome.UNREACHABLE])
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
                    share_row(w, capital(w.outcome(k)), n, cov.outcomes[Outcome.PENDING])
                    for k, n in cov.pending.items()
                ),
            )
        )
    return Section("naadd", w(N_("Hvem ble nådd")), tuple(blocks))


def _alt_outcomes(w: Words, outcomes: Mapping[Outcome, int], whole: int) -> str:
    parts = [f"{w.outcome(o)}: {w.num(n)} ({w.share(n, whole)})" for o, n in outcomes.items() if n]
    return "; ".join(parts) + "."


def funnel_section(ev: Evaluation, w: Words) -> Section:
    """The e-mail funnel, from the units selected to those that gave feedback."""
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
            # Checked offline, never by DNS: the text must not promise that the domain exists.
            w(
                N_(
                    "Riktig form og et domene som kan finnes (ikke reservert som example.com); "
                    "om domenet finnes, er ikke sjekket."
                )
            ),
        ),
        (
            w(N_("Tatt imot av e-posttjenesten")),
            f.accepted,
            w(N_("E-posttjenesten vår tok imot minst én e-post til virksomheten.")),
        ),
        (
            w(N_("Kom i retur")),
            f.bounced,
            w(
                N_(
                    "Alle e-postene til virksomheten kom i retur etterpå. Noen av dem kan ha fått "
                    "brev eller Altinn-melding siden og har da et annet utfall i «Hvem ble nådd»."
                )
            ),
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
            figure(
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


def channels_section(ev: Evaluation, w: Words) -> Section:
    """Letters and Altinn side by side."""
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


def checks_section(ev: Evaluation, w: Words) -> Section:
    """Did recipients check the code before acting (the phishing question)?"""
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
                        "Koden fra e-posten ble sjekket %(email_lookups)s ganger (gjentatte "
                        "sjekker telles hver gang); med kodene fra brev og Altinn og svarene fra "
                        "tilbakemeldingsskjemaet som bærer en kode, ble koder sjekket "
                        "%(lookups)s ganger i alt. Dokumentet ble hentet %(downloads)s ganger "
                        "gjennom nettsiden vår, også av andre enn mottakerne."
                    ),
                    email_lookups=w.num(ch.email_lookups),
                    lookups=w.num(ch.lookups),
                    downloads=w.num(ch.downloads),
                )
            ),
        ),
    )


def groups_section(
    w: Words,
    section_id: str,
    heading: str,
    groups: Sequence[Group],
    what: str,
    name: Callable[[Group], str],
    *,
    top: bool = False,
) -> Section:
    """Outcomes per group; with top, at most TOP_MUNICIPALITIES rows, the last merging the rest."""
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
    chart = figure(
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
            chart,
            Table(heading, head, rows),
        ),
    )


def bounce_section(ev: Evaluation, w: Words) -> Section:
    """Why e-mail bounced or was refused, the delays that are no bounce, and auto-replies."""
    blocks: list[Block] = []
    if not ev.bounces:
        blocks.append(Paragraph(w(N_("Ingen e-post kom i retur eller ble avvist."))))
    else:
        total = sum(b.bounced + b.refused for b in ev.bounces)
        blocks += [
            Paragraph(
                w(
                    N_(
                        "Tallene her er e-poster, ikke virksomheter. «I retur» er e-post som "
                        "mottakerens e-posttjeneste sendte tilbake for godt etter at vår tjeneste "
                        "hadde tatt imot den, eller som mottakeren merket som søppelpost; "
                        "«avvist» er e-post som ble avvist for godt allerede ved sending. Årsaken "
                        "er lest av statuskoden i svaret."
                    )
                )
            ),
            Table(
                w(N_("Årsaker til retur")),
                (
                    w(N_("Årsak")),
                    w(N_("E-poster i retur")),
                    w(N_("E-poster avvist")),
                    w(N_("Andel")),
                ),
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
    delayed = sum(b.bounced for b in ev.delayed)
    if delayed:
        reasons = ", ".join(f"{w(b.label).lower()}: {w.num(b.bounced)}" for b in ev.delayed)
        blocks.append(
            Paragraph(
                w(
                    N_(
                        "Midlertidig avvist, ikke i retur: %(n)s (%(reasons)s). Disse "
                        "e-postene teller ikke med over: de ble levert senere eller står "
                        "fortsatt som sendt."
                    ),
                    n=w.num(delayed),
                    reasons=reasons,
                )
            )
        )
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


def compare_section(a: Evaluation, b: Evaluation, w: Words) -> Section:
    """Campaign a and campaign b side by side."""

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
        return campaign_name(e, w)

    rows = (
        row(w(N_("Valgte virksomheter")), lambda e: w.num(e.coverage.units)),
        row(w(N_("Gyldig e-postadresse")), share(lambda e: e.funnel.valid, units)),
        row(
            w.outcome(Outcome.EMAIL_ACCEPTED),
            share(lambda e: e.coverage.outcomes[Outcome.EMAIL_ACCEPTED], units),
        ),
        # The funnel's loss, of those accepted: not the outcome «E-post i retur» of «Hvem ble
        # nådd», which leaves out those a letter or Altinn reached after the bounce and is a
        # share of the businesses selected. Named so that the two are never taken for one.
        row(
            w(N_("Kom i retur (av dem e-posttjenesten tok imot)")),
            share(lambda e: e.funnel.bounced, lambda e: e.funnel.accepted),
        ),
        row(w(N_("Brev sendt")), share(lambda e: e.letters.sent, units)),
        row(
            w.outcome(Outcome.ALTINN_DELIVERED),
            share(lambda e: e.coverage.outcomes[Outcome.ALTINN_DELIVERED], units),
        ),
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
        (
            Table(w(N_("De to kampanjene side om side")), ("", name(a), name(b)), rows),
            Paragraph(
                w(
                    N_(
                        "Andelene er av de valgte virksomhetene, der ikke noe annet står i "
                        "parentes. Et utfall fra «Hvem ble nådd» har samme navn og betyr det "
                        "samme her."
                    )
                )
            ),
        ),
    )


def method_section(w: Words) -> Section:
    """How the figures are calculated: the definitions."""
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
                    "igjen. En Altinn-melding venter også når den er planlagt, men ikke tatt imot "
                    "av Altinn ennå, og når Altinn har tatt imot den, men ikke publisert den ennå."
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
