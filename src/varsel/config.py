"""One frozen Settings, built once from defaults, an optional TOML file and the environment."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from varsel.errors import ConfigError


def _setting(default: Any, help: str, env: str) -> Any:
    return dataclasses.field(default=default, metadata={"help": help, "env": env})


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every setting varsel reads; each has a default, a help text and an environment name."""

    database_url: str = _setting(
        "varsel.db",
        "Store: a SQLite file path or sqlite:/// URL, or a postgresql:// URL.",
        "VARSEL_DATABASE_URL",
    )
    registry_base_url: str = _setting(
        "https://data.brreg.no/enhetsregisteret/api",
        "Base URL of Enhetsregisteret's open API (dumps are under /enheter/lastned).",
        "VARSEL_REGISTRY_BASE_URL",
    )
    download_timeout: float = _setting(
        60.0,
        "Seconds to wait for the registry server before a download gives up.",
        "VARSEL_DOWNLOAD_TIMEOUT",
    )
    smtp_url: str = _setting(
        "smtp://127.0.0.1:25",
        "Mail relay: smtp://host:port, smtps:// (TLS), smtp+starttls://, optional user:password@.",
        "VARSEL_SMTP_URL",
    )
    dkim_key_dir: str = _setting(
        "~/.config/varsel/dkim",
        "Folder of DKIM private keys (<domain>.<selector>.pem); keep it outside the repository.",
        "VARSEL_DKIM_KEY_DIR",
    )
    public_base_url: str = _setting(
        "https://varsel.example.no",
        "Public address of the verify, feedback and unsubscribe pages (the authority's own site).",
        "VARSEL_PUBLIC_BASE_URL",
    )
    allow_test_domains: bool = _setting(
        False,
        "Accept .test addresses (for test set-ups on loopback only).",
        "VARSEL_ALLOW_TEST_DOMAINS",
    )
    web_host: str = _setting(
        "127.0.0.1",
        "Address `varsel serve` listens on (put a TLS-terminating proxy in front).",
        "VARSEL_WEB_HOST",
    )
    web_port: int = _setting(8000, "Port `varsel serve` listens on.", "VARSEL_WEB_PORT")
    forwarded_allow_ips: str = _setting(
        "127.0.0.1",
        "Proxies trusted to set X-Forwarded-For (comma-separated), so limits see the real IP.",
        "VARSEL_FORWARDED_ALLOW_IPS",
    )
    secret_key: str = _setting(
        "",
        "Secret for signed links, form tokens and hashed IPs; same on every worker. "
        "Unset: a random one per process (links and limits then do not survive a restart).",
        "VARSEL_SECRET_KEY",
    )
    user: str = _setting(
        "",
        "Operator account of `campaign create` and `campaign approve` when --user is not given "
        "(the password and code are asked for, or read from VARSEL_PASSWORD and VARSEL_TOTP).",
        "VARSEL_USER",
    )
    allow_no_approval: bool = _setting(
        True,
        "Whether `campaign send --no-approval` may skip four-eyes approval; set false in "
        "production so that no one can send alone.",
        "VARSEL_ALLOW_NO_APPROVAL",
    )
    session_idle_minutes: float = _setting(
        30.0,
        "Minutes without activity after which a console session ends.",
        "VARSEL_SESSION_IDLE_MINUTES",
    )
    session_hours: float = _setting(
        12.0, "Hours after sign-in at which a session ends anyway.", "VARSEL_SESSION_HOURS"
    )
    lockout_failures: int = _setting(
        5,
        "Failed sign-ins in a row (wrong password or code) that lock an account.",
        "VARSEL_LOCKOUT_FAILURES",
    )
    lockout_minutes: float = _setting(
        15.0, "Minutes a locked account stays locked.", "VARSEL_LOCKOUT_MINUTES"
    )
    totp_issuer: str = _setting(
        "varsel",
        "Name the authenticator app shows for varsel accounts (e.g. Oslo politidistrikt).",
        "VARSEL_TOTP_ISSUER",
    )
    password_memory_kib: int = _setting(
        65536,
        "Memory (KiB) argon2id spends on each password hash: 65536 is RFC 9106's choice; "
        "hashes made with other values are renewed at the next sign-in.",
        "VARSEL_PASSWORD_MEMORY_KIB",
    )
    sign_in_per_ip: int = _setting(
        20,
        "Console sign-in and enrolment attempts one IP address may make per window "
        "(successful ones count too).",
        "VARSEL_SIGN_IN_PER_IP",
    )
    sign_in_window_seconds: int = _setting(
        900,
        "Length of the per-IP console sign-in window, in seconds.",
        "VARSEL_SIGN_IN_WINDOW_SECONDS",
    )
    sign_in_global_per_minute: int = _setting(
        60,
        "Console sign-in and enrolment attempts per minute from everyone together: caps "
        "password spraying from many addresses, and the CPU the password hashes take.",
        "VARSEL_SIGN_IN_GLOBAL_PER_MINUTE",
    )
    verify_per_ip: int = _setting(
        10, "Code lookups one IP address may make per window.", "VARSEL_VERIFY_PER_IP"
    )
    verify_window_seconds: int = _setting(
        600, "Length of the per-IP lookup window, in seconds.", "VARSEL_VERIFY_WINDOW_SECONDS"
    )
    verify_global_per_minute: int = _setting(
        600,
        "Code lookups per minute from everyone together: caps guessing by many addresses.",
        "VARSEL_VERIFY_GLOBAL_PER_MINUTE",
    )
    feedback_per_ip_hour: int = _setting(
        10, "Feedback forms one IP address may send per hour.", "VARSEL_FEEDBACK_PER_IP_HOUR"
    )
    document_per_ip_hour: int = _setting(
        10,
        "Document links one IP address may ask for per hour.",
        "VARSEL_DOCUMENT_PER_IP_HOUR",
    )
    document_per_address_day: int = _setting(
        3,
        "Document links one e-mail address may receive per day (so the form cannot flood it).",
        "VARSEL_DOCUMENT_PER_ADDRESS_DAY",
    )
    document_link_hours: float = _setting(
        24.0, "Hours a document download link stays valid.", "VARSEL_DOCUMENT_LINK_HOURS"
    )
    altinn_enabled: bool = _setting(
        False,
        "Whether `varsel altinn` may send through Altinn 3 Correspondence (docs/altinn.md).",
        "VARSEL_ALTINN_ENABLED",
    )
    altinn_base_url: str = _setting(
        "https://platform.altinn.no",
        "Altinn platform address (test: https://platform.tt02.altinn.no).",
        "VARSEL_ALTINN_BASE_URL",
    )
    altinn_maskinporten_token_url: str = _setting(
        "https://maskinporten.no/token",
        "Maskinporten's token endpoint (test: https://test.maskinporten.no/token); the grant's "
        "audience is its origin with a slash.",
        "VARSEL_ALTINN_MASKINPORTEN_TOKEN_URL",
    )
    altinn_client_id: str = _setting(
        "", "Client id of the Maskinporten client.", "VARSEL_ALTINN_CLIENT_ID"
    )
    altinn_key_id: str = _setting(
        "",
        "Key id (kid) of the public key registered on the Maskinporten client.",
        "VARSEL_ALTINN_KEY_ID",
    )
    altinn_private_key_file: str = _setting(
        "",
        "PEM file with the Maskinporten client's RSA private key; keep it outside the repository.",
        "VARSEL_ALTINN_PRIVATE_KEY_FILE",
    )
    altinn_resource_id: str = _setting(
        "",
        "Id of the Correspondence resource in Altinn's resource registry.",
        "VARSEL_ALTINN_RESOURCE_ID",
    )
    altinn_sender_orgnr: str = _setting(
        "",
        "Organisation number of the sending authority (the resource's owner).",
        "VARSEL_ALTINN_SENDER_ORGNR",
    )
    altinn_scopes: str = _setting(
        "altinn:correspondence.write",
        "Maskinporten scopes to ask for, separated by spaces.",
        "VARSEL_ALTINN_SCOPES",
    )
    altinn_subscription_key: str = _setting(
        "",
        "Altinn API subscription key (Ocp-Apim-Subscription-Key), if Altinn gave you one.",
        "VARSEL_ALTINN_SUBSCRIPTION_KEY",
    )
    altinn_timeout: float = _setting(
        30.0, "Seconds to wait for Maskinporten or Altinn to answer.", "VARSEL_ALTINN_TIMEOUT"
    )
    altinn_concurrency: int = _setting(
        4,
        "Requests `varsel altinn send` and `poll` have in flight at once (at least 1); the first "
        "goes alone.",
        "VARSEL_ALTINN_CONCURRENCY",
    )
    altinn_send_reminder: bool = _setting(
        True,
        "Whether Altinn reminds the business by e-mail or SMS if the message is unread after "
        "7 days.",
        "VARSEL_ALTINN_SEND_REMINDER",
    )
    verp_secret: str = _setting(
        "",
        "Secret that signs the bounce (VERP) envelope addresses; same for sender and bounce "
        "intake. Unset: read from verp_secret_file, made there on first use.",
        "VARSEL_VERP_SECRET",
    )
    verp_secret_file: str = _setting(
        "",
        "File holding the VERP secret when VARSEL_VERP_SECRET is unset; empty: verp.secret "
        "in the DKIM key folder. Keep it outside the repository.",
        "VARSEL_VERP_SECRET_FILE",
    )
    bounce_subdomain: str = _setting(
        "",
        "Envelope senders under this subdomain of the sender's domain (e.g. bounce gives "
        "bounces+…@bounce.nsr-org.no, still DMARC-aligned); empty: the sender's domain itself.",
        "VARSEL_BOUNCE_SUBDOMAIN",
    )
    imap_password: str = _setting(
        "", "Password of the bounce mailbox `varsel bounces poll` reads.", "VARSEL_IMAP_PASSWORD"
    )
    imap_ca_file: str = _setting(
        "",
        "CA certificates (PEM) to trust for the IMAP server; empty: the system's.",
        "VARSEL_IMAP_CA_FILE",
    )
    worker_lease_seconds: float = _setting(
        30.0,
        "Seconds a `varsel worker` holds claimed deliveries without renewing; a dead worker's "
        "deliveries come back after this long.",
        "VARSEL_WORKER_LEASE_SECONDS",
    )
    worker_global_rate: float = _setting(
        0.0,
        "Messages per second all workers together send, over every campaign (the relay's "
        "limit); 0: only the campaigns' own limits.",
        "VARSEL_WORKER_GLOBAL_RATE",
    )
    worker_metrics_port: int = _setting(
        0,
        "Port of a worker's Prometheus /metrics on 127.0.0.1; 0: none.",
        "VARSEL_WORKER_METRICS_PORT",
    )
    metrics_token: str = _setting(
        "",
        "Bearer token that `varsel serve` wants for /metrics; empty: /metrics is off.",
        "VARSEL_METRICS_TOKEN",
    )

    @classmethod
    def load(
        cls,
        environ: Mapping[str, str] | None = None,
        config_file: Path | None = None,
        **overrides: Any,
    ) -> Settings:
        """Build settings: defaults, then the TOML file, then the environment, then overrides."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        path = config_file or (Path(env["VARSEL_CONFIG"]) if "VARSEL_CONFIG" in env else None)
        if path is not None:
            values.update(_read_toml(path))
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for name, field in fields.items():
            env_name = field.metadata["env"]
            if env_name in env:
                values[name] = env[env_name]
        values.update({k: v for k, v in overrides.items() if v is not None})
        converted = {}
        for name, value in values.items():
            if name not in fields:
                raise ConfigError(f"unknown setting {name!r}")
            converted[name] = _convert(name, value, type(fields[name].default))
        return cls(**converted)

    @classmethod
    def describe(cls) -> list[tuple[str, str, Any, str]]:
        """(name, environment variable, default, help) for every setting."""
        return [
            (f.name, f.metadata["env"], f.default, f.metadata["help"])
            for f in dataclasses.fields(cls)
        ]


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read settings file: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    section = data.get("varsel", data)
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [varsel] must be a table")
    return section


def _convert(name: str, value: Any, kind: type) -> Any:
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    try:
        if kind is bool:
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError(text)
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name}: {value!r} is not a valid {kind.__name__}") from None
