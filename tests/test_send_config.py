"""How a campaign is sent, read from its definition: options and signing keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import campaign_toml
from varsel.campaign_spec import CampaignSpec, load_spec
from varsel.config import Settings
from varsel.keys import ensure_key, key_path
from varsel.send_config import SendError, SendOptions, key_paths


def spec(tmp_path: Path, settings: Settings, **sections: str) -> CampaignSpec:
    path = tmp_path / "c.toml"
    path.write_text(campaign_toml(**sections), "utf-8")
    return load_spec(path, settings)


def test_options_come_from_the_campaigns_limits_and_the_overrides_given(
    tmp_path: Path, settings: Settings
) -> None:
    limits = "connections = 8\nrate_per_second = 20\nretry_hours = 12\n"
    options = SendOptions.for_campaign(
        spec(tmp_path, settings, limits=limits), connections=None, batch=50
    )
    assert (options.connections, options.rate_per_second, options.deadline_hours) == (8, 20, 12)
    assert options.batch == 50  # given
    assert options.retry_base_seconds == 60.0  # not in [limits]: the default


def test_key_paths_name_rsa_then_ed25519(tmp_path: Path, settings: Settings) -> None:
    campaign = spec(tmp_path, settings, sender="dkim_ed25519 = true\n")
    ensure_key(settings, "nsr-org.no", "varsel", ed25519=True)
    assert key_paths(settings, campaign) == [
        (str(key_path(settings, "nsr-org.no", "varsel")), "nsr-org.no", "varsel"),
        (str(key_path(settings, "nsr-org.no", "varsele")), "nsr-org.no", "varsele"),
    ]


def test_a_missing_key_means_the_campaign_cannot_be_sent(
    tmp_path: Path, settings: Settings
) -> None:
    campaign = spec(tmp_path, settings)
    path = key_path(settings, "nsr-org.no", "varsel")
    with pytest.raises(SendError) as raised:
        key_paths(settings, campaign)
    assert raised.value.message == (
        f"DKIM-nøkkelen {path} finnes ikke; lag den med «varsel keys generate --domain "
        "nsr-org.no --selector varsel» og publiser DNS-posten"
    )


def test_a_missing_ed25519_key_is_named_with_its_algorithm(
    tmp_path: Path, settings: Settings
) -> None:
    # Made as «keys generate» makes keys unless told, it would be a second RSA key.
    campaign = spec(tmp_path, settings, sender="dkim_ed25519 = true\n")
    ensure_key(settings, "nsr-org.no", "varsel")
    path = key_path(settings, "nsr-org.no", "varsele")
    with pytest.raises(SendError) as raised:
        key_paths(settings, campaign)
    assert raised.value.message == (
        f"DKIM-nøkkelen {path} finnes ikke; lag den med «varsel keys generate --domain "
        "nsr-org.no --selector varsele --algorithm ed25519» og publiser DNS-posten"
    )


@pytest.mark.parametrize(
    ("rate", "connections", "batch", "claimed"),
    [
        (50.0, 4, 400, 100),  # the default rate: two seconds of sending
        (40.0, 16, 400, 80),
        (1e9, 16, 400, 400),  # no real limit: the batch
        (1.0, 4, 400, 8),  # a trickle: still one for each connection and the next
        (1000.0, 64, 100, 128),
    ],
)
def test_a_sender_claims_about_two_seconds_of_its_rate(
    rate: float, connections: int, batch: int, claimed: int
) -> None:
    options = SendOptions(rate_per_second=rate, connections=connections, batch=batch)
    assert options.claim_size == claimed
