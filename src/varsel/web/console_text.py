"""Names the console shows for the library's states and parts, marked for translation.

The library's own words are Bokmål for the command line; the console shows these message
ids instead, so that the Nynorsk and English pages name things in their own language.
"""

from __future__ import annotations

from varsel.campaign import CampaignStatus
from varsel.coverage import LABELS, Outcome
from varsel.suppression import REASON_LABELS, SuppressionKind
from varsel.web.templating import N_

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
