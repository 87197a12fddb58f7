"""The console's background sends (web/console_send.py): how a send that stopped is told."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from helpers import console_campaign, console_settings, operator, until
from varsel import outbox
from varsel.accounts import get_user
from varsel.approval import approve
from varsel.channel.smtp_relay import RelayConfig
from varsel.db import Database, connect
from varsel.testing import Fault, FaultPlan, SmtpSink
from varsel.web.console_auth import shown
from varsel.web.console_send import STORE_FAILED, Senders


@pytest.mark.postgres
def test_a_send_whose_store_goes_away_says_so_not_internal_error(
    pg_url: str, postgres_base: str, tmp_path: Path, brreg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = FaultPlan().on_rcpt(lambda r: True, Fault.delay(0.3))  # the send is still going
    with SmtpSink(faults=plan) as sink, connect(pg_url) as db:
        settings = console_settings(tmp_path, pg_url, smtp_url=sink.url)
        cid = console_campaign(db, settings, tmp_path, brreg, created_by="kari")
        operator(db, settings, "berit", "approver")
        berit = get_user(db, "berit")
        assert berit is not None
        approve(db, settings, cid, berit)
        name = f"varsel-test-{uuid.uuid4().hex[:8]}"
        monkeypatch.setenv("PGAPPNAME", name)  # the send's connections, by name
        senders = Senders(settings)
        assert senders.start(cid, "kari")
        until(lambda: outbox.counts(db, cid)["sent"] >= 1, 30)
        with psycopg.connect(postgres_base, autocommit=True, application_name="t") as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (name,),
            )
        senders.join(30)
    assert not senders.running(cid)
    assert senders.problem(cid) == STORE_FAILED


@pytest.mark.parametrize(
    ("relay", "said"),
    [
        (
            "login_refused",
            {
                "nb": "e-posttjeneren {relay} avviser utsendelsen: godtok ikke påloggingen: "
                "535 5.7.8 Authentication credentials invalid",
                "nn": "e-posttenaren {relay} avviser utsendinga: godtok ikkje innlogginga: "
                "535 5.7.8 Authentication credentials invalid",
                "en": "the mail server {relay} refuses the send: did not accept the login: "
                "535 5.7.8 Authentication credentials invalid",
            },
        ),
        (
            "unreachable",
            {
                "nb": "e-posttjeneren {relay} kan ikke brukes: kunne ikke koble til: "
                "tilkoblingen ble avvist (5 forsøk); e-postene som gjenstår, venter i køen til "
                "kampanjen sendes igjen med «Send kampanjen»",
                "nn": "e-posttenaren {relay} kan ikkje brukast: kunne ikkje kople til: "
                "tilkoplinga vart avvist (5 forsøk); e-postane som står att, ventar i køen til "
                "kampanjen blir send igjen med «Send kampanjen»",
                "en": "the mail server {relay} cannot be used: could not connect: "
                "connection refused (5 tries); the e-mails that remain wait in the queue until "
                "the campaign is sent again with “Send the campaign”",
            },
        ),
    ],
)
def test_why_a_send_stopped_at_its_relay_is_said_in_the_consoles_language_naming_the_relay(
    db: Database, tmp_path: Path, brreg: Path, relay: str, said: dict[str, str]
) -> None:
    with SmtpSink(auth=("varsel", "riktig")) as sink:
        url = (
            sink.url.replace("smtp://", "smtp://varsel:feil@")
            if relay == "login_refused"
            else "smtp://127.0.0.1:1"  # nothing listens there
        )
        settings = console_settings(tmp_path, db.url, smtp_url=url)
        cid = console_campaign(db, settings, tmp_path, brreg, created_by="kari")
        operator(db, settings, "berit", "approver")
        berit = get_user(db, "berit")
        assert berit is not None
        approve(db, settings, cid, berit)
        senders = Senders(settings)
        assert senders.start(cid, "kari")
        senders.join(60)
        assert sink.messages == []
    problem = senders.problem(cid)
    assert problem is not None
    named = RelayConfig.from_url(url).redacted()
    shown_in = {language: shown(language, problem) for language in ("nb", "nn", "en")}
    assert shown_in == {language: text.format(relay=named) for language, text in said.items()}
