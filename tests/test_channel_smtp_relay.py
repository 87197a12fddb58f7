"""The relay's configuration: RelayConfig parsed from a URL, and shown without its password."""

from __future__ import annotations

import pytest

from varsel.channel.smtp_relay import RelayConfig
from varsel.errors import UserError


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://relay.example", RelayConfig("relay.example", 25, "none")),
        ("SMTP://Relay.Example:2525/", RelayConfig("relay.example", 2525, "none")),
        ("smtps://relay.example", RelayConfig("relay.example", 465, "tls")),
        ("smtp+starttls://relay.example", RelayConfig("relay.example", 587, "starttls")),
        ("smtp://[::1]:2525", RelayConfig("::1", 2525, "none")),
        (
            "smtp+starttls://u%40x.example:p%2Fw%40rd@relay.example:2587"
            "?verify=false&ca=/etc/ca.pem&helo=varsel.example&timeout=5",
            RelayConfig(
                "relay.example",
                2587,
                "starttls",
                username="u@x.example",
                password="p/w@rd",  # noqa: S106
                helo_name="varsel.example",
                timeout=5.0,
                verify_tls=False,
                ca_file="/etc/ca.pem",
            ),
        ),
    ],
)
def test_from_url(url: str, expected: RelayConfig) -> None:
    assert RelayConfig.from_url(url) == expected


def test_redacted_hides_the_password_and_shows_the_port() -> None:
    config = RelayConfig.from_url("smtps://varsel:hemmelig@relay.example")
    assert config.redacted() == "smtps://varsel:***@relay.example:465"
    assert "hemmelig" not in repr(config)
    assert RelayConfig.from_url("smtp://[::1]").redacted() == "smtp://[::1]:25"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "http://relay.example",
            "ugyldig SMTP-adresse http://relay.example: "
            "må begynne med smtp://, smtp+starttls:// eller smtps://",
        ),
        ("smtp://", "ugyldig SMTP-adresse smtp://: mangler vertsnavn"),
        (
            "smtp://relay.example:99999",
            "ugyldig SMTP-adresse smtp://relay.example:99999: vertsnavn eller port kan ikke tolkes",
        ),
        (
            "smtp://relay.example:port",
            "ugyldig SMTP-adresse smtp://relay.example:port: vertsnavn eller port kan ikke tolkes",
        ),
        (
            "smtp://relay.example:0",
            "ugyldig SMTP-adresse smtp://relay.example:0: ugyldig portnummer for SMTP: 0",
        ),
        (
            "smtp://relay.example/sti",
            "ugyldig SMTP-adresse smtp://relay.example/sti: skal ikke ha sti eller #-del",
        ),
        (
            "smtp://relay.example?verify=kanskje",
            "ugyldig SMTP-adresse smtp://relay.example?verify=kanskje: "
            "ukjent eller ugyldig valg verify=kanskje",
        ),
        (
            "smtp://relay.example?timeout=lenge",
            "ugyldig SMTP-adresse smtp://relay.example?timeout=lenge: "
            "timeout=lenge er ikke et tall",
        ),
        (
            "smtp://relay.example?timeout=0",
            "ugyldig SMTP-adresse smtp://relay.example?timeout=0: "
            "tidsgrensen for SMTP må være over null: 0.0",
        ),
        (
            "smtp://relay.example?helo=bl%C3%A5b%C3%A6r",
            "ugyldig SMTP-adresse smtp://relay.example?helo=bl%C3%A5b%C3%A6r: "
            "ugyldig HELO-navn for SMTP: «blåbær»",
        ),
        (
            "smtp://varsel@relay.example",
            "ugyldig SMTP-adresse smtp://varsel@relay.example: "
            "pålogging trenger både brukernavn og passord (bruker:passord@)",
        ),
        (
            "smtp://varsel:hemmelig@relay.example?bogus=1",
            "ugyldig SMTP-adresse smtp://varsel:***@relay.example?bogus=1: "
            "ukjent eller ugyldig valg bogus=1",
        ),
        (
            "smtp://varsel:hem@lig@relay.example:x",
            "ugyldig SMTP-adresse smtp://varsel:***@relay.example:x: "
            "vertsnavn eller port kan ikke tolkes",
        ),
    ],
)
def test_from_url_refuses_bad_urls_in_one_line(url: str, message: str) -> None:
    with pytest.raises(UserError) as caught:
        RelayConfig.from_url(url)
    assert caught.value.message == message
    assert "hemmelig" not in caught.value.message
