from __future__ import annotations

import dataclasses

import pytest

from evaluations import evaluation, group
from varsel.campaign import CampaignStatus
from varsel.coverage import Group, Outcome
from varsel.evaluate import ChannelStats, FeedbackSummary
from varsel.evaluate_words import Words, capital, municipality, summary
from varsel.segment import FOREIGN

NBSP = "\u00a0"


@pytest.mark.parametrize(
    ("language", "num", "share", "decimal"),
    [
        ("nb", f"1{NBSP}234", f"20,4{NBSP}%", "3,7"),
        ("nn", f"1{NBSP}234", f"20,4{NBSP}%", "3,7"),
        ("en", "1,234", "20.4%", "3.7"),
    ],
)
def test_numbers_in_each_language(language: str, num: str, share: str, decimal: str) -> None:
    w = Words(language)
    assert (w.num(1234), w.share(204, 1000), w.decimal(3.6667)) == (num, share, decimal)


@pytest.mark.parametrize(
    ("language", "date", "date_time"),
    [
        ("nb", "3. april 2025", "3. april 2025 kl. 14.05"),
        ("nn", "3. april 2025", "3. april 2025 kl. 14.05"),
        ("en", "3 April 2025", "3 April 2025, 14:05"),
    ],
)
def test_dates_in_each_language(language: str, date: str, date_time: str) -> None:
    w = Words(language)
    assert w.date("2025-04-03T12:05:00Z") == date
    assert w.date_time("2025-04-03T12:05:00Z") == date_time  # Oslo's summer time, UTC+2


def test_the_time_of_day_is_oslos_in_winter_too() -> None:
    # UTC+1 in January: half past eleven in the evening UTC is the next day in Oslo.
    assert Words("nb").date_time("2025-01-15T23:30:00Z") == "16. januar 2025 kl. 00.30"
    assert Words("en").date_time("2025-01-15T23:30:00+00:00") == "16 January 2025, 00:30"
    # The date alone is Oslo's day too, and a date without a time is taken as it is.
    assert Words("nb").date("2025-01-15T23:30:00Z") == "16. januar 2025"
    assert Words("nb").date("2025-03-30T22:30:00Z") == "31. mars 2025"
    assert Words("en").date("2025-01-15") == "15 January 2025"


@pytest.mark.parametrize(
    ("language", "items", "joined"),
    [
        ("nb", ["Oslo"], "Oslo"),
        ("nb", ["Oslo", "Bærum"], "Oslo og Bærum"),
        ("nb", ["Oslo", "Bærum", "Asker"], "Oslo, Bærum og Asker"),
        ("en", ["Oslo", "Bærum", "Asker"], "Oslo, Bærum and Asker"),
    ],
)
def test_joined(language: str, items: list[str], joined: str) -> None:
    assert Words(language).joined(items) == joined


def test_outcomes_are_named_in_the_language() -> None:
    assert Words("nb").outcome(Outcome.EMAIL_ACCEPTED) == "E-post levert"
    names = Words("en").outcomes()
    assert list(names) == list(Outcome)
    assert names[Outcome.EMAIL_ACCEPTED] == "E-mail delivered"


def test_capital_upper_cases_the_first_letter_only() -> None:
    assert capital("ingen e-post i registeret") == "Ingen e-post i registeret"
    assert capital("") == ""


def test_a_municipality_keeps_its_name_and_abroad_is_translated() -> None:
    oslo, abroad = group("0301", "Oslo", 10, 5), group(FOREIGN, "Utlandet", 2, 1)
    assert [municipality(g, Words("en")) for g in (oslo, abroad)] == ["Oslo", "Abroad"]
    assert municipality(abroad, Words("nn")) == "Utlandet"


def test_the_summary_in_bokmal() -> None:
    assert summary(evaluation(), Words("nb")) == (
        f"Kampanjen «Sikkerhetsråd» gikk til 1{NBSP}200 virksomheter i Oslo og Bærum. "
        f"960 av dem (80,0{NBSP}%) hadde en brukbar e-postadresse i Enhetsregisteret. "
        "E-posten ble levert til 900 av dem, mens 40 kom i retur. "
        "40 fikk brev i posten og 20 ble nådd gjennom Altinn. "
        f"Til sammen er 960 (80,0{NBSP}%) nådd, og 240 (20,0{NBSP}%) er ikke nådd. "
        f"90 av dem som fikk e-posten (10,0{NBSP}%) sjekket kontrollkoden på nettsiden vår for "
        "å se at e-posten var ekte. 25 ga tilbakemelding; i snitt vurderte de nytten til 4,0 "
        "av 5."
    )


def test_the_summary_in_english() -> None:
    assert summary(evaluation(), Words("en")) == (
        "The campaign “Sikkerhetsråd” went to 1,200 businesses in Oslo and Bærum. "
        "960 of them (80.0%) had a usable e-mail address in the Central Coordinating Register "
        "for Legal Entities. The e-mail was delivered to 900 of them, while 40 bounced. "
        "40 received a letter by post, and Altinn reached 20. "
        "In all, the campaign has reached 960 (80.0%) and has not reached 240 (20.0%). "
        "90 of those who received the e-mail (10.0%) checked the verification code on our "
        "website to see that the e-mail was genuine. 25 gave feedback; on average they rated "
        "its usefulness 4.0 out of 5."
    )


MANY = tuple(group(f"{i:04}", f"Kommune {i}", 10, 5) for i in range(5))


@pytest.mark.parametrize(
    ("groups", "area"),
    [
        (MANY, "i 5 kommuner."),
        (MANY[:4], "i Kommune 0, Kommune 1, Kommune 2 og Kommune 3."),
        ((), "i ingen kommuner."),
    ],
)
def test_the_summary_names_up_to_four_municipalities(groups: tuple[Group, ...], area: str) -> None:
    ev = evaluation()
    ev = dataclasses.replace(ev, coverage=dataclasses.replace(ev.coverage, by_municipality=groups))
    assert area in summary(ev, Words("nb"))


def test_the_summary_leaves_out_what_did_not_happen() -> None:
    ev = evaluation()
    nothing = ChannelStats(units=0, sent=0, arrived=0, failed=0, verified=0)
    quiet = evaluation(
        funnel=dataclasses.replace(ev.funnel, bounced=0),
        altinn=nothing,
        checks=dataclasses.replace(ev.checks, delivered=0),
        feedback=FeedbackSummary(0, {}, 0, 0, {}, 0, ()),
    )
    text = summary(quiet, Words("nb"))
    assert "E-posten ble levert til 900 av dem. 40 fikk brev i posten. Til sammen" in text
    assert "kontrollkoden" not in text
    assert text.endswith("er ikke nådd. Ingen har gitt tilbakemelding ennå.")


def test_the_summary_names_what_is_on_the_way_and_answers_without_a_score() -> None:
    ev = evaluation()
    pending = dict(ev.coverage.outcomes) | {Outcome.PENDING: 30, Outcome.UNREACHABLE: 170}
    unscored = dataclasses.replace(ev.feedback, scores={})
    text = summary(
        evaluation(
            letters=ChannelStats(units=0, sent=0, arrived=0, failed=0, verified=0),
            coverage=dataclasses.replace(ev.coverage, outcomes=pending),
            feedback=unscored,
        ),
        Words("nb"),
    )
    assert (
        "E-posten ble levert til 900 av dem, mens 40 kom i retur. 20 ble nådd gjennom Altinn."
        in text
    )
    assert (
        f"Til sammen er 960 (80,0{NBSP}%) nådd, 30 er på vei, og 210 (17,5{NBSP}%) er ikke nådd."
        in text
    )
    assert text.endswith(" 25 ga tilbakemelding.")


def test_the_summary_counts_letters_that_arrived_and_names_those_not_yet_posted() -> None:
    ev = evaluation()
    # 50 letters made: 37 posted and arrived, 5 returned, 8 made but not posted yet.
    letters = ChannelStats(units=50, sent=50, arrived=37, failed=5, verified=3, pending=8)
    text = summary(dataclasses.replace(ev, letters=letters), Words("nb"))
    assert "37 fikk brev i posten og 20 ble nådd gjennom Altinn. " in text
    assert "8 har fått brevet laget, men det er ikke postlagt ennå. " in text
    nynorsk = summary(dataclasses.replace(ev, letters=letters), Words("nn"))
    assert "8 har fått brevet laga, men det er ikkje postlagt enno. " in nynorsk
    # None waiting: nothing said about it.
    assert "postlagt ennå" not in summary(ev, Words("nb"))


@pytest.mark.parametrize(
    ("language", "text"),
    [
        (
            "nb",
            "Kampanjen «Sikkerhetsråd» valgte ingen virksomheter: utvalget var tomt da kampanjen "
            "ble laget, så ingen ble kontaktet.",
        ),
        (
            "nn",
            "Kampanjen «Sikkerhetsråd» valde ingen verksemder: utvalet var tomt då kampanjen "
            "vart laga, så ingen vart kontakta.",
        ),
        (
            "en",
            "The campaign “Sikkerhetsråd” selected no businesses: the selection was empty when "
            "the campaign was made, so no one was contacted.",
        ),
    ],
)
def test_a_campaign_that_selected_no_one_says_so(language: str, text: str) -> None:
    # Not «0 av dem (–) hadde en brukbar e-postadresse …» and the rest of it.
    ev = evaluation()
    nothing = dataclasses.replace(
        ev.coverage,
        units=0,
        outcomes=dict.fromkeys(Outcome, 0),
        by_municipality=(),
        by_size=(),
    )
    empty = evaluation(
        coverage=nothing,
        funnel=dataclasses.replace(ev.funnel, selected=0, on_record=0, valid=0, accepted=0),
    )
    assert summary(empty, Words(language)) == text


@pytest.mark.parametrize(
    ("language", "one", "two"),
    [
        ("nb", "gikk til 1 virksomhet i Oslo.", "gikk til 2 virksomheter i Oslo."),
        ("nn", "gjekk til 1 verksemd i Oslo.", "gjekk til 2 verksemder i Oslo."),
        ("en", "went to 1 business in Oslo.", "went to 2 businesses in Oslo."),
    ],
)
def test_the_summary_says_one_business_in_the_singular(language: str, one: str, two: str) -> None:
    ev = evaluation()
    for n, text in ((1, one), (2, two)):
        cov = dataclasses.replace(
            ev.coverage, units=n, by_municipality=(group("0301", "Oslo", n, n),)
        )
        assert text in summary(evaluation(coverage=cov), Words(language)).split(". ")[0] + "."


@pytest.mark.parametrize(
    ("language", "text"),
    [
        (
            "nb",
            "Kampanjen ble avbrutt før alt var sendt: det som ikke var sendt da, ble aldri sendt.",
        ),
        (
            "nn",
            "Kampanjen vart avbroten før alt var sendt: det som ikkje var sendt då, vart aldri "
            "sendt.",
        ),
        (
            "en",
            "The campaign was cancelled before everything had been sent: what had not been sent "
            "by then was never sent.",
        ),
    ],
)
def test_the_summary_of_a_cancelled_campaign_says_it_was_cancelled(
    language: str, text: str
) -> None:
    ev = evaluation()
    cancelled = evaluation(
        campaign=dataclasses.replace(ev.campaign, status=CampaignStatus.CANCELLED)
    )
    sentences = summary(cancelled, Words(language)).split(". ")
    assert sentences[1] + "." == text
    assert text not in summary(ev, Words(language))


def test_the_english_summary_needs_no_verb_to_agree_with_a_number() -> None:
    # «1 were reached through Altinn», «1 have been reached», «1 answers.»: the English
    # sentences put the numbers where no verb has to agree with them.
    ev = evaluation(
        coverage=dataclasses.replace(
            evaluation().coverage,
            outcomes=dict.fromkeys(Outcome, 0) | {Outcome.ALTINN_DELIVERED: 1},
            units=1,
        ),
        letters=ChannelStats(units=0, sent=0, arrived=0, failed=0, verified=0),
        altinn=ChannelStats(units=1, sent=1, arrived=1, failed=0, verified=0),
    )
    text = summary(ev, Words("en"))
    assert "Altinn reached 1." in text
    assert "In all, the campaign has reached 1 (100.0%) and has not reached 0 (0.0%)." in text
    for wrong in ("1 were", "1 have", "1 are"):
        assert wrong not in text


def test_a_campaign_without_usable_e_mail_tells_of_no_e_mail_delivered() -> None:
    # Only letters: «E-posten ble levert til 0 av dem» spoke of an e-mail never sent.
    ev = evaluation()
    letters_only = evaluation(
        funnel=dataclasses.replace(ev.funnel, on_record=0, valid=0, accepted=0, bounced=0),
        coverage=dataclasses.replace(
            ev.coverage,
            outcomes=dict.fromkeys(Outcome, 0) | {Outcome.LETTER_POSTED: 1200},
        ),
        altinn=ChannelStats(units=0, sent=0, arrived=0, failed=0, verified=0),
    )
    text = summary(letters_only, Words("nb"))
    assert (
        "0 av dem (0,0\u00a0%) hadde en brukbar e-postadresse i Enhetsregisteret. 40 fikk" in text
    )
    assert "E-posten" not in text
