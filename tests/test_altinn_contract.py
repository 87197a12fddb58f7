"""The Altinn channel against a contract server (tests/altinn_server.py) on loopback.

Altinn and Maskinporten cannot be reached from here: every test that sends is a contract test,
against a local server that implements the documented endpoints and checks what it is sent.
The store effects run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from altinn_server import AltinnServer, Fault
from helpers import campaign_toml
from varsel import codes, synth_orgnr, verify
from varsel.altinn import AltinnError, SendRun, altinn_counts, send
from varsel.altinn_client import (
    AltinnAuthError,
    AltinnClient,
    AltinnConfig,
    AltinnConfigError,
    AltinnRejected,
    _retry_after,
)
from varsel.altinn_message import AltinnTexts, idempotent_key, markdown_text
from varsel.altinn_poll import outcome_of, poll
from varsel.campaign import create_campaign
from varsel.cli import cli
from varsel.config import Settings
from varsel.coverage import Outcome, coverage
from varsel.db import Database
from varsel.errors import ConfigError
from varsel.outbox import DeliveryState
from varsel.registry import import_dump

CAMPAIGN = campaign_toml(segment="min_employees = 2\n")
NORDEA, EY, TELENOR = "920058817", "976389387", "982463718"  # the sample's units without e-mail
SENDER = "974760673"
CLIENT_ID = "0b3c2a4e-5f60-4a7b-8c9d-0e1f2a3b4c5d"
KEY_ID = "varsel-test-key"
RESOURCE = "politiet-sikkerhetsrad"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def key_file(tmp_path: Path, key: rsa.RSAPrivateKey) -> Path:
    path = tmp_path / "maskinporten.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.fixture
def server(key: rsa.RSAPrivateKey) -> Iterator[AltinnServer]:
    with AltinnServer(
        key.public_key(),
        client_id=CLIENT_ID,
        key_id=KEY_ID,
        resource_id=RESOURCE,
        sender_orgnr=SENDER,
    ) as s:
        yield s


def altinn_env(server: AltinnServer, key_file: Path) -> dict[str, str]:
    return {
        "VARSEL_ALTINN_ENABLED": "true",
        "VARSEL_ALTINN_BASE_URL": server.base_url,
        "VARSEL_ALTINN_MASKINPORTEN_TOKEN_URL": server.token_url,
        "VARSEL_ALTINN_CLIENT_ID": CLIENT_ID,
        "VARSEL_ALTINN_KEY_ID": KEY_ID,
        "VARSEL_ALTINN_PRIVATE_KEY_FILE": str(key_file),
        "VARSEL_ALTINN_RESOURCE_ID": RESOURCE,
        "VARSEL_ALTINN_SENDER_ORGNR": SENDER,
    }


@pytest.fixture
def settings(tmp_path: Path, server: AltinnServer, key_file: Path) -> Settings:
    return Settings.load(environ=altinn_env(server, key_file), dkim_key_dir=str(tmp_path / "keys"))


class Sleeps(list[float]):
    """Records the waits the client asks for, without waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(settings: Settings, sleeps: Sleeps) -> Iterator[AltinnClient]:
    with AltinnClient(AltinnConfig.from_settings(settings), sleep=sleeps) as c:
        yield c


@pytest.fixture
def campaign_id(db: Database, brreg: Path, settings: Settings, tmp_path: Path) -> int:
    """A campaign on the sample registry: three of its units have no e-mail address."""
    import_dump(db, brreg / "enheter-sample.json")
    path = tmp_path / "campaign.toml"
    path.write_text(CAMPAIGN, "utf-8")
    return create_campaign(db, settings, path).campaign.id


def altinn_rows(db: Database, campaign_id: int) -> dict[str, tuple[str, str | None, int]]:
    """orgnr → (state, Altinn id, attempts) of the campaign's Altinn deliveries."""
    return {
        r[0]: (r[1], r[2], int(r[3]))
        for r in db.query(
            "SELECT key, state, message_id, attempts FROM deliveries WHERE campaign_id = ? "
            "AND channel = 'altinn'",
            (campaign_id,),
        )
    }


def events(db: Database, campaign_id: int, kind: str) -> list[dict[str, object]]:
    return [
        json.loads(r[0] or "{}")
        for r in db.query(
            "SELECT detail FROM events WHERE campaign_id = ? AND kind = ? ORDER BY id",
            (campaign_id, kind),
        )
    ]


# -- sending ---------------------------------------------------------------------------------


def test_contract_send_makes_one_correspondence_per_unit_without_email(
    db: Database, settings: Settings, client: AltinnClient, server: AltinnServer, campaign_id: int
) -> None:
    result = send(db, settings, campaign_id, client=client)

    assert (result.submitted, result.failed, result.waiting, result.interrupted) == (3, 0, 0, None)
    rows = altinn_rows(db, campaign_id)
    assert sorted(rows) == [NORDEA, EY, TELENOR]
    for orgnr, (state, altinn_id, attempts) in rows.items():
        (made,) = server.by_recipient(orgnr)
        assert (state, altinn_id, attempts) == ("submitted", made.id, 1)
    assert len(events(db, campaign_id, "altinn_submitted")) == 3


def test_contract_a_forgotten_campaign_sends_nothing_in_altinn(
    db: Database, settings: Settings, client: AltinnClient, server: AltinnServer, campaign_id: int
) -> None:
    # Who needs Altinn is read from the e-mail replies and addresses that forget erases.
    with db.transaction():
        db.execute(
            "UPDATE campaigns SET forgotten_at = '2026-11-29T12:00:00.000Z' WHERE id = ?",
            (campaign_id,),
        )
    with pytest.raises(AltinnError) as e:
        send(db, settings, campaign_id, client=client)
    assert e.value.message == (
        f"kampanje {campaign_id} har glemt kontaktopplysningene sine, så det kan ikke lenger "
        "avgjøres hvem som trenger Altinn; send i Altinn før «campaign forget»"
    )
    assert altinn_rows(db, campaign_id) == {}
    assert server.by_recipient(NORDEA) == []


def test_contract_request_carries_the_delivery_key_sender_and_notification(
    db: Database, settings: Settings, client: AltinnClient, server: AltinnServer, campaign_id: int
) -> None:
    send(db, settings, campaign_id, client=client)

    delivery_id, code = db.query_one(
        "SELECT id, code FROM deliveries WHERE campaign_id = ? AND channel = 'altinn' AND key = ?",
        (campaign_id, EY),
    ) or (0, "")
    (made,) = server.by_recipient(EY)
    corr = made.request["correspondence"]
    assert made.key == idempotent_key(int(delivery_id), EY, code)
    assert made.request["recipients"] == [f"urn:altinn:organization:identifier-no:{EY}"]
    assert corr["sender"] == f"0192:{SENDER}"
    assert corr["sendersReference"] == f"varsel-{campaign_id}-{delivery_id}"
    assert corr["messageSender"] == "Oslo politidistrikt og NSR"
    assert corr["notification"]["notificationTemplate"] == "CustomMessage"
    assert corr["notification"]["notificationChannel"] == "EmailPreferred"
    assert corr["notification"]["emailSubject"] == "Ny melding i Altinn fra $sendersName$"
    assert corr["notification"]["sendReminder"] is True


def test_contract_message_shows_code_and_verify_address_as_text(
    db: Database, settings: Settings, client: AltinnClient, server: AltinnServer, campaign_id: int
) -> None:
    send(db, settings, campaign_id, client=client)

    code = db.scalar(
        "SELECT code FROM deliveries WHERE campaign_id = ? AND channel = 'altinn' AND key = ?",
        (campaign_id, TELENOR),
    )
    (made,) = server.by_recipient(TELENOR)
    content = made.request["correspondence"]["content"]
    assert content["language"] == "nb"
    assert content["messageTitle"] == (
        "Forebyggende sikkerhetsinformasjon fra Oslo politidistrikt og NSR"
    )
    assert f"**{codes.format_code(code)}**" in content["messageBody"]
    # In a code span: shown in full, never a link the reader could click.
    assert (
        "1. Skriv `https://www.politiet.no/varsel/kontroll` i adressefeltet"
        in (content["messageBody"])
    )
    assert "](" not in content["messageBody"]
    assert codes.format_code(code) in content["messageSummary"]


def test_contract_altinn_code_verifies_on_the_public_page(
    db: Database, settings: Settings, client: AltinnClient, campaign_id: int
) -> None:
    send(db, settings, campaign_id, client=client)
    code = db.scalar(
        "SELECT code FROM deliveries WHERE campaign_id = ? AND channel = 'altinn' AND key = ?",
        (campaign_id, NORDEA),
    )

    found = verify.lookup(db, codes.format_code(code))

    assert found is not None
    assert [u.orgnr for u in found.units] == [NORDEA]


def test_contract_second_run_sends_nothing_again(
    db: Database, settings: Settings, client: AltinnClient, server: AltinnServer, campaign_id: int
) -> None:
    send(db, settings, campaign_id, client=client)

    again = send(db, settings, campaign_id, client=client)

    assert (again.submitted, again.before, again.waiting) == (0, 3, 0)
    assert len(server.correspondences) == 3
    assert again.summary().splitlines() == [
        f"Kampanje {campaign_id}: ingen nye meldinger sendt til Altinn.",
        "3 enheter fikk Altinn-melding i en tidligere kjøring.",
    ]


def test_contract_a_unit_that_asks_not_to_be_contacted_after_a_limited_run_is_not_sent(
    db: Database, settings: Settings, client: AltinnClient, server: AltinnServer, campaign_id: int
) -> None:
    # --limit sends a few first; the others wait as deliveries Altinn has not seen yet.
    first = send(db, settings, campaign_id, client=client, limit=1)
    assert (first.submitted, first.waiting) == (1, 2)
    with db.transaction():
        db.execute(
            "INSERT INTO suppressions (kind, value, reason, created_at) "
            "VALUES ('unit', ?, 'unsubscribed', '2026-01-01T00:00:00Z')",
            (EY,),
        )

    rest = send(db, settings, campaign_id, client=client)

    assert server.by_recipient(EY) == []
    assert (rest.submitted, rest.suppressed, rest.before, rest.waiting) == (1, 1, 1, 0)
    assert altinn_rows(db, campaign_id)[EY] == ("suppressed", None, 0)
    assert coverage(db, campaign_id).outcomes[Outcome.SUPPRESSED] == 1
    # Should the unit want messages again, the next run sends it.
    with db.transaction():
        db.execute("DELETE FROM suppressions WHERE value = ?", (EY,))
    again = send(db, settings, campaign_id, client=client)
    assert (again.submitted, again.suppressed) == (1, 0)
    assert len(server.by_recipient(EY)) == 1


def test_contract_lost_answer_is_sent_again_and_found_by_its_key(
    db: Database, settings: Settings, client: AltinnClient, server: AltinnServer, campaign_id: int
) -> None:
    server.faults.append(Fault(drop_after_create=True))  # Altinn made it; the answer was lost

    result = send(db, settings, campaign_id, client=client)

    assert result.submitted == 3
    assert len(server.correspondences) == 3
    (first,) = server.by_recipient(NORDEA)
    assert altinn_rows(db, campaign_id)[NORDEA][1] == first.id
    found = events(db, campaign_id, "altinn_submitted")[0]
    assert (found["correspondence_id"], found["found_by"]) == (first.id, "idempotent_key")


def test_contract_rerun_after_a_crash_makes_no_second_correspondence(
    db: Database, db_url: str, server: AltinnServer, key_file: Path, campaign_id: int
) -> None:
    # The sender is killed while Altinn holds its first request: Altinn has made the
    # correspondence, the store has only the submitted delivery without its Altinn id.
    server.faults.append(Fault(hold_after_create=True))
    env = {**os.environ, **altinn_env(server, key_file), "VARSEL_DATABASE_URL": db_url}
    process = subprocess.Popen(
        [sys.executable, "-m", "varsel", "altinn", "send", str(campaign_id), "--no-approval"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert server.created.wait(60), "the sender never reached Altinn"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    server.released.set()
    assert altinn_rows(db, campaign_id)[NORDEA] == ("submitted", None, 1)

    settings = Settings.load(environ=altinn_env(server, key_file))
    with AltinnClient(AltinnConfig.from_settings(settings), sleep=Sleeps()) as client:
        result = send(db, settings, campaign_id, client=client)

    assert result.submitted == 3
    (only,) = server.by_recipient(NORDEA)
    assert altinn_rows(db, campaign_id)[NORDEA] == ("submitted", only.id, 2)
    assert len(server.correspondences) == 3


def test_contract_429_waits_as_long_as_retry_after_says(
    db: Database,
    settings: Settings,
    client: AltinnClient,
    server: AltinnServer,
    sleeps: Sleeps,
    campaign_id: int,
) -> None:
    server.faults.append(Fault(status=429, headers={"Retry-After": "7"}))

    result = send(db, settings, campaign_id, client=client)

    assert sleeps == [7.0]
    assert result.submitted == 3
    assert len(server.correspondences) == 3


def test_contract_altinn_down_stops_the_run_and_the_next_run_finishes(
    db: Database,
    settings: Settings,
    client: AltinnClient,
    server: AltinnServer,
    sleeps: Sleeps,
    campaign_id: int,
) -> None:
    server.faults.extend(Fault(status=503) for _ in range(5))

    stopped = send(db, settings, campaign_id, client=client)

    assert sleeps == [1.0, 2.0, 4.0, 8.0]
    assert stopped.interrupted == (
        f"Altinn-melding {altinn_id_of(db, campaign_id, NORDEA)} til {NORDEA}: ikke svar etter "
        "5 forsøk "
        "(HTTP 503: planned); kjør kommandoen igjen senere"
    )
    assert (stopped.submitted, stopped.waiting) == (0, 3)
    assert server.correspondences == {}

    finished = send(db, settings, campaign_id, client=client)

    assert (finished.submitted, finished.waiting, finished.interrupted) == (3, 0, None)
    assert len(server.correspondences) == 3


def altinn_id_of(db: Database, campaign_id: int, orgnr: str) -> int:
    return int(
        db.scalar(
            "SELECT id FROM deliveries WHERE campaign_id = ? AND channel = 'altinn' AND key = ?",
            (campaign_id, orgnr),
        )
    )


def test_contract_request_problem_stops_the_run_in_one_line(
    db: Database, server: AltinnServer, key_file: Path, campaign_id: int
) -> None:
    env = {**altinn_env(server, key_file), "VARSEL_ALTINN_RESOURCE_ID": "no-such-resource"}
    settings = Settings.load(environ=env)

    with (
        AltinnClient(AltinnConfig.from_settings(settings), sleep=Sleeps()) as client,
        pytest.raises(AltinnRejected) as raised,
    ):
        send(db, settings, campaign_id, client=client)

    first = altinn_id_of(db, campaign_id, NORDEA)
    assert raised.value.message == (
        f"Altinn avviste Altinn-melding {first} til {NORDEA}: HTTP 400 CORR-1036: ResourceId must "
        "match an existing resource in the resource registry"
    )
    assert altinn_counts(db, campaign_id) == {
        "unsent": 3,
        "accepted": 0,
        "delivered": 0,
        "failed": 0,
    }
    assert events(db, campaign_id, "altinn_rejected") == [
        {
            "reply": "HTTP 400 CORR-1036: ResourceId must match an existing resource in the "
            "resource registry"
        }
    ]


def test_contract_cli_prints_a_problem_as_one_line_with_status_2(
    db_url: str, db: Database, server: AltinnServer, key_file: Path, campaign_id: int
) -> None:
    env = {
        **altinn_env(server, key_file),
        "VARSEL_DATABASE_URL": db_url,
        "VARSEL_ALTINN_SENDER_ORGNR": "982531950",  # not the resource's owner
    }

    result = CliRunner().invoke(cli, ["altinn", "send", str(campaign_id), "--no-approval"], env=env)

    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        "varsel: Altinn godtar ikke innloggingen: HTTP 401 CORR-4001: The sender is not the "
        "owner of the resource"
    )


def test_contract_reserved_recipient_fails_alone(
    db: Database, settings: Settings, client: AltinnClient, server: AltinnServer, campaign_id: int
) -> None:
    server.reserved.add(EY)

    result = send(db, settings, campaign_id, client=client)

    assert (result.submitted, result.failed) == (2, 1)
    assert altinn_rows(db, campaign_id)[EY] == ("failed", None, 1)
    reason = db.scalar(
        "SELECT last_reply FROM deliveries WHERE campaign_id = ? AND key = ?", (campaign_id, EY)
    )
    assert reason == (
        f"HTTP 422 CORR-1030: Recipient {EY} has reserved themselves from public "
        "correspondences. Can be overridden using the 'IgnoreReservation' flag"
    )


# -- several at once ----------------------------------------------------------------------------

MANY = 24  # units without e-mail in the larger campaign


@pytest.fixture
def many_id(db: Database, brreg: Path, settings: Settings, tmp_path: Path) -> int:
    """A campaign of MANY units like Nordea's, none with an e-mail address."""
    records = json.loads((brreg / "enheter-sample.json").read_text("utf-8"))
    (template,) = [r for r in records if r["organisasjonsnummer"] == NORDEA]
    units = []
    for i in range(MANY):
        unit = copy.deepcopy(template)
        unit["organisasjonsnummer"] = synth_orgnr.orgnr(i, (11, 22, 33, 44, 55))
        unit["navn"] = f"TESTBEDRIFT {i} AS"
        units.append(unit)
    dump = tmp_path / "enheter-many.json"
    dump.write_text(json.dumps(units, ensure_ascii=False), "utf-8")
    import_dump(db, dump)
    path = tmp_path / "campaign.toml"
    path.write_text(CAMPAIGN, "utf-8")
    return create_campaign(db, settings, path).campaign.id


def each_has_one_correspondence(db: Database, server: AltinnServer, campaign_id: int) -> None:
    rows = altinn_rows(db, campaign_id)
    assert len(rows) == MANY
    for orgnr, (state, altinn_id, _) in rows.items():
        (made,) = server.by_recipient(orgnr)
        assert (state, altinn_id) == ("submitted", made.id)
    assert len(server.correspondences) == MANY


def test_contract_four_at_once_take_about_a_quarter_of_the_time(
    db: Database, settings: Settings, client: AltinnClient, server: AltinnServer, many_id: int
) -> None:
    send(db, settings, many_id, client=client, limit=1)  # logged in: the rest is sending only
    server.delay = 0.2
    progress: list[tuple[int, int]] = []

    started = time.monotonic()
    result = send(
        db,
        settings,
        many_id,
        client=client,
        concurrency=4,
        progress=lambda n: progress.append((n, threading.get_ident())),
    )
    elapsed = time.monotonic() - started

    assert (result.submitted, result.waiting, result.interrupted) == (MANY - 1, 0, None)
    assert 2 <= server.most_at_once <= 4
    # One at a time cannot take less than (MANY - 1) × 0.2 s = 4.6 s; four at once take about
    # a quarter of that (the first request goes alone). Generous: the machine is shared.
    assert elapsed < 0.6 * (MANY - 1) * server.delay
    each_has_one_correspondence(db, server, many_id)
    assert {n for _, _, n in altinn_rows(db, many_id).values()} == {1}
    # Recorded on the calling thread, once per delivery.
    assert progress == [(1, threading.get_ident())] * (MANY - 1)


def test_contract_cli_sends_as_many_at_once_as_asked(
    db_url: str, db: Database, server: AltinnServer, key_file: Path, many_id: int
) -> None:
    env = {**altinn_env(server, key_file), "VARSEL_DATABASE_URL": db_url}
    server.delay = 0.05

    result = CliRunner().invoke(
        cli,
        ["altinn", "send", str(many_id), "--no-approval", "--concurrency", "2", "--json"],
        env=env,
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["submitted"] == MANY
    assert server.most_at_once == 2
    each_has_one_correspondence(db, server, many_id)


def test_contract_altinn_down_midway_stops_new_requests_and_loses_nothing(
    db: Database, settings: Settings, client: AltinnClient, server: AltinnServer, many_id: int
) -> None:
    server.delay = 0.05
    server.down_after = 10  # Altinn makes ten, then answers 503 to everything

    stopped = send(db, settings, many_id, client=client, concurrency=4)

    assert stopped.interrupted is not None
    assert stopped.interrupted.endswith(
        "ikke svar etter 5 forsøk (HTTP 503: Service Unavailable); kjør kommandoen igjen senere"
    )
    rows = altinn_rows(db, many_id)
    # Every correspondence Altinn made is recorded, also those of requests still in flight.
    assert {a for _, a, _ in rows.values() if a} == set(server.correspondences)
    assert (stopped.submitted, stopped.waiting) == (10, MANY - 10)
    # In flight when Altinn went down: stamped, deferred, not accepted. Nothing started after.
    deferred = [o for o, (_, a, n) in rows.items() if a is None and n == 1]
    assert 1 <= len(deferred) <= 4
    assert len(events(db, many_id, "altinn_deferred")) == len(deferred)
    untouched = [o for o, (_, a, n) in rows.items() if n == 0]
    assert len(untouched) == MANY - 10 - len(deferred)

    server.down_after = None
    finished = send(db, settings, many_id, client=client, concurrency=4)

    assert (finished.submitted, finished.waiting, finished.interrupted) == (MANY - 10, 0, None)
    each_has_one_correspondence(db, server, many_id)
    assert server.most_at_once <= 4


def test_contract_request_problem_midway_stops_new_requests_and_raises(
    db: Database, settings: Settings, client: AltinnClient, server: AltinnServer, many_id: int
) -> None:
    server.delay = 0.05
    server.faults.extend([Fault()] * 6 + [Fault(status=400)])  # the seventh request is refused

    with pytest.raises(AltinnRejected) as raised:
        send(db, settings, many_id, client=client, concurrency=4)

    assert raised.value.problem.line() == "HTTP 400: planned"
    assert events(db, many_id, "altinn_rejected") == [{"reply": "HTTP 400: planned"}]
    rows = altinn_rows(db, many_id)
    accepted = {a for _, a, _ in rows.values() if a}
    assert accepted == set(server.correspondences)
    assert len(accepted) >= 6  # those before it, and those in flight beside it
    # Stamped: the accepted ones and the refused one; the run stopped before the rest.
    stamped = [o for o, (_, _, n) in rows.items() if n == 1]
    assert len(stamped) == len(accepted) + 1 < MANY

    finished = send(db, settings, many_id, client=client, concurrency=4)

    assert (finished.submitted, finished.waiting) == (MANY - len(accepted), 0)
    each_has_one_correspondence(db, server, many_id)


def test_contract_concurrent_first_requests_log_in_once(
    client: AltinnClient, server: AltinnServer
) -> None:
    server.delay = 0.1
    keys = [idempotent_key(i, EY, "0" * 12) for i in range(1, 9)]
    start = threading.Barrier(len(keys))

    def look_up(key: str) -> str | None:
        start.wait()
        return client.find_by_key(key, "test")

    with ThreadPoolExecutor(len(keys)) as pool:
        assert list(pool.map(look_up, keys)) == [None] * len(keys)
        assert len(server.grants) == 1
        assert server.most_at_once >= 2  # the requests did go at once, on one token

        server.revoke_tokens()  # every request in flight is refused with 401 together
        start.reset()

        assert list(pool.map(look_up, keys)) == [None] * len(keys)
        assert len(server.grants) == 2  # one new login for all of them


# -- Maskinporten ------------------------------------------------------------------------------


def test_contract_grant_has_exactly_the_documented_claims(
    db: Database, settings: Settings, client: AltinnClient, server: AltinnServer, campaign_id: int
) -> None:
    send(db, settings, campaign_id, client=client)

    ((header, claims),) = server.grants  # one login serves the whole run
    assert header == {"alg": "RS256", "kid": KEY_ID}
    assert sorted(claims) == ["aud", "exp", "iat", "iss", "jti", "scope"]
    assert (claims["aud"], claims["iss"], claims["scope"]) == (
        server.issuer,
        CLIENT_ID,
        "altinn:correspondence.write",
    )
    assert claims["exp"] - claims["iat"] == 120


def test_contract_grant_signed_with_another_key_is_refused(
    server: AltinnServer, tmp_path: Path
) -> None:
    other = tmp_path / "other.pem"
    other.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    settings = Settings.load(environ=altinn_env(server, other))

    with (
        AltinnClient(AltinnConfig.from_settings(settings), sleep=Sleeps()) as client,
        pytest.raises(AltinnAuthError) as raised,
    ):
        client.find_by_key(idempotent_key(1, EY, "0" * 12), "test")

    assert raised.value.message == (
        "Maskinporten avviste innloggingen (HTTP 400: invalid_grant Invalid assertion. Client "
        "authentication failed.)"
    )


def test_contract_refused_token_means_one_new_login(
    db: Database, settings: Settings, client: AltinnClient, server: AltinnServer, campaign_id: int
) -> None:
    send(db, settings, campaign_id, client=client, limit=1)
    server.revoke_tokens()

    result = send(db, settings, campaign_id, client=client)

    assert result.submitted == 2
    assert len(server.grants) == 2


# -- polling -----------------------------------------------------------------------------------


def test_contract_poll_settles_published_and_failed(
    db: Database, settings: Settings, client: AltinnClient, server: AltinnServer, campaign_id: int
) -> None:
    send(db, settings, campaign_id, client=client)
    server.set_status(server.by_recipient(NORDEA)[0].id, "Published")
    server.set_status(
        server.by_recipient(EY)[0].id, "Failed", "Recipient organization is bankrupt or deleted"
    )

    result = poll(db, settings, campaign_id, client=client)

    assert (result.delivered, result.failed, result.waiting) == (1, 1, 1)
    rows = altinn_rows(db, campaign_id)
    assert (rows[NORDEA][0], rows[EY][0], rows[TELENOR][0]) == ("delivered", "failed", "submitted")
    reason = db.scalar(
        "SELECT last_reply FROM deliveries WHERE campaign_id = ? AND key = ?", (campaign_id, EY)
    )
    assert reason == "Failed: Recipient organization is bankrupt or deleted"
    assert [e["status"] for e in events(db, campaign_id, "altinn_delivered")] == ["Published"]


def test_contract_status_prints_the_counts_on_one_line_and_each_failure(
    db_url: str,
    db: Database,
    settings: Settings,
    client: AltinnClient,
    server: AltinnServer,
    campaign_id: int,
) -> None:
    send(db, settings, campaign_id, client=client)
    server.set_status(server.by_recipient(NORDEA)[0].id, "Published")
    server.set_status(server.by_recipient(EY)[0].id, "Failed", "Recipient is bankrupt")
    poll(db, settings, campaign_id, client=client)

    result = CliRunner().invoke(
        cli, ["altinn", "status", str(campaign_id)], env={"VARSEL_DATABASE_URL": db_url}
    )

    assert result.exit_code == 0
    assert result.output.splitlines() == [
        f"Kampanje {campaign_id}: 1 levert i Altinn, 1 venter på publisering, 0 ikke tatt imot "
        "ennå, 1 feilet.",
        f"  {EY}  Altinn kunne ikke publisere meldingen. Altinns forklaring: Recipient is bankrupt",
    ]


def test_contract_read_counts_as_delivered_and_shows_in_coverage(
    db: Database, settings: Settings, client: AltinnClient, server: AltinnServer, campaign_id: int
) -> None:
    send(db, settings, campaign_id, client=client)
    made = server.by_recipient(TELENOR)[0].id
    for status in ("Published", "Fetched", "Read"):
        server.set_status(made, status)

    poll(db, settings, campaign_id, client=client)

    assert altinn_rows(db, campaign_id)[TELENOR][0] == "delivered"
    assert coverage(db, campaign_id).outcomes[Outcome.ALTINN_DELIVERED] == 1


def test_contract_poll_again_asks_only_for_the_unsettled(
    db: Database, settings: Settings, client: AltinnClient, server: AltinnServer, campaign_id: int
) -> None:
    send(db, settings, campaign_id, client=client)
    server.set_status(server.by_recipient(NORDEA)[0].id, "Published")
    poll(db, settings, campaign_id, client=client)
    asked = len([r for r in server.requests if r[1].endswith("/details")])

    poll(db, settings, campaign_id, client=client)

    assert len([r for r in server.requests if r[1].endswith("/details")]) - asked == 2


def replies(db: Database, campaign_id: int) -> dict[str, tuple[str, str | None]]:
    """orgnr → (state, last reply) of the campaign's Altinn deliveries."""
    return {
        r[0]: (r[1], r[2])
        for r in db.query(
            "SELECT key, state, last_reply FROM deliveries WHERE campaign_id = ? "
            "AND channel = 'altinn'",
            (campaign_id,),
        )
    }


def publish_all(server: AltinnServer) -> None:
    for made in list(server.correspondences.values()):
        server.set_status(made.id, "Published")


def test_contract_poll_four_at_once_records_every_status(
    db: Database, settings: Settings, client: AltinnClient, server: AltinnServer, many_id: int
) -> None:
    send(db, settings, many_id, client=client)
    expected: dict[str, tuple[str, str]] = {}  # orgnr → (state, last reply)
    for i, (orgnr, (_, made, _)) in enumerate(sorted(altinn_rows(db, many_id).items())):
        assert made is not None
        match i % 6:
            case 0:
                server.set_status(made, "Published")
                expected[orgnr] = ("delivered", "Published")
            case 1:
                server.set_status(made, "Failed", "Recipient organization is bankrupt or deleted")
                expected[orgnr] = (
                    "failed",
                    "Failed: Recipient organization is bankrupt or deleted",
                )
            case 2:
                server.set_status(made, "Published")
                server.set_status(made, "Read")
                expected[orgnr] = ("delivered", "Read")
            case 3:
                server.set_status(made, "ReadyForPublish")
                expected[orgnr] = ("submitted", "ReadyForPublish")
            case 4:
                with server.lock:
                    del server.correspondences[made]  # Altinn no longer knows it: 404
                expected[orgnr] = ("failed", "Failed: finnes ikke i Altinn")
            case _:
                expected[orgnr] = ("submitted", "Initialized")
    server.most_at_once = 0
    server.delay = 0.1
    progress: list[tuple[int, int]] = []

    result = poll(
        db,
        settings,
        many_id,
        client=client,
        concurrency=4,
        progress=lambda n: progress.append((n, threading.get_ident())),
    )

    assert 2 <= server.most_at_once <= 4
    assert (result.delivered, result.failed, result.waiting, result.unsent) == (8, 8, 8, 0)
    assert result.interrupted is None
    assert replies(db, many_id) == expected
    assert sorted(str(e["status"]) for e in events(db, many_id, "altinn_delivered")) == (
        ["Published"] * 4 + ["Read"] * 4
    )
    assert len(events(db, many_id, "altinn_failed")) == 8
    assert len([r for r in server.requests if r[1].endswith("/details")]) == MANY
    # Recorded on the calling thread, once per correspondence.
    assert progress == [(1, threading.get_ident())] * MANY


def test_contract_altinn_down_midway_poll_loses_nothing_and_the_next_poll_finishes(
    db: Database, settings: Settings, client: AltinnClient, server: AltinnServer, many_id: int
) -> None:
    send(db, settings, many_id, client=client)
    publish_all(server)
    server.delay = 0.05
    server.details_down_after = 10  # Altinn tells ten statuses, then answers 503 to everything

    stopped = poll(db, settings, many_id, client=client, concurrency=4)

    assert stopped.interrupted is not None
    assert stopped.interrupted.startswith("status for Altinn-melding ")
    assert stopped.interrupted.endswith(
        "ikke svar etter 5 forsøk (HTTP 503: Service Unavailable); kjør kommandoen igjen senere"
    )
    # Every status Altinn told is recorded, also those of requests in flight beside the stop.
    assert (stopped.delivered, stopped.failed, stopped.waiting) == (10, 0, MANY - 10)
    states = [state for state, _ in replies(db, many_id).values()]
    assert (states.count("delivered"), states.count("submitted")) == (10, MANY - 10)
    assert len(events(db, many_id, "altinn_delivered")) == 10
    # Nothing started after the stop: the ten told, and at most four in flight when it came.
    asked = {path for _, path in server.requests if path.endswith("/details")}
    assert 10 < len(asked) <= 10 + 4

    server.details_down_after = None
    finished = poll(db, settings, many_id, client=client, concurrency=4)

    assert (finished.delivered, finished.failed, finished.waiting) == (MANY - 10, 0, 0)
    assert finished.interrupted is None
    assert {state for state, _ in replies(db, many_id).values()} == {"delivered"}
    assert len(events(db, many_id, "altinn_delivered")) == MANY  # each recorded once
    assert server.most_at_once <= 4


def test_contract_cli_polls_as_many_at_once_as_asked(
    db_url: str,
    db: Database,
    settings: Settings,
    client: AltinnClient,
    server: AltinnServer,
    key_file: Path,
    many_id: int,
) -> None:
    send(db, settings, many_id, client=client)
    publish_all(server)
    server.most_at_once = 0
    server.delay = 0.05
    env = {**altinn_env(server, key_file), "VARSEL_DATABASE_URL": db_url}

    result = CliRunner().invoke(
        cli, ["altinn", "poll", str(many_id), "--concurrency", "2", "--json"], env=env
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1]) == {
        "campaign_id": many_id,
        "delivered": MANY,
        "failed": 0,
        "waiting": 0,
        "unsent": 0,
        "interrupted": None,
    }
    assert server.most_at_once == 2
    assert {state for state, _ in replies(db, many_id).values()} == {"delivered"}


# -- settings ----------------------------------------------------------------------------------


def test_altinn_is_off_by_default(db: Database, campaign_id: int) -> None:
    with pytest.raises(AltinnConfigError) as raised:
        send(db, Settings.load(environ={}), campaign_id)

    assert raised.value.message == (
        "Altinn-kanalen er slått av; sett VARSEL_ALTINN_ENABLED=true når Altinn-ressursen og "
        "Maskinporten-klienten er på plass (se docs/altinn.md)"
    )
    assert altinn_rows(db, campaign_id) == {}


def config_refusal(server: AltinnServer, key_file: Path, name: str, value: str) -> str:
    """Why the Altinn settings are refused with one of them set to value."""
    env = {**altinn_env(server, key_file), name: value}
    with pytest.raises(AltinnConfigError) as raised:
        AltinnConfig.from_settings(Settings.load(environ=env))
    return raised.value.message


def test_a_setting_from_the_settings_file_is_named_by_the_file_and_key(
    server: AltinnServer, key_file: Path, tmp_path: Path
) -> None:
    env = {k: v for k, v in altinn_env(server, key_file).items() if k != "VARSEL_ALTINN_BASE_URL"}
    config = tmp_path / "varsel.toml"
    config.write_text("[varsel]\naltinn_base_url = 'http://platform.altinn.no'\n", "utf-8")
    with pytest.raises(AltinnConfigError) as raised:
        AltinnConfig.from_settings(Settings.load(environ=env, config_file=config))
    assert raised.value.message == (
        f"{config}, linje 2: [varsel] altinn_base_url: «http://platform.altinn.no» må være en "
        "https-adresse"
    )


def test_missing_setting_is_named_by_its_environment_variable(
    server: AltinnServer, key_file: Path
) -> None:
    assert config_refusal(server, key_file, "VARSEL_ALTINN_KEY_ID", "") == (
        "VARSEL_ALTINN_KEY_ID mangler (se docs/altinn.md)"
    )


def test_plain_http_is_refused_off_this_machine(server: AltinnServer, key_file: Path) -> None:
    url = "http://platform.altinn.no"
    assert config_refusal(server, key_file, "VARSEL_ALTINN_BASE_URL", url) == (
        "VARSEL_ALTINN_BASE_URL: «http://platform.altinn.no» må være en https-adresse"
    )


def test_concurrency_setting_defaults_to_four_and_is_read_from_the_environment(
    db: Database, server: AltinnServer, key_file: Path, campaign_id: int
) -> None:
    assert Settings.load(environ={}).altinn_concurrency == 4
    settings = Settings.load(
        environ={**altinn_env(server, key_file), "VARSEL_ALTINN_CONCURRENCY": "1"}
    )
    server.delay = 0.05

    with AltinnClient(AltinnConfig.from_settings(settings), sleep=Sleeps()) as client:
        result = send(db, settings, campaign_id, client=client)

    assert result.submitted == 3
    assert server.most_at_once == 1


def test_concurrency_below_one_is_refused_by_its_environment_variable(
    server: AltinnServer, key_file: Path
) -> None:
    # The settings' own range refuses it, before any Altinn setting is looked at.
    env = {**altinn_env(server, key_file), "VARSEL_ALTINN_CONCURRENCY": "0"}
    with pytest.raises(ConfigError) as raised:
        Settings.load(environ=env)
    assert raised.value.message == (
        "VARSEL_ALTINN_CONCURRENCY: 0 er utenfor det tillatte området 1–64"
    )


# -- the pieces --------------------------------------------------------------------------------


def test_names_are_markdown_escaped() -> None:
    assert markdown_text("Lille *Kafé* [AS](x)") == r"Lille \*Kafé\* \[AS\]\(x\)"


def test_retry_after_as_an_http_date() -> None:
    assert _retry_after("Wed, 21 Oct 2015 07:28:30 GMT", 1445412500.0) == 10.0


def test_purged_after_publishing_is_delivered() -> None:
    details = {
        "status": "PurgedByRecipient",
        "statusHistory": [{"status": "Initialized"}, {"status": "Published"}],
    }

    assert outcome_of(details) == (DeliveryState.DELIVERED, "PurgedByRecipient")


def test_status_as_number_is_read_by_its_name() -> None:
    assert outcome_of({"status": 2}) == (DeliveryState.DELIVERED, "Published")


def test_nynorsk_message_for_a_bounced_unit(db: Database, campaign_id: int) -> None:
    from varsel.campaign import get_campaign

    texts = AltinnTexts(get_campaign(db, campaign_id).spec)

    content = texts.render(EY, "Ernst & Young AS", "nn", "ABCD2345WXYZ", "bounced")

    assert content.language == "nn"
    assert content.title == "Førebyggjande tryggleiksinformasjon frå Oslo politidistrikt og NSR"
    assert "Vi sende dette på e-post, men e-posten kom ikkje fram." in content.body
    assert "**ABCD-2345-WXYZ**" in content.body


def test_cli_send_wants_the_campaigns_approval(
    db_url: str, db: Database, server: AltinnServer, key_file: Path, campaign_id: int
) -> None:
    env = {**altinn_env(server, key_file), "VARSEL_DATABASE_URL": db_url}

    result = CliRunner().invoke(cli, ["altinn", "send", str(campaign_id)], env=env)

    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        f"varsel: kampanje {campaign_id} er ikke godkjent: en godkjenner som ikke skrev den må "
        f"godkjenne den først (varsel campaign approve {campaign_id} --user NAVN)"
    )
    assert server.correspondences == {}


def test_contract_status_says_a_refusal_in_bokmaal_with_altinns_own_words(
    db_url: str,
    db: Database,
    settings: Settings,
    client: AltinnClient,
    server: AltinnServer,
    campaign_id: int,
) -> None:
    server.reserved.add(EY)
    send(db, settings, campaign_id, client=client)
    env = {"VARSEL_DATABASE_URL": db_url}

    text = CliRunner().invoke(cli, ["altinn", "status", str(campaign_id)], env=env)
    as_json = CliRunner().invoke(cli, ["altinn", "status", str(campaign_id), "--json"], env=env)

    said = (
        "Altinn avviste meldingen: virksomheten har reservert seg mot digitale meldinger. "
        f"Altinns svar (HTTP 422, CORR-1030): Recipient {EY} has reserved themselves from public "
        "correspondences. Can be overridden using the 'IgnoreReservation' flag"
    )
    assert text.exit_code == 0
    assert text.output.splitlines()[1] == f"  {EY}  {said}"
    (failure,) = json.loads(as_json.output)["failures"]
    assert failure["orgnr"] == EY
    assert failure["reason"] == said
    # What Altinn said, as stored: a program's field that does not change with the wording.
    assert failure["altinn_reply"].startswith("HTTP 422 CORR-1030: ")
    assert failure["altinn_reply"].endswith("using the 'IgnoreReservation' flag")


@pytest.mark.parametrize(
    ("lang", "plural_you", "why", "next_time"),
    [
        ("nb", r"\bdere\b", "Derfor får du", "så kan vi nå virksomheten på e-post"),
        ("nn", r"\b(de|dykk|dykkar)\b", "Difor får du", "så kan vi nå verksemda på e-post"),
        ("en", None, "That is why you receive", "so that we can reach your business by e-mail"),
    ],
)
@pytest.mark.parametrize("reason", ["no_email", "bounced"])
def test_the_altinn_message_says_du_throughout_as_the_letter_does(
    db: Database,
    campaign_id: int,
    lang: str,
    plural_you: str | None,
    why: str,
    next_time: str,
    reason: str,
) -> None:
    from varsel.campaign import get_campaign

    texts = AltinnTexts(get_campaign(db, campaign_id).spec)

    body = texts.render(EY, "Ernst & Young AS", lang, "ABCD2345WXYZ", reason).body

    assert why in body
    # The address is the business's, so the next e-mail reaches the business, not «you».
    assert next_time in body
    if plural_you is not None:
        assert re.search(plural_you, body, re.IGNORECASE) is None
    # Every value the template fills in is still there.
    assert "**ABCD-2345-WXYZ**" in body
    assert "`https://www.politiet.no/varsel/kontroll`" in body
    assert "Oslo politidistrikt og NSR" in body


def test_a_send_summary_says_one_in_the_singular() -> None:
    one = SendRun(
        campaign_id=7,
        submitted=1,
        failed=1,
        waiting=1,
        suppressed=1,
        not_in_registry=1,
        before=1,
        interrupted="Altinn svarer ikke",
    )

    assert one.summary().splitlines() == [
        "Kampanje 7: 1 melding tatt imot av Altinn; «varsel altinn poll 7» viser når den er "
        "publisert.",
        "1 enhet kan ikke få melding i Altinn (se «varsel altinn status 7»).",
        "1 enhet har bedt om ikke å bli kontaktet.",
        "1 enhet er ikke lenger i registeret.",
        "1 enhet fikk Altinn-melding i en tidligere kjøring.",
        "Stoppet: Altinn svarer ikke",
        "1 melding venter; kjør «varsel altinn send 7» igjen (den sendes med samme nøkkel og "
        "kommer ikke dobbelt).",
    ]
    two = SendRun(7, 2, 2, 2, 2, 2, 2)
    assert two.summary().splitlines() == [
        "Kampanje 7: 2 meldinger tatt imot av Altinn; «varsel altinn poll 7» viser når de er "
        "publisert.",
        "2 enheter kan ikke få melding i Altinn (se «varsel altinn status 7»).",
        "2 enheter har bedt om ikke å bli kontaktet.",
        "2 enheter er ikke lenger i registeret.",
        "2 enheter fikk Altinn-melding i en tidligere kjøring.",
        "2 meldinger venter; kjør «varsel altinn send 7» igjen (de sendes med samme nøkkel og "
        "kommer ikke dobbelt).",
    ]
