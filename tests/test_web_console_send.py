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
from varsel.db import connect
from varsel.testing import Fault, FaultPlan, SmtpSink
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
