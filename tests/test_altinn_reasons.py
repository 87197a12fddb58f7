"""Why an Altinn delivery failed, in words: the stored reason (Altinn's own) said in Bokmål, and
in Nynorsk and English where the console shows it."""

from __future__ import annotations

import pytest

from varsel.altinn_client import failure_text
from varsel.web.console_auth import translate

RESERVED_REFUSAL = (
    "HTTP 422 CORR-1030: Recipient 974760673 has reserved themselves from public "
    "correspondences. Can be overridden using the 'IgnoreReservation' flag"
)


@pytest.mark.parametrize(
    ("stored", "said"),
    [
        (
            RESERVED_REFUSAL,
            "Altinn avviste meldingen: virksomheten har reservert seg mot digitale meldinger. "
            "Altinns svar (HTTP 422, CORR-1030): Recipient 974760673 has reserved themselves "
            "from public correspondences. Can be overridden using the 'IgnoreReservation' flag",
        ),
        (
            "HTTP 400 CORR-1029: Could not find partyId for the following recipients: 0192:x",
            "Altinn avviste meldingen: virksomheten finnes ikke i Altinns register. Altinns svar "
            "(HTTP 400, CORR-1029): Could not find partyId for the following recipients: 0192:x",
        ),
        (
            "HTTP 400 CORR-1002: Bad request",
            "Altinn avviste meldingen. Altinns svar (HTTP 400, CORR-1002): Bad request",
        ),
        (
            "HTTP 403: Forbidden",
            "Altinn avviste meldingen. Altinns svar (HTTP 403): Forbidden",
        ),
        (
            "Failed: Recipient organization is bankrupt or deleted",
            "Altinn kunne ikke publisere meldingen. Altinns forklaring: Recipient organization "
            "is bankrupt or deleted",
        ),
        ("Failed", "Altinn kunne ikke publisere meldingen (status Failed)"),
        ("Failed: finnes ikke i Altinn", "Altinn finner ikke meldingen (svarte 404)"),
        ("Reserved", "Virksomheten har reservert seg mot digitale meldinger (status Reserved)"),
        (
            "PurgedByAltinn",
            "Meldingen ble slettet i Altinn før den ble publisert (status PurgedByAltinn)",
        ),
        # Nothing varsel writes: shown as it is stored.
        ("noe annet", "noe annet"),
        ("", ""),
    ],
)
def test_a_stored_reason_is_said_in_bokmaal_with_altinns_own_words(stored: str, said: str) -> None:
    assert failure_text(stored) == said


def test_the_console_says_a_refusal_in_nynorsk_and_english_with_altinns_words_as_they_are() -> None:
    reason = failure_text(RESERVED_REFUSAL)

    assert translate("nn", reason) == (
        "Altinn avviste meldinga: verksemda har reservert seg mot digitale meldingar. Svaret frå "
        "Altinn (HTTP 422, CORR-1030): Recipient 974760673 has reserved themselves from public "
        "correspondences. Can be overridden using the 'IgnoreReservation' flag"
    )
    assert translate("en", reason) == (
        "Altinn refused the message: the business has opted out of digital messages. Altinn’s "
        "answer (HTTP 422, CORR-1030): Recipient 974760673 has reserved themselves from public "
        "correspondences. Can be overridden using the 'IgnoreReservation' flag"
    )


def test_the_console_says_a_status_in_nynorsk_and_english() -> None:
    assert translate("nn", failure_text("Failed: Recipient is bankrupt")) == (
        "Altinn kunne ikkje publisere meldinga. Forklaringa frå Altinn: Recipient is bankrupt"
    )
    assert translate("en", failure_text("Reserved")) == (
        "The business has opted out of digital messages (status Reserved)"
    )
    assert translate("en", failure_text("Failed: finnes ikke i Altinn")) == (
        "Altinn cannot find the message (answered 404)"
    )
