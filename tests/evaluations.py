"""Small evaluations written out by hand, for the report's words and sections without a store.

The numbers are chosen to be easy to check, not to come from one consistent campaign; the
store-backed scenario in test_evaluate.py checks that evaluate counts them right.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from varsel.campaign import Campaign, CampaignStatus
from varsel.campaign_spec import CampaignSpec
from varsel.coverage import Coverage, Group, Outcome, Reason
from varsel.evaluate import (
    ChannelStats,
    CodeChecks,
    Comment,
    Evaluation,
    FeedbackSummary,
    Funnel,
)
from varsel.segment_criteria import Criteria


def group(key: str, name: str, units: int, reached: int) -> Group:
    """A group whose units are e-mailed (reached) or unreachable (the rest)."""
    outcomes = {Outcome.EMAIL_ACCEPTED: reached, Outcome.UNREACHABLE: units - reached}
    return Group(key, name, units, outcomes)


def evaluation(**changes: Any) -> Evaluation:
    """Campaign 7 «Sikkerhetsråd» to 1,200 units in Oslo and Bærum; changes replace fields."""
    spec = CampaignSpec(
        name="Sikkerhetsråd",
        from_address="varsel@asker.kommune.no",
        from_name="Asker kommune",
        organisation="Asker kommune",
        reply_to=None,
        document_title="Råd om digital sikkerhet",
        document_url="https://asker.kommune.no/rad.pdf",
        public_base_url="https://varsel.asker.kommune.no",
        criteria=Criteria(),
        templates={},
    )
    campaign = Campaign(
        7, "Sikkerhetsråd", CampaignStatus.DONE, spec, 1, "2025-03-30T22:30:00Z", "ola"
    )
    outcomes = dict.fromkeys(Outcome, 0) | {
        Outcome.EMAIL_ACCEPTED: 900,
        Outcome.LETTER_POSTED: 40,
        Outcome.ALTINN_DELIVERED: 20,
        Outcome.EMAIL_BOUNCED: 40,
        Outcome.UNREACHABLE: 200,
    }
    coverage = Coverage(
        campaign_id=7,
        campaign_name="Sikkerhetsråd",
        units=1200,
        outcomes=outcomes,
        unreachable=dict.fromkeys(Reason, 0) | {Reason.NO_EMAIL: 150, Reason.NO_ADDRESS: 50},
        pending={},
        by_municipality=(group("0301", "Oslo", 1000, 800), group("3201", "Bærum", 200, 160)),
        by_size=(group("5-9", "5–9 ansatte", 1200, 960),),
        by_section=(),
        by_form=(),
    )
    base = Evaluation(
        campaign=campaign,
        coverage=coverage,
        funnel=Funnel(
            selected=1200,
            on_record=1000,
            valid=960,
            accepted=940,
            bounced=40,
            verified=90,
            downloaded=120,
            feedback=25,
        ),
        letters=ChannelStats(units=50, sent=45, arrived=40, failed=5, verified=3),
        altinn=ChannelStats(units=25, sent=25, arrived=20, failed=5, verified=1),
        checks=CodeChecks(
            delivered=900,
            verified=90,
            downloaded=120,
            downloaded_after_check=60,
            answers=25,
            answers_with_code=20,
            lookups=130,
            downloads=300,
        ),
        feedback=FeedbackSummary(
            answers=25,
            scores={1: 0, 2: 1, 3: 4, 4: 10, 5: 5},
            relevant_yes=18,
            relevant_no=4,
            channels={"epost": 20, "brev": 5},
            comments_total=1,
            comments=(Comment("2025-04-02T08:00:00Z", "nn", 4, "Nyttig <b>takk</b>"),),
        ),
        bounces=(),
        auto_replies=0,
        generated_at="2025-04-03T12:05:00Z",
    )
    return dataclasses.replace(base, **changes)
