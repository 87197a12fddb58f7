"""Where DKIM keys live, and making the one a campaign needs on first use."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from varsel.config import Settings
from varsel.dkim import DkimKeyError, check_key_dir, generate_key, load_key, signing_domain


def key_dir(settings: Settings) -> Path:
    """The folder of private keys (outside the repository; from settings)."""
    return Path(settings.dkim_key_dir).expanduser()


def key_path(settings: Settings, domain: str, selector: str) -> Path:
    """The private key file of a domain and selector."""
    return key_dir(settings) / f"{selector}._domainkey.{signing_domain(domain)}.pem"


def ensure_key(
    settings: Settings, domain: str, selector: str, *, ed25519: bool = False
) -> str | None:
    """Make the campaign's keys when missing: RSA, and with ed25519 the Ed25519 key too (its
    selector is the RSA one's with an «e»); returns a notice with the DNS records, or None."""
    wanted = [(selector, "rsa")] + ([(f"{selector}e", "ed25519")] if ed25519 else [])
    notices = []
    for name, algorithm in wanted:
        if key_path(settings, domain, name).exists():
            continue
        files = generate_key(key_dir(settings), domain, name, algorithm)
        notices.append(
            f"Ny DKIM-nøkkel for {domain} er laget i {files.private_key}.\n"
            "Publiser denne DNS-posten før utsendelsen, ellers vil mottakernes e-posttjenester "
            f"ikke kunne kontrollere signaturen:\n{files.dns_record()}"
        )
    return "\n".join(notices) or None


@dataclass(frozen=True)
class KeyInfo:
    """A private key in the key folder: what it signs for and the DNS record to publish."""

    domain: str  # A-label, from the file name
    selector: str
    path: Path
    algorithm: str | None  # rsa or ed25519; None when the file cannot be used
    dns_record: str | None  # the zone file line, None when the file cannot be used
    problem: str | None  # why the file cannot be used (unreadable, not a key, too short)

    def as_dict(self) -> dict[str, object]:
        """For --json."""
        return {
            "domain": self.domain,
            "selector": self.selector,
            "path": str(self.path),
            "algorithm": self.algorithm,
            "dns_record": self.dns_record,
            "problem": self.problem,
        }


KEY_SUFFIX = "._domainkey."  # <selector>._domainkey.<domain>.pem, as generate_key names them


def list_keys(settings: Settings) -> list[KeyInfo]:
    """Every key in the key folder, by domain and selector; a file that is no key says why.

    A folder that does not exist has none; a key folder that is a file is refused.
    """
    directory = key_dir(settings)
    check_key_dir(directory)
    if not directory.is_dir():
        return []
    found = []
    for path in directory.glob(f"*{KEY_SUFFIX}*.pem"):
        selector, _, domain = path.name.removesuffix(".pem").partition(KEY_SUFFIX)
        try:
            key = load_key(path, domain, selector)
        except DkimKeyError as e:
            # The message names the file, which the listing shows above it.
            why = e.message.removeprefix(f"{path}: ")
            found.append(KeyInfo(domain, selector, path, None, None, why))
            continue
        found.append(KeyInfo(key.domain, key.selector, path, key.algorithm, key.dns_record(), None))
    return sorted(found, key=lambda k: (k.domain, k.selector, k.path.name))
