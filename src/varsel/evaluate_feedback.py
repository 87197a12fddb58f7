"""The evaluation report's feedback section: what recipients answered and what they thought.

The feedback form's answers (usefulness, relevance, the channel preferred next time, the
comments) beside what else recipients did in answer: downloads, unsubscribes, automatic
replies. The other sections are in `evaluate_sections`.
"""

from __future__ import annotations

from typing import Any

from varsel.charts import bar_chart
from varsel.errors import N_
from varsel.evaluate import Evaluation
from varsel.evaluate_sections import share_row
from varsel.evaluate_view import Block, Comments, Paragraph, Section, Table, figure
from varsel.evaluate_words import Words

_CHANNEL_NAMES = {
    "epost": N_("E-post"),
    "brev": N_("Brev"),
    "altinn": N_("Altinn"),
    "sms": N_("SMS"),
}
_LANGUAGE_NAMES = {"nb": N_("bokmål"), "nn": N_("nynorsk"), "en": N_("engelsk")}


def _responses(ev: Evaluation, w: Words) -> Table:
    """What recipients did in answer, each with what it counts: businesses or e-mails."""
    un = ev.unsubscribes
    unsubscribed = w.num(un.emails)
    if un.address or un.organisation:
        unsubscribed = w(
            N_("%(n)s (adressen: %(address)s, virksomhetene: %(units)s, med ett klikk: %(one)s)"),
            n=unsubscribed,
            address=w.num(un.address),
            units=w.num(un.organisation),
            one=w.num(un.one_click),
        )
    return Table(
        w(N_("Svar fra mottakerne")),
        (w(N_("Hva")), w(N_("Antall")), w(N_("Telt i"))),
        (
            (w(N_("Tilbakemeldinger")), w.num(ev.feedback.answers), w(N_("svar"))),
            (
                w(N_("Lastet ned dokumentet")),
                w.num(ev.checks.downloaded),
                w(N_("virksomheter")),
            ),
            (w(N_("Avmeldte seg")), unsubscribed, w(N_("e-poster"))),
            (w(N_("Automatiske svar (fravær og lignende)")), w.num(ev.auto_replies), w(N_("svar"))),
            (
                w(N_("Midlertidig avvist, ikke i retur")),
                w.num(sum(b.bounced for b in ev.delayed)),
                w(N_("e-poster")),
            ),
        ),
    )


def feedback_section(ev: Evaluation, w: Words) -> Section:
    """The feedback form's answers: scores, relevance, preferred channel, comments."""
    fb = ev.feedback
    heading = w(N_("Tilbakemeldinger"))
    if not fb.answers:
        return Section(
            "tilbakemelding", heading, (Paragraph(w(N_("Ingen svar ennå."))), _responses(ev, w))
        )
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
        _responses(ev, w),
        figure(
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
                share_row(w, w(_CHANNEL_NAMES[k]) if k in _CHANNEL_NAMES else k, n, fb.answers)
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
