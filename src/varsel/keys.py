"""Where DKIM keys live, and making the one a campaign needs on first use."""

from __future__ import annotations

from pathlib import Path

from varsel.config import Settings
from varsel.dkim import generate_key, signing_domain


def key_dir(settings: Settings) -> Path:
    """The folder of private keys (outside the repository; from settings)."""
    return Path(settings.dkim_key_dir).expanduser()


def key_path(settings: Settings, domain: str, selector: str) -> Path:
    """The private key file of a domain and selector."""
    return key_dir(settings) / f"{selector}._domainkey.{signing_domain(domain)}.pem"


def ensure_key(settings: Settings, domain: str, selector: str) -> str | None:
    """Make the RSA key when missing; returns a notice with the DNS record, or None."""
    if key_path(settings, domain, selector).exists():
        return None
    files = generate_key(key_dir(settings), domain, selector, "rsa")
    return (
        f"Ny DKIM-nøkkel for {domain} er laget i {files.private_key}.\n"
        "Publiser denne DNS-posten før utsendelsen, ellers vil mottakernes e-posttjenester "
        f"ikke kunne kontrollere signaturen:\n{files.dns_record()}"
    )
