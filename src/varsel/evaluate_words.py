"""The evaluation report's words in one language, and its summary paragraph.

Every text comes from the message catalogs (Bokmål, Nynorsk or English), every number and date
is formatted for the language; the summary tells a reader who has not seen the campaign what
happened, in a few sentences written once for all three languages.
"""

from __future__ import annotations

from collections.abc import Sequence

from varsel.campaign import CampaignStatus
from varsel.coverage import Group, Outcome, label
from varsel.errors import N_
from varsel.evaluate import Evaluation
from varsel.i18n import fmt_decimal, fmt_int, fmt_share
from varsel.segment import FOREIGN

LANGUAGES = ("nb", "nn", "en")
# A message with plural forms (msgid and msgid_plural in the catalogs): not N_, which marks one
# id; test_evaluate_words checks every language's forms.
_WENT_TO = (
    "Kampanjen «%(name)s» gikk til %(units)s virksomhet i %(area)s.",
    "Kampanjen «%(name)s» gikk til %(units)s virksomheter i %(area)s.",
)


class Words:
    """The report's texts in one language: catalog look-ups, numbers and dates."""

    def __init__(self, language: str) -> None:
        # Imported here: varsel.web's console imports this module while it loads.
        from varsel.web.templating import date_time, day, gettext, ngettext

        self.language = language
        self._gettext = gettext
        self._ngettext = ngettext
        self._day = day
        self._date_time = date_time

    def __call__(self, msgid: str, /, **values: str) -> str:
        """The message in the language, its values filled in (a literal % is written %%)."""
        return self._gettext(self.language, msgid) % values

    def plural(self, singular: str, plural: str, n: int, /, **values: str) -> str:
        """The form of the message for n («1 virksomhet», «2 virksomheter»), values filled in."""
        return self._ngettext(self.language, singular, plural, n) % values

    def num(self, n: int) -> str:
        return fmt_int(n, self.language)

    def share(self, part: int, whole: int) -> str:
        return fmt_share(part, whole, self.language)

    def decimal(self, x: float) -> str:
        return fmt_decimal(x, self.language)

    def date(self, iso: str) -> str:
        """The day in Oslo, as the pages and the console write it."""
        return self._day(self.language, iso)

    def date_time(self, iso: str) -> str:
        """Oslo's time, as the pages and the console write it."""
        return self._date_time(self.language, iso)

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


def capital(text: str) -> str:
    """The text with its first letter upper-case, the rest as it is."""
    return text[:1].upper() + text[1:]


def campaign_name(ev: Evaluation, w: Words) -> str:
    return w(N_("%(id)s «%(name)s»"), id=str(ev.campaign.id), name=ev.campaign.name)


def _area(ev: Evaluation, w: Words) -> str:
    """The municipalities, named: 'Oslo, Bærum og Asker', or 'N kommuner'."""
    names = [municipality(g, w) for g in ev.coverage.by_municipality]
    if not names:
        return w(N_("ingen kommuner"))
    if len(names) > 4:
        return w(N_("%(n)s kommuner"), n=w.num(len(names)))
    return w.joined(names)


def municipality(g: Group, w: Words) -> str:
    """A municipality's own name; the group of foreign addresses in the language."""
    return w(N_("Utlandet")) if g.key == FOREIGN else g.name


def summary(ev: Evaluation, w: Words) -> str:
    """One paragraph for a reader who has not seen the campaign."""
    c, f, ch = ev.coverage, ev.funnel, ev.checks
    if not c.units:
        # «0 av dem (–) hadde …» and the rest would read as a broken report: say what happened.
        return w(
            N_(
                "Kampanjen «%(name)s» valgte ingen virksomheter: utvalget var tomt da kampanjen "
                "ble laget, så ingen ble kontaktet."
            ),
            name=ev.campaign.name,
        )
    o = c.outcomes
    parts = [
        w.plural(
            *_WENT_TO,
            c.units,
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
    if ev.campaign.status is CampaignStatus.CANCELLED:
        # Otherwise the report of a stopped campaign reads as that of one sent in full.
        parts.insert(
            1,
            w(
                N_(
                    "Kampanjen ble avbrutt før alt var sendt: det som ikke var sendt da, ble "
                    "aldri sendt."
                )
            ),
        )
    delivered = w.num(o[Outcome.EMAIL_ACCEPTED])
    if f.bounced:
        parts.append(
            w(
                N_("E-posten ble levert til %(delivered)s av dem, mens %(bounced)s kom i retur."),
                delivered=delivered,
                bounced=w.num(f.bounced),
            )
        )
    elif f.valid or f.accepted:
        # Without a usable address no e-mail went out (letters or Altinn only): «E-posten ble
        # levert til 0 av dem» would speak of an e-mail never sent.
        parts.append(w(N_("E-posten ble levert til %(delivered)s av dem."), delivered=delivered))
    # Letters that arrived: posted and not returned, as Altinn counts the delivered ones.
    letters, altinn = w.num(ev.letters.arrived), w.num(ev.altinn.arrived)
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
    if ev.letters.pending:
        parts.append(
            w(
                N_("%(pending)s har fått brevet laget, men det er ikke postlagt ennå."),
                pending=w.num(ev.letters.pending),
            )
        )
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
