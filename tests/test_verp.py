from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import stat
from pathlib import Path

import pytest

from helpers import campaign_toml
from varsel.campaign import create_campaign
from varsel.channel.smtp_relay import RelayConfig
from varsel.config import Settings
from varsel.db import Database
from varsel.errors import ConfigError
from varsel.registry import import_dump
from varsel.sender import SendOptions, send_campaign
from varsel.testing import SmtpSink
from varsel.verp import Verp, VerpError, aligned, envelope_domain, load_secret, secret_path

SECRET = b"0123456789abcdef0123456789abcdef"


def test_address_names_the_delivery_and_parses_back() -> None:
    verp = Verp(SECRET, "nsr-org.no")
    address = verp.address(4711)
    assert address.startswith("bounces+4711-")
    assert address.endswith("@nsr-org.no")
    assert len(address.split("@")[0]) == len("bounces+4711-") + 20
    assert verp.delivery_id(address) == 4711


def test_a_relay_that_changes_case_does_no_harm() -> None:
    verp = Verp(SECRET, "nsr-org.no")
    address = verp.address(12)
    assert verp.delivery_id(address.upper()) == 12
    assert verp.delivery_id(f"<{address}>") == 12


def test_a_forged_or_altered_address_names_nothing() -> None:
    verp = Verp(SECRET, "nsr-org.no")
    genuine = verp.address(12)
    mac = genuine.split("-", 1)[1].split("@")[0]
    assert verp.delivery_id(f"bounces+13-{mac}@nsr-org.no") is None
    assert verp.delivery_id("bounces+12-aaaaaaaaaaaaaaaaaaaa@nsr-org.no") is None
    assert verp.delivery_id("bounces+12@nsr-org.no") is None
    assert Verp(b"another secret, another key!!!!!").delivery_id(genuine) is None


def test_find_takes_the_first_genuine_address_in_a_text() -> None:
    verp = Verp(SECRET, "nsr-org.no")
    text = f"To: bounces+1-0123456789abcdef0123@nsr-org.no\nReturn-Path: <{verp.address(99)}>\n"
    assert verp.find(text) == 99
    assert verp.find("nothing here") is None


def test_envelope_domain_is_the_sender_domain_or_a_subdomain_and_stays_aligned() -> None:
    assert envelope_domain("NSR-org.no") == "nsr-org.no"
    assert envelope_domain("nsr-org.no", "bounce") == "bounce.nsr-org.no"
    assert envelope_domain("bærum.kommune.no") == "xn--brum-voa.kommune.no"
    assert aligned("nsr-org.no", envelope_domain("nsr-org.no", "bounce"))
    assert aligned("nsr-org.no", "nsr-org.no")
    assert not aligned("nsr-org.no", "evil-nsr-org.no")
    with pytest.raises(ConfigError, match="bounce_subdomain: ugyldig domenenavn «a b»"):
        envelope_domain("nsr-org.no", "a b")


def test_secret_from_the_environment_setting(tmp_path: Path) -> None:
    settings = Settings.load(
        environ={"VARSEL_VERP_SECRET": "x" * 20}, dkim_key_dir=str(tmp_path / "keys")
    )
    assert load_secret(settings) == load_secret(settings)
    assert not (tmp_path / "keys").exists()


def test_missing_secret_is_made_once_in_the_key_folder_readable_by_owner_only(
    tmp_path: Path,
) -> None:
    settings = Settings.load(environ={}, dkim_key_dir=str(tmp_path / "keys"))
    first = load_secret(settings)
    path = tmp_path / "keys" / "verp.secret"
    assert secret_path(settings) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_text("ascii").strip()) == 64
    assert load_secret(settings) == first


def test_secret_file_setting_and_a_too_short_secret(tmp_path: Path) -> None:
    path = tmp_path / "verp"
    path.write_text("short\n", "ascii")
    settings = Settings.load(environ={"VARSEL_VERP_SECRET_FILE": str(path)})
    with pytest.raises(VerpError, match="VERP-nøkkelen er for kort: minst 16 tegn"):
        load_secret(settings)


CAMPAIGN = campaign_toml(name="VERP", organisation="NSR", title="Råd")


def test_every_message_goes_out_with_its_signed_aligned_envelope_sender(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    settings = Settings.load(environ={}, dkim_key_dir=str(tmp_path / "keys"))
    import_dump(db, brreg / "enheter-sample.json")
    path = tmp_path / "c.toml"
    path.write_text(CAMPAIGN, "utf-8")
    campaign_id = create_campaign(db, settings, path).campaign.id
    options = SendOptions(connections=1, rate_per_second=1000, build_processes=0)
    with SmtpSink() as sink:
        send_campaign(
            db, settings, campaign_id, relay=RelayConfig.from_url(sink.url), options=options
        )
        received = sink.messages
    verp = Verp.from_settings(settings)
    ids = {r[0]: int(r[1]) for r in db.query("SELECT address, id FROM deliveries")}
    assert len(received) == len(ids) == 6
    for m in received:
        assert verp.delivery_id(m.mail_from) == ids[m.rcpt_tos[0]]
        from_header = email.message_from_bytes(m.data, policy=email.policy.default)["From"]
        assert aligned(from_header.addresses[0].domain, m.mail_from.rsplit("@", 1)[1])
        assert m.mail_from.rsplit("@", 1)[1] == "nsr-org.no"


def test_the_mac_is_truncated_hmac_sha256_of_the_id_in_hex() -> None:
    assert Verp(SECRET).mac(4711) == hmac.new(SECRET, b"4711", hashlib.sha256).hexdigest()[:20]
