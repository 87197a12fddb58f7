from __future__ import annotations

import dataclasses

from evaluations import evaluation, group
from varsel.coverage import Outcome
from varsel.evaluate import BounceReason
from varsel.evaluate_sections import (
    TOP_MUNICIPALITIES,
    bounce_section,
    channels_section,
    checks_section,
    compare_section,
    funnel_section,
    groups_section,
    method_section,
    reach_section,
)
from varsel.evaluate_view import Definitions, Figure, Paragraph, Table
from varsel.evaluate_words import Words

NBSP = "\u00a0"


def table(block: object) -> Table:
    assert isinstance(block, Table)
    return block


def paragraph(block: object) -> str:
    assert isinstance(block, Paragraph)
    return block.text


def test_reach_counts_every_outcome_and_only_the_reasons_that_occur() -> None:
    section = reach_section(evaluation(), Words("nb"))
    assert section.id == "naadd"
    outcomes = table(section.blocks[2])
    assert len(outcomes.rows) == len(Outcome) + 1
    assert outcomes.rows[1] == ("E-post levert", "900", f"75,0{NBSP}%")
    assert outcomes.rows[-1] == ("Sum", f"1{NBSP}200", f"100,0{NBSP}%")
    reasons = table(section.blocks[3])
    assert reasons.rows == (
        ("Ingen e-post; brev er ikke laget", "150", f"75,0{NBSP}%"),
        ("Verken e-post eller postadresse", "50", f"25,0{NBSP}%"),
    )
    assert len(section.blocks) == 4  # nothing waits in the outbox: no table of pending states


def municipalities(n: int) -> tuple[Table, Figure]:
    groups = tuple(group(f"{i:04}", f"Kommune {i}", 10, 4) for i in range(n))
    w = Words("nb")
    section = groups_section(w, "kommuner", "Utfall", groups, "Kommune", lambda g: g.name, top=True)
    chart = section.blocks[1]
    assert isinstance(chart, Figure)
    return table(section.blocks[2]), chart


def test_municipalities_beyond_the_top_are_merged_into_one_row() -> None:
    rows, chart = municipalities(TOP_MUNICIPALITIES + 5)
    assert len(rows.rows) == TOP_MUNICIPALITIES
    assert rows.rows[-2][0] == f"Kommune {TOP_MUNICIPALITIES - 2}"
    merged = rows.rows[-1]
    assert merged[:2] == ("6 andre kommuner", "60")  # 6 groups of 10 units
    assert merged[2 + list(Outcome).index(Outcome.EMAIL_ACCEPTED)] == "24"  # 4 reached in each
    assert merged[-1] == f"40,0{NBSP}%"
    assert "6 andre kommuner: 40,0" in chart.alt


def test_as_many_municipalities_as_the_top_are_all_shown() -> None:
    rows, _ = municipalities(TOP_MUNICIPALITIES)
    assert [r[0] for r in rows.rows] == [f"Kommune {i}" for i in range(TOP_MUNICIPALITIES)]


def test_bounces_by_reason_and_the_automatic_replies() -> None:
    bounces = (
        BounceReason("mailbox", "Mottakeradressen finnes ikke", 30, 10),
        BounceReason("full", "Innboksen er full", 10, 0),
    )
    section = bounce_section(evaluation(bounces=bounces, auto_replies=3), Words("nb"))
    assert table(section.blocks[1]).rows == (
        ("Mottakeradressen finnes ikke", "30", "10", f"80,0{NBSP}%"),
        ("Innboksen er full", "10", "0", f"20,0{NBSP}%"),
    )
    assert paragraph(section.blocks[2]).startswith("I tillegg kom 3 automatiske svar")


def test_no_bounces_is_one_line() -> None:
    section = bounce_section(evaluation(), Words("nb"))
    assert [paragraph(b) for b in section.blocks] == ["Ingen e-post kom i retur eller ble avvist."]


def test_a_campaign_without_letters_or_altinn_says_so() -> None:
    ev = evaluation()
    none = evaluation(
        letters=dataclasses.replace(ev.letters, units=0),
        altinn=dataclasses.replace(ev.altinn, units=0),
    )
    words = "Denne kampanjen har ikke brukt brev eller Altinn."
    assert paragraph(channels_section(none, Words("nb")).blocks[0]).endswith(words)
    assert words not in paragraph(channels_section(ev, Words("nb")).blocks[0])


def test_the_code_checks_in_english() -> None:
    section = checks_section(evaluation(), Words("en"))
    assert "trust an e-mail from Asker kommune" in paragraph(section.blocks[0])
    assert table(section.blocks[1]).rows[1] == (
        "Checked the code before downloading the document",
        "60",
        "120",
        "50.0%",
    )


def test_compare_puts_two_campaigns_side_by_side() -> None:
    ev = evaluation()
    other = evaluation(
        campaign=dataclasses.replace(ev.campaign, id=8, name="Neste runde"),
        funnel=dataclasses.replace(ev.funnel, valid=600),
        feedback=dataclasses.replace(ev.feedback, scores={}),
    )
    section = compare_section(ev, other, Words("en"))
    assert section.heading == "Compared with campaign 8"
    rows = table(section.blocks[0])
    assert rows.head == ("", "7 “Sikkerhetsråd”", "8 “Neste runde”")
    assert rows.rows[1] == ("Valid e-mail address", "960 (80.0%)", "600 (50.0%)")
    assert rows.rows[-1] == ("Average usefulness (1–5)", "4.0", "–")  # no scores: no mean


def test_the_method_defines_every_term() -> None:
    section = method_section(Words("nn"))
    (definitions,) = section.blocks
    assert isinstance(definitions, Definitions)
    assert section.heading == "Slik er tala rekna ut"
    assert len(definitions.items) == 7
    assert all(term and meaning for term, meaning in definitions.items)


def test_the_funnel_says_a_valid_address_is_checked_without_dns() -> None:
    valid = {
        lang: next(
            r[3]
            for r in table(funnel_section(evaluation(), Words(lang)).blocks[2]).rows
            if r[1] == "960"
        )
        for lang in ("nb", "nn", "en")
    }
    assert valid == {
        "nb": "Riktig form og et domene som kan finnes (ikke reservert som example.com); "
        "om domenet finnes, er ikke sjekket.",
        "nn": "Rett form og eit domene som kan finnast (ikkje reservert som example.com); "
        "om domenet finst, er ikkje sjekka.",
        "en": "Correct form and a domain that could exist (not a reserved one such as "
        "example.com); whether the domain exists is not checked.",
    }


def test_delays_are_told_apart_from_returns_in_english() -> None:
    bounces = (BounceReason("mailbox", "Mottakeradressen finnes ikke", 3, 0),)
    delayed = (BounceReason("full", "Innboksen er full", 2, 0),)
    section = bounce_section(evaluation(bounces=bounces, delayed=delayed), Words("en"))
    assert table(section.blocks[1]).head == (
        "Reason",
        "E-mails returned",
        "E-mails refused",
        "Share",
    )
    assert paragraph(section.blocks[2]) == (
        "Refused for a while, not returned: 2 (the mailbox is full: 2). These e-mails are not "
        "counted above: they were delivered later or still count as sent."
    )
