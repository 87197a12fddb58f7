"""One frozen Settings, built once from defaults, an optional TOML file and the environment."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from varsel.errors import ConfigError

# The highest count a limit takes: more than any site sees, so it turns the limit off in
# effect (the benchmarks do that), without letting a typo's extra digits overflow a column.
MANY = 1_000_000_000


def _setting(
    default: Any, help: str, env: str, *, between: tuple[float, float] | None = None
) -> Any:
    metadata: dict[str, Any] = {"help": help, "env": env}
    if between is not None:
        metadata["between"] = between  # a number's allowed range, both ends included
    return dataclasses.field(default=default, metadata=metadata)


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
        between=(0.1, 3600),
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
    web_port: int = _setting(
        8000, "Port `varsel serve` listens on.", "VARSEL_WEB_PORT", between=(1, 65535)
    )
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
        between=(1, 1440),
    )
    session_hours: float = _setting(
        12.0,
        "Hours after sign-in at which a session ends anyway.",
        "VARSEL_SESSION_HOURS",
        between=(1, 168),
    )
    lockout_failures: int = _setting(
        5,
        "Failed sign-ins in a row (wrong password or code) that lock an account.",
        "VARSEL_LOCKOUT_FAILURES",
        between=(1, 100),
    )
    lockout_minutes: float = _setting(
        15.0,
        "Minutes a locked account stays locked.",
        "VARSEL_LOCKOUT_MINUTES",
        between=(1, 10080),
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
        between=(8192, 4194304),
    )
    sign_in_per_ip: int = _setting(
        20,
        "Console sign-in and enrolment attempts one IP address may make per window "
        "(successful ones count too).",
        "VARSEL_SIGN_IN_PER_IP",
        between=(1, MANY),
    )
    sign_in_window_seconds: int = _setting(
        900,
        "Length of the per-IP console sign-in window, in seconds.",
        "VARSEL_SIGN_IN_WINDOW_SECONDS",
        between=(60, 86400),
    )
    sign_in_global_per_minute: int = _setting(
        60,
        "Console sign-in and enrolment attempts per minute from everyone together: caps "
        "password spraying from many addresses, and the CPU the password hashes take.",
        "VARSEL_SIGN_IN_GLOBAL_PER_MINUTE",
        between=(1, MANY),
    )
    verify_per_ip: int = _setting(
        10,
        "Code lookups one IP address may make per window.",
        "VARSEL_VERIFY_PER_IP",
        between=(1, MANY),
    )
    verify_window_seconds: int = _setting(
        600,
        "Length of the per-IP lookup window, in seconds.",
        "VARSEL_VERIFY_WINDOW_SECONDS",
        between=(60, 86400),
    )
    verify_global_per_minute: int = _setting(
        600,
        "Code lookups per minute from everyone together: caps guessing by many addresses.",
        "VARSEL_VERIFY_GLOBAL_PER_MINUTE",
        between=(1, MANY),
    )
    feedback_per_ip_hour: int = _setting(
        10,
        "Feedback forms one IP address may send per hour.",
        "VARSEL_FEEDBACK_PER_IP_HOUR",
        between=(1, MANY),
    )
    feedback_global_per_minute: int = _setting(
        60,
        "Feedback forms per minute from everyone together: caps a flood from many addresses.",
        "VARSEL_FEEDBACK_GLOBAL_PER_MINUTE",
        between=(1, MANY),
    )
    document_per_ip_hour: int = _setting(
        10,
        "Document links one IP address may ask for per hour.",
        "VARSEL_DOCUMENT_PER_IP_HOUR",
        between=(1, MANY),
    )
    document_per_address_day: int = _setting(
        3,
        "Document links one e-mail address may receive per day (so the form cannot flood it).",
        "VARSEL_DOCUMENT_PER_ADDRESS_DAY",
        between=(1, 100),
    )
    document_global_per_minute: int = _setting(
        30,
        "Document links per minute from everyone together: caps the e-mail the form can make "
        "the relay send.",
        "VARSEL_DOCUMENT_GLOBAL_PER_MINUTE",
        between=(1, MANY),
    )
    document_link_hours: float = _setting(
        24.0,
        "Hours a document download link stays valid.",
        "VARSEL_DOCUMENT_LINK_HOURS",
        between=(1, 168),
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
        30.0,
        "Seconds to wait for Maskinporten or Altinn to answer.",
        "VARSEL_ALTINN_TIMEOUT",
        between=(1, 600),
    )
    altinn_concurrency: int = _setting(
        4,
        "Requests `varsel altinn send` and `poll` have in flight at once (at least 1); the first "
        "goes alone.",
        "VARSEL_ALTINN_CONCURRENCY",
        between=(1, 64),
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
        between=(5, 3600),
    )
    worker_global_rate: float = _setting(
        0.0,
        "Messages per second all workers together send, over every campaign (the relay's "
        "limit); 0: only the campaigns' own limits.",
        "VARSEL_WORKER_GLOBAL_RATE",
        between=(0, 100_000),
    )
    worker_metrics_port: int = _setting(
        0,
        "Port of a worker's Prometheus /metrics on 127.0.0.1; 0: none.",
        "VARSEL_WORKER_METRICS_PORT",
        between=(0, 65535),
    )
    metrics_token: str = _setting(
        "",
        "Bearer token that `varsel serve` wants for /metrics; empty: /metrics is off.",
        "VARSEL_METRICS_TOKEN",
    )

    def __post_init__(self) -> None:
        # Here rather than in load(): settings made in code (dataclasses.replace) are checked too.
        for field in dataclasses.fields(self):
            between = field.metadata.get("between")
            value = getattr(self, field.name)
            if between is not None and not _within(value, between):
                raise ConfigError(
                    f"{_named(field)}: {_shown(value)} er utenfor det tillatte området "
                    f"{_span(between)}"
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
            converted[name] = _convert(fields[name], value)
        return cls(**converted)

    @classmethod
    def describe(cls) -> list[tuple[str, str, Any, str]]:
        """(name, environment variable, default, help) for every setting; help ends with a range."""
        return [
            (f.name, f.metadata["env"], f.default, _help(f.metadata))
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


def _help(metadata: Mapping[str, Any]) -> str:
    between = metadata.get("between")
    return metadata["help"] if between is None else f"{metadata['help']} Range: {_span(between)}."


def _named(field: dataclasses.Field[Any]) -> str:
    """A setting as an operator may have set it: its environment variable and its TOML key."""
    return f"{field.metadata['env']} ({field.name})"


def _shown(number: object) -> str:
    # 24.0 as 24: the range and the value read as the operator wrote them.
    if isinstance(number, float) and number.is_integer():
        return str(int(number))
    return str(number)


def _span(between: tuple[float, float]) -> str:
    return f"{_shown(between[0])}–{_shown(between[1])}"


def _within(value: object, between: tuple[float, float]) -> bool:
    # Written so that NaN, which compares false with everything, is outside.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return between[0] <= value <= between[1]


def _number(value: object, kind: type) -> int | float | None:
    """The value as an int or float setting, or None when it is not one (a bool is not)."""
    if isinstance(value, bool):
        return None
    try:
        if kind is int:
            if isinstance(value, float):  # from TOML: 10.0 is 10, 2.5 is no count
                return int(value) if value.is_integer() else None
            return int(value) if isinstance(value, int | str) else None
        return float(value) if isinstance(value, int | float | str) else None
    except ValueError:
        return None


def _convert(field: dataclasses.Field[Any], value: Any) -> Any:
    kind: type[Any] = type(field.default)
    if kind is int or kind is float:
        number = _number(value, kind)
        if number is None:
            what = "et heltall" if kind is int else "et tall"
            raise ConfigError(
                f"{_named(field)}: {value!r} er ikke {what}; det tillatte området er "
                f"{_span(field.metadata['between'])}"
            )
        return number
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{_named(field)}: {value!r} er verken true eller false")
    return value if isinstance(value, kind) else kind(value)
