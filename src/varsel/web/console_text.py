"""Names the console shows for the library's states and parts, marked for translation.

The library's own words are Bokmål for the command line; the console shows these message
ids instead, so that the Nynorsk and English pages name things in their own language.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from babel.dates import get_day_names

from varsel.campaign import CampaignStatus
from varsel.campaign_spec import Limits
from varsel.coverage import LABELS, Outcome
from varsel.send_window import WINDOW_DAYS, window_opens
from varsel.suppression import REASON_LABELS, SuppressionKind
from varsel.web.templating import N_, clock, date_time, gettext

STATUS_NAMES = {
    CampaignStatus.READY: N_("Klar"),
    CampaignStatus.SENDING: N_("Sendes"),
    CampaignStatus.PAUSED: N_("Pauset"),
    CampaignStatus.CANCELLED: N_("Avbrutt"),
    CampaignStatus.DONE: N_("Ferdig"),
}

# The e-mail deliveries' states the progress panel shows, in its order.
STATE_NAMES = {
    "sent": N_("Sendt"),
    "deferred": N_("Utsatt"),
    "failed": N_("Feilet"),
    "in_doubt": N_("Usikre"),
    "suppressed": N_("Sperret"),
    "queued": N_("I kø"),
    "claimed": N_("Under sending"),
    "cancelled": N_("Kansellert"),
    "bounced": N_("I retur"),
}

# approval.PARTS in the console's words.
PART_NAMES = {
    "templates": N_("Malene"),
    "sender": N_("Avsenderen"),
    "document": N_("Dokumentet"),
    "links": N_("Lenkereglene"),
    "selection": N_("Utvalget"),
    "other": N_("Andre felt i definisjonen"),
    "recipients": N_("Mottakerlisten"),
    "deliveries": N_("Leveranselisten"),
}

REACH_NAMES = {
    "email": N_("Brukbar e-post"),
    "phone_only": N_("Bare telefon"),
    "postal_only": N_("Bare postadresse"),
}

# The outcomes in coverage's words (the CLI's table), translated by the console's pages.
OUTCOME_NAMES = {outcome: LABELS[outcome] for outcome in Outcome}

CHANNEL_NAMES = {
    "epost": N_("E-post"),
    "brev": N_("Brev"),
    "altinn": N_("Altinn"),
    "sms": N_("SMS"),
}

EMPLOYEE_RULE_NAMES = {
    "auto": N_("Automatisk (anbefalt)"),
    "registered": N_("Registrerte ansatte (≥1)"),
    "exact": N_("Oppgitt antall (bare 5 eller flere kan avgjøres)"),
}

# The suppression list's reasons: the command line's words, translated where shown.
REASON_NAMES = REASON_LABELS

SUPPRESSION_KIND_NAMES = {
    SuppressionKind.ADDRESS: N_("Adresse"),
    SuppressionKind.UNIT: N_("Virksomhet"),
}


# -- the send window ---------------------------------------------------------------------


@dataclass(frozen=True)
class WindowWords:
    """A campaign's send window as the page says it, and when it next opens if shut now."""

    days: str  # "mandag–fredag", "lørdag, søndag", "alle dager"
    hours: str  # "08.00–16.00" (08:00–16:00 in English)
    zone: str
    opens: str | None  # "30. november 2026 kl. 08.00" (Oslo's clock), None while open


def send_window(
    limits: Limits, language: str, now: dt.datetime | None = None
) -> WindowWords | None:
    """The campaign's send window in the page's language; None for a campaign without one."""
    if not limits.has_window:
        return None
    names = get_day_names("wide", locale=language)  # 0 is Monday, as in WINDOW_DAYS
    picked = sorted(WINDOW_DAYS.index(d) for d in limits.window_days) or list(range(7))
    if len(picked) == len(WINDOW_DAYS):
        days = gettext(language, "alle dager")
    elif len(picked) >= 3 and picked == list(range(picked[0], picked[-1] + 1)):
        days = f"{names[picked[0]]}–{names[picked[-1]]}"
    else:
        days = ", ".join(names[i] for i in picked)
    start, end = limits.window_start or "00:00", limits.window_end or "23:59"
    hours = "–".join(clock(language, int(t[:2]), int(t[3:])) for t in (start, end))
    at = now or dt.datetime.now(dt.UTC)
    opens = window_opens(limits, at)
    when = date_time(language, opens.astimezone(dt.UTC).isoformat()) if opens > at else None
    return WindowWords(days, hours, limits.timezone, when)
