# The cid, definition, people, registry_db and settings fixtures are imported from
# test_approval, so the tests' parameters of those names redefine the imports, as pytest means.
# ruff: noqa: F811
"""The gate before a send: an approval that holds, or an allowed --no-approval; audited."""

from __future__ import annotations

import dataclasses

import pytest

from test_approval import (  # noqa: F401  # the fixtures are used as parameters
    NOT_APPROVED,
    another,
    cid,
    definition,
    edited,
    lapsed,
    paused_by_the_workers,
    people,
    registry_db,
    settings,
    voided,
)
from varsel import audit
from varsel.accounts import User
from varsel.approval import ApprovalError, NotApproved, approve
from varsel.campaign import CampaignStatus, get_campaign, set_status, update_spec
from varsel.channel.smtp_relay import RelayConfig
from varsel.config import Settings
from varsel.db import Database
from varsel.send_gate import authorise_send, send_checked
from varsel.sender import SendOptions
from varsel.testing import SmtpSink

FAST = SendOptions(connections=2, rate_per_second=1000, retry_base_seconds=0.05, build_processes=0)


def test_an_unapproved_campaign_cannot_be_sent(
    registry_db: Database, settings: Settings, cid: int
) -> None:
    with pytest.raises(NotApproved) as e:
        authorise_send(registry_db, settings, cid, actor="kari")
    assert e.value.message == NOT_APPROVED
    assert audit.entries(registry_db, action=audit.Action.CAMPAIGN_SEND) == []


def test_a_send_on_altinn_is_audited_as_altinn_not_email(
    registry_db: Database, settings: Settings, cid: int, people: dict[str, User]
) -> None:
    approval = approve(registry_db, settings, cid, people["berit"])
    authorise_send(registry_db, settings, cid, actor="kari", channel="altinn")
    (send,) = audit.entries(registry_db, action=audit.Action.CAMPAIGN_SEND)
    assert (send.data["channel"], send.data["approval"]) == ("altinn", approval.id)


def test_a_workers_campaign_edited_while_paused_is_not_resumed_unapproved(
    registry_db: Database, settings: Settings, cid: int, people: dict[str, User]
) -> None:
    # Resumed, the workers send it at once (no send passes the gate again): what kari changed
    # alone while it was paused must not go out under berit's approval.
    if registry_db.dialect != "postgresql":
        pytest.skip("the workers need PostgreSQL")
    paused_by_the_workers(registry_db, settings, cid, people["berit"])
    update_spec(registry_db, cid, edited(registry_db, cid, from_name="Betal nå"), actor="kari")
    with pytest.raises(NotApproved) as e:
        set_status(registry_db, cid, CampaignStatus.READY, actor="kari")
    assert e.value.message == voided("avsenderen")
    assert get_campaign(registry_db, cid).status is CampaignStatus.PAUSED
    assert audit.entries(registry_db, action=audit.Action.CAMPAIGN_RESUME) == []
    # Approved again by someone who did not change it, it goes back to the workers.
    approve(registry_db, settings, cid, another(registry_db, settings, "per", "approver"))
    assert set_status(registry_db, cid, CampaignStatus.READY).status is CampaignStatus.READY


def test_a_workers_campaign_handed_over_without_approval_resumes_as_it_was(
    registry_db: Database, settings: Settings, cid: int, people: dict[str, User]
) -> None:
    from varsel.leases import start_campaign

    if registry_db.dialect != "postgresql":
        pytest.skip("the workers need PostgreSQL")
    approve(registry_db, settings, cid, people["berit"])
    update_spec(registry_db, cid, edited(registry_db, cid, from_name="NSR Oslo"), actor="kari")
    authorise_send(registry_db, settings, cid, actor="kari", no_approval=True)  # recorded
    assert start_campaign(registry_db, cid) is True
    set_status(registry_db, cid, CampaignStatus.PAUSED)
    assert set_status(registry_db, cid, CampaignStatus.READY).status is CampaignStatus.READY


def test_a_workers_campaign_is_not_resumed_on_a_disabled_approvers_word(
    registry_db: Database, settings: Settings, cid: int, people: dict[str, User]
) -> None:
    from varsel.accounts import disable_user

    if registry_db.dialect != "postgresql":
        pytest.skip("the workers need PostgreSQL")
    paused_by_the_workers(registry_db, settings, cid, people["berit"])
    disable_user(registry_db, "berit", actor="anne")
    with pytest.raises(NotApproved) as e:
        set_status(registry_db, cid, CampaignStatus.READY, actor="kari")
    assert e.value.message == lapsed("godkjenneren berit er deaktivert")
    assert get_campaign(registry_db, cid).status is CampaignStatus.PAUSED
    approve(registry_db, settings, cid, another(registry_db, settings, "per", "approver"))
    assert set_status(registry_db, cid, CampaignStatus.READY).status is CampaignStatus.READY


def test_no_approval_is_audited_and_can_be_forbidden(
    registry_db: Database, settings: Settings, cid: int
) -> None:
    assert authorise_send(registry_db, settings, cid, actor="cli:ola", no_approval=True) is None
    (entry,) = audit.entries(registry_db, action=audit.Action.CAMPAIGN_SEND)
    assert entry.data["no_approval"] is True
    strict = dataclasses.replace(settings, allow_no_approval=False)
    with pytest.raises(ApprovalError) as e:
        authorise_send(registry_db, strict, cid, actor="cli:ola", no_approval=True)
    assert e.value.message == (
        "sending uten godkjenning er slått av her (VARSEL_ALLOW_NO_APPROVAL=false); "
        "kampanje 1 må godkjennes"
    )


def test_a_forgotten_campaign_sends_on_no_channel_even_approved(
    registry_db: Database, settings: Settings, cid: int, people: dict[str, User]
) -> None:
    approve(registry_db, settings, cid, people["berit"])
    with registry_db.transaction():
        registry_db.execute(
            "UPDATE campaigns SET forgotten_at = '2026-11-29T12:00:00.000Z' WHERE id = ?", (cid,)
        )
    for no_approval in (False, True):
        with pytest.raises(ApprovalError) as e:
            authorise_send(registry_db, settings, cid, actor="cli:ola", no_approval=no_approval)
        assert e.value.message == (
            f"kampanje {cid} har glemt kontaktopplysningene sine (campaign forget); "
            "den sender ikke mer på noen kanal"
        )
    assert audit.entries(registry_db, action=audit.Action.CAMPAIGN_SEND) == []


def test_send_checked_sends_an_approved_campaign(
    registry_db: Database, settings: Settings, cid: int, people: dict[str, User]
) -> None:
    with SmtpSink() as sink:
        relay = RelayConfig.from_url(sink.url)
        with pytest.raises(NotApproved):
            send_checked(registry_db, settings, cid, actor="kari", relay=relay, options=FAST)
        assert sink.messages == []
        approve(registry_db, settings, cid, people["berit"])
        report = send_checked(registry_db, settings, cid, actor="kari", relay=relay, options=FAST)
        received = len(sink.messages)
    assert report.stopped == "done"
    assert received == report.counts["sent"] > 0
    end = audit.entries(registry_db, action=audit.Action.CAMPAIGN_SEND_END)[0]
    assert (end.actor, end.data["stopped"], end.data["sent"]) == ("kari", "done", received)
    assert audit.verify(registry_db).ok
