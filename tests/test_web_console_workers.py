"""The console and a campaign handed to `varsel worker` (PostgreSQL): what the campaign page
says about who sends it, the Send button refused, and pause, resume and cancel reaching the
workers at once (NOTIFY), in Bokmål, Nynorsk and English."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from helpers import approved_by_berit, console_settings, in_thread, page_form, until
from varsel import leases, outbox
from varsel.campaign import CampaignStatus, get_campaign
from varsel.channel.smtp_relay import RelayConfig
from varsel.config import Settings
from varsel.db import Database, connect
from varsel.testing import Fault, FaultPlan, SmtpSink
from varsel.web.console_auth import PREFIX
from varsel.worker import Worker, WorkerOptions

pytestmark = pytest.mark.postgres

NONE_RUNS = {
    "nb": "ingen kjører nå, så ingenting sendes",
    "nn": "ingen køyrer no, så ingenting blir sendt",
    "en": "none is running now, so nothing is being sent",
}
REFUSED = {
    "nb": "og bare de sender den. Vil du sende den fra konsollen, trykk «Pause» og så «Send "
    "kampanjen». Ingenting er endret.",
    "nn": "og berre dei sender han. Vil du sende han frå konsollen, trykk «Pause» og så «Send "
    "kampanjen». Ingenting er endra.",
    "en": "and only they send it. To send it from the console, press “Pause” and then “Send the "
    "campaign”. Nothing has been changed.",
}


@pytest.fixture
def settings(tmp_path: Path, pg_url: str) -> Settings:
    return console_settings(tmp_path, pg_url)


@pytest.fixture
def db(pg_url: str) -> Iterator[Database]:
    with connect(pg_url) as store:
        yield store


def handed_to_workers(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> int:
    """kari's campaign, approved by berit (signed in), handed to the workers; its id."""
    cid = approved_by_berit(client, db, settings, tmp_path, brreg)
    assert leases.start_campaign(db, cid) is True
    return cid


def test_with_no_worker_running_the_page_says_nothing_is_sent_and_send_is_refused(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    cid = handed_to_workers(client, db, settings, tmp_path, brreg)
    path = f"{PREFIX}/kampanjer/{cid}"
    for lang, words in NONE_RUNS.items():
        page = client.get(path, params={"lang": lang}).text
        assert words in page, lang
        assert f"/kampanjer/{cid}/send" not in page
    panel = client.get(f"{path}/fremdrift").text
    assert NONE_RUNS["nb"] in panel  # the polled panel says it too
    for lang, words in REFUSED.items():
        form = page_form(client, f"{path}?lang={lang}")
        answer = client.post(f"{path}/send", params={"lang": lang}, data=form)
        assert answer.status_code == 409, lang
        assert words in answer.text, lang
    assert client.app.state.senders.running(cid) is False  # type: ignore[attr-defined]
    assert db.scalar("SELECT sender_pid FROM campaigns WHERE id = ?", (cid,)) == leases.WORKERS
    assert get_campaign(db, cid).status is CampaignStatus.SENDING


def test_a_campaign_resumed_from_the_command_line_offers_no_send_button(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    from varsel.campaign import set_status

    cid = handed_to_workers(client, db, settings, tmp_path, brreg)
    set_status(db, cid, CampaignStatus.PAUSED)
    page = client.get(f"{PREFIX}/kampanjer/{cid}").text
    assert "Når den gjenopptas, sender arbeiderne («varsel worker») på tjeneren resten." in page
    set_status(db, cid, CampaignStatus.READY)  # `varsel campaign resume`: ready, the workers'
    page = client.get(f"{PREFIX}/kampanjer/{cid}").text
    assert f"/kampanjer/{cid}/send" not in page
    assert "varsel campaign send" not in page
    assert NONE_RUNS["nb"] in page


def test_an_approved_campaign_on_postgresql_names_both_ways_to_send_it(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    cid = approved_by_berit(client, db, settings, tmp_path, brreg)
    page = client.get(f"{PREFIX}/kampanjer/{cid}").text
    assert f"«varsel campaign send {cid}», eller av arbeiderne: «varsel campaign start {cid}»" in (
        page
    )
    english = client.get(f"{PREFIX}/kampanjer/{cid}", params={"lang": "en"}).text
    assert f"or by the workers: “varsel campaign start {cid}”" in english


def run_worker(
    settings: Settings, sink: SmtpSink, cid: int
) -> tuple[threading.Thread, list[BaseException]]:
    """A worker for the campaign on a thread; it reads the status only every 30 s by itself,
    so a change seen sooner came by NOTIFY."""
    worker = Worker(
        settings,
        RelayConfig.from_url(sink.url),
        WorkerOptions(
            campaign_id=cid, connections=1, build_processes=0, lease_seconds=3, poll_seconds=30
        ),
    )
    return in_thread(worker.run)


def slow_sink_plan(db: Database, cid: int) -> FaultPlan:
    """Every message of the campaign held 0.3 s by the sink: the send takes a while."""
    plan = FaultPlan()
    for n in range(1, sum(outbox.counts(db, cid).values()) + 1):
        plan.on_message(n, Fault.delay(0.3))
    return plan


def test_pause_and_resume_from_the_console_reach_a_running_worker_at_once(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    cid = handed_to_workers(client, db, settings, tmp_path, brreg)
    path = f"{PREFIX}/kampanjer/{cid}"
    total = sum(outbox.counts(db, cid).values())
    with SmtpSink(faults=slow_sink_plan(db, cid)) as sink:
        thread, errors = run_worker(settings, sink, cid)
        try:
            sink.wait_for(1, 20)
            page = client.get(path).text
            assert "Arbeiderne («varsel worker») på tjeneren sender den; 1 kjører nå." in page
            client.post(f"{path}/pause", data=page_form(client, path))
            took = until(lambda: outbox.counts(db, cid)["claimed"] == 0, 10)
            paused = outbox.counts(db, cid)["sent"]
            time.sleep(0.5)
            assert len(sink.messages) == paused  # nothing more while paused
            resumed = client.post(f"{path}/gjenoppta", data=page_form(client, path))
            # At once theirs to send again: the page says who sends it, and offers no Send.
            assert get_campaign(db, cid).status is CampaignStatus.SENDING
            assert f"/kampanjer/{cid}/send" not in resumed.text
            assert f"/kampanjer/{cid}/pause" in resumed.text
            until(lambda: get_campaign(db, cid).status is CampaignStatus.DONE, 30)
        finally:
            thread.join(30)
    assert errors == []
    assert took < 2.0  # by NOTIFY: the worker's own look comes only after 30 s
    assert paused < total
    assert outbox.counts(db, cid)["sent"] == total


def test_cancel_from_the_console_stops_a_running_worker_at_once(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    cid = handed_to_workers(client, db, settings, tmp_path, brreg)
    path = f"{PREFIX}/kampanjer/{cid}"
    total = sum(outbox.counts(db, cid).values())
    with SmtpSink(faults=slow_sink_plan(db, cid)) as sink:
        thread, errors = run_worker(settings, sink, cid)
        sink.wait_for(1, 20)
        form = {**page_form(client, path), "bekreft": "ja"}
        started = time.monotonic()
        client.post(f"{path}/avbryt", data=form)
        thread.join(10)
        took = time.monotonic() - started
    assert errors == []
    assert not thread.is_alive()
    assert took < 3.0  # by NOTIFY, not the worker's 30-second look
    counts = outbox.counts(db, cid)
    assert counts["claimed"] == 0
    assert counts["sent"] < total
    assert get_campaign(db, cid).status is CampaignStatus.CANCELLED


def test_the_console_hands_an_approved_campaign_to_the_workers(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    from varsel import audit

    cid = approved_by_berit(client, db, settings, tmp_path, brreg)
    path = f"{PREFIX}/kampanjer/{cid}"
    english = client.get(path, params={"lang": "en"}).text
    assert "Hand to the workers" in english
    answer = client.post(f"{path}/arbeidere", data=page_form(client, path))
    assert answer.status_code == 200  # the campaign page, after the redirect
    assert db.query_one("SELECT status, sender_pid FROM campaigns WHERE id = ?", (cid,)) == (
        "sending",
        leases.WORKERS,
    )
    [entry] = audit.entries(db, action=audit.Action.CAMPAIGN_SEND)
    assert (entry.actor, entry.object) == ("berit", f"campaign:{cid}")
    assert entry.data["approved_by"] is not None  # the approval it relied on
    page = answer.text
    assert "Kampanjen er gitt til arbeiderne." in page
    assert NONE_RUNS["nb"] in page  # as `campaign status` says: no worker runs
    assert f"/kampanjer/{cid}/arbeidere" not in page


def test_the_console_hands_no_campaign_to_the_workers_without_approval_or_csrf(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    from helpers import kari_campaign_berit_signed_in
    from varsel import audit

    cid = kari_campaign_berit_signed_in(client, db, settings, tmp_path, brreg)
    path = f"{PREFIX}/kampanjer/{cid}"
    assert f"/kampanjer/{cid}/arbeidere" not in client.get(path).text
    answer = client.post(f"{path}/arbeidere", data=page_form(client, path))
    assert answer.status_code == 409
    assert "Kampanjen er ikke godkjent ennå." in answer.text
    from varsel.accounts import get_user
    from varsel.approval import approve

    berit = get_user(db, "berit")
    assert berit is not None
    approve(db, settings, cid, berit)
    answer = client.post(f"{path}/arbeidere", data={"csrf": "forged"})
    assert answer.status_code == 403
    assert db.query_one("SELECT status, sender_pid FROM campaigns WHERE id = ?", (cid,)) == (
        "ready",
        None,
    )
    assert audit.entries(db, action=audit.Action.CAMPAIGN_SEND) == []


def test_a_paused_workers_campaign_is_sent_from_the_console_after_all(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    from varsel.campaign import set_status

    cid = handed_to_workers(client, db, settings, tmp_path, brreg)
    set_status(db, cid, CampaignStatus.PAUSED)
    path = f"{PREFIX}/kampanjer/{cid}"
    assert f"/kampanjer/{cid}/send" in client.get(path).text
    with SmtpSink() as sink:
        client.app.state.senders.settings = console_settings(  # type: ignore[attr-defined]
            tmp_path, settings.database_url, smtp_url=sink.url
        )
        answer = client.post(f"{path}/send", data=page_form(client, path))
        client.app.state.senders.join(60)  # type: ignore[attr-defined]
        assert "Sendingen er startet." in answer.text
    assert db.query_one("SELECT status, sender_pid FROM campaigns WHERE id = ?", (cid,)) == (
        "done",
        None,
    )


def test_on_sqlite_the_page_offers_no_hand_over_and_a_posted_one_is_refused(
    tmp_path: Path, brreg: Path
) -> None:
    from helpers import HTTPS
    from varsel.web import create_app

    sqlite = console_settings(tmp_path, str(tmp_path / "varsel.db"))
    with (
        connect(sqlite.database_url) as store,
        TestClient(create_app(sqlite), base_url=HTTPS) as client,
    ):
        cid = approved_by_berit(client, store, sqlite, tmp_path, brreg)
        path = f"{PREFIX}/kampanjer/{cid}"
        page = client.get(path).text
        assert f"/kampanjer/{cid}/send" in page
        assert f"/kampanjer/{cid}/arbeidere" not in page
        assert "Gi til arbeiderne" not in page
        answer = client.post(f"{path}/arbeidere", data=page_form(client, path))
        assert answer.status_code == 409
        assert "finnes bare når varsel bruker PostgreSQL" in answer.text
        assert store.query_one("SELECT status, sender_pid FROM campaigns WHERE id = ?", (cid,)) == (
            "ready",
            None,
        )


def test_a_workers_campaign_edited_while_paused_is_not_resumed_without_a_new_approval(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    # Resumed, the workers would send at once what was saved while it was paused: the resume is
    # refused, in the page's language, and the campaign stays paused, not theirs to send.
    from helpers import form_token

    cid = handed_to_workers(client, db, settings, tmp_path, brreg)
    path = f"{PREFIX}/kampanjer/{cid}"
    client.post(f"{path}/pause", data=page_form(client, path))
    csrf = form_token(client, f"{path}/maler")
    saved = client.post(
        f"{path}/maler", data={"csrf": csrf, "action": "save", "nb-subject": "Betal fakturaen"}
    )
    assert saved.status_code == 200
    refused = {
        "nb": "godkjenningen av kampanje 1 gjelder ikke lenger: malene er endret etter at berit "
        "godkjente den; den må godkjennes på nytt",
        "en": "the approval of campaign 1 no longer holds: the templates changed after berit "
        "approved it; it must be approved again",
    }
    for lang, words in refused.items():
        answer = client.post(
            f"{path}/gjenoppta", params={"lang": lang}, data=page_form(client, path)
        )
        assert answer.status_code == 409, lang
        assert words in answer.text, lang
    assert db.query_one("SELECT status, sender_pid FROM campaigns WHERE id = ?", (cid,)) == (
        "paused",
        leases.WORKERS,
    )
