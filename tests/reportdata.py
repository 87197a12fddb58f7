"""A sent campaign and the facts that follow it, for the coverage and evaluation report tests.

The campaign is created from a synthetic registry and sent to a real SMTP sink on loopback.
Code checks, document downloads and feedback go through the library's own functions. Bounces,
letters and Altinn are written to the store the way their channels record them (states from
`DeliveryState`, a row in `delivery_units`), as the schema defines them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from helpers import campaign_toml
from varsel import codes, documents, verify
from varsel.campaign import create_campaign
from varsel.channel.smtp_relay import RelayConfig
from varsel.clock import utcnow_iso
from varsel.config import Settings
from varsel.db import Database
from varsel.feedback import Channel, Feedback, store
from varsel.outbox import DeliveryState
from varsel.registry import import_dump
from varsel.sender import SendOptions, send_campaign
from varsel.suppression import SuppressionKind, SuppressionReason, add
from varsel.synth import write_dump
from varsel.testing import SmtpSink

CAMPAIGN = campaign_toml(name="{name}")
FAST = SendOptions(connections=2, rate_per_second=1000, retry_base_seconds=0.05, build_processes=0)
SECRET = b"report-tests-secret"


def settings_for(tmp_path: Path) -> Settings:
    """Settings whose DKIM keys live in the test's folder."""
    return Settings.load(environ={}, dkim_key_dir=str(tmp_path / "keys"))


def import_registry(db: Database, tmp_path: Path, units: int = 400, seed: int = 7) -> None:
    """A synthetic registry of Oslo in the store."""
    dump = tmp_path / f"enheter-{seed}.json.gz"
    if not dump.exists():
        write_dump(dump, units=units, seed=seed, municipalities=("0301",))
    import_dump(db, dump)


def new_campaign(db: Database, settings: Settings, tmp_path: Path, name: str = "Test") -> int:
    """A campaign on the whole registry (Oslo police district); returns its id."""
    path = tmp_path / f"{name}.toml"
    path.write_text(CAMPAIGN.format(name=name), "utf-8")
    return create_campaign(db, settings, path).campaign.id


def send(db: Database, settings: Settings, campaign_id: int) -> int:
    """Send the campaign to an SMTP sink on loopback; returns how many messages it received."""
    with SmtpSink() as sink:
        send_campaign(db, settings, campaign_id, relay=RelayConfig.from_url(sink.url), options=FAST)
        return len(sink.messages)


@dataclass(frozen=True)
class Sent:
    """One e-mail delivery of a campaign."""

    id: int
    address: str
    code: str
    units: tuple[str, ...]


def email_deliveries(db: Database, campaign_id: int, state: str = "sent") -> list[Sent]:
    """The campaign's e-mail deliveries in one state, by id."""
    out = []
    for delivery_id, address, code in db.query(
        "SELECT id, address, code FROM deliveries WHERE campaign_id = ? AND channel = 'email' "
        "AND state = ? ORDER BY id",
        (campaign_id, state),
    ):
        units = tuple(
            r[0]
            for r in db.query(
                "SELECT orgnr FROM delivery_units WHERE delivery_id = ? ORDER BY orgnr",
                (delivery_id,),
            )
        )
        out.append(Sent(int(delivery_id), str(address), str(code), units))
    return out


def units_without_email(db: Database, campaign_id: int) -> list[str]:
    """Recipients with no e-mail delivery, by orgnr."""
    return [
        r[0]
        for r in db.query(
            "SELECT r.orgnr FROM recipients r WHERE r.campaign_id = ? AND NOT EXISTS ("
            "SELECT 1 FROM delivery_units du JOIN deliveries d ON d.id = du.delivery_id "
            "WHERE d.campaign_id = r.campaign_id AND du.orgnr = r.orgnr) ORDER BY r.orgnr",
            (campaign_id,),
        )
    ]


def bounce(db: Database, delivery: Sent, status: str, kind: str = "hard") -> None:
    """A bounce report for a sent e-mail, recorded as bounce intake records it.

    Hard bounces and complaints turn the delivery to bounced and suppress the address; soft
    and policy bounces are only counted.
    """
    with db.transaction():
        db.execute(
            "INSERT INTO bounce_messages (key, received_at, kind, delivery_id, status, "
            "recipient, source) VALUES (?, ?, ?, ?, ?, ?, 'stdin')",
            (
                f"mid:<{secrets.token_hex(8)}@mx.example>",
                utcnow_iso(),
                kind,
                delivery.id,
                status or None,
                delivery.address,
            ),
        )
        if kind in ("hard", "complaint"):
            db.execute(
                "UPDATE deliveries SET state = ?, updated_at = ? WHERE id = ?",
                (DeliveryState.BOUNCED.value, utcnow_iso(), delivery.id),
            )
            add(
                db,
                SuppressionKind.ADDRESS,
                delivery.address,
                SuppressionReason.COMPLAINT
                if kind == "complaint"
                else SuppressionReason.HARD_BOUNCE,
                f"bounce:{delivery.id}",
            )


def set_state(db: Database, delivery_id: int, state: DeliveryState) -> None:
    """Put one delivery into a state, as its channel would."""
    with db.transaction():
        db.execute(
            "UPDATE deliveries SET state = ?, updated_at = ? WHERE id = ?",
            (state.value, utcnow_iso(), delivery_id),
        )


def channel_delivery(
    db: Database,
    campaign_id: int,
    orgnr: str,
    channel: str,
    state: DeliveryState,
    key: str | None = None,
) -> int:
    """A delivery for one unit, as letters and Altinn make them (key and address: the orgnr)."""
    now = utcnow_iso()
    with db.transaction():
        delivery_id = int(
            db.execute(
                "INSERT INTO deliveries (campaign_id, channel, key, address, language, state, "
                "code, unsubscribe_token, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, 'nb', ?, ?, ?, ?, ?) RETURNING id",
                (
                    campaign_id,
                    channel,
                    key or orgnr,
                    orgnr,
                    state.value,
                    codes.normalise(codes.new_code()),
                    secrets.token_urlsafe(18),
                    now,
                    now,
                ),
            ).fetchone()[0]
        )
        db.execute(
            "INSERT INTO delivery_units (delivery_id, orgnr) VALUES (?, ?)", (delivery_id, orgnr)
        )
    return delivery_id


def check_code(db: Database, code: str) -> None:
    """Someone types the code into the verify page."""
    assert verify.lookup(db, code) is not None


def download(db: Database, campaign_id: int, address: str) -> None:
    """Someone asks for the document at an address and opens the link."""
    issued = documents.issue(db, SECRET, campaign_id, address, valid_seconds=3600)
    assert isinstance(issued, documents.Issued)
    valid = documents.check(db, SECRET, issued.token)
    assert isinstance(valid, documents.Valid)
    documents.record_download(db, valid)


def give_feedback(
    db: Database,
    campaign_id: int,
    *,
    code: str | None = None,
    usefulness: int | None = None,
    relevant: bool | None = None,
    channel: Channel | None = None,
    comment: str | None = None,
) -> None:
    """An answer to the feedback form; with the code when it came from the verify page."""
    found = verify.by_code(db, code) if code else None
    store(
        db,
        Feedback(
            campaign_id,
            found.delivery_id if found else None,
            usefulness,
            relevant,
            channel,
            comment,
            "nb",
        ),
    )
