"""One frozen Settings, built once from defaults, an optional TOML file and the environment."""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from varsel.config_values import (
    check_base_url,
    check_range,
    convert,
    help_text,
    named_setting,
    read_toml,
    shown,
)
from varsel.errors import ConfigError, redact_url

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
        "Lageret: stien til en SQLite-fil eller en sqlite:///-URL, eller en postgresql://-URL.",
        "VARSEL_DATABASE_URL",
    )
    registry_base_url: str = _setting(
        "https://data.brreg.no/enhetsregisteret/api",
        "Adressen til Enhetsregisterets åpne API (uttrekkene under /enheter/lastned, "
        "endringsloggen under /oppdateringer/enheter); endre den bare for et speil eller en test.",
        "VARSEL_REGISTRY_BASE_URL",
    )
    download_timeout: float = _setting(
        60.0,
        "Sekunder en nedlasting eller en side fra endringsloggen venter på registerets server "
        "før den gir opp.",
        "VARSEL_DOWNLOAD_TIMEOUT",
        between=(0.1, 3600),
    )
    smtp_url: str = _setting(
        "smtp://127.0.0.1:25",
        "E-postreléet: smtp://vert:port, smtps:// (TLS) eller smtp+starttls://, eventuelt med "
        "bruker:passord@.",
        "VARSEL_SMTP_URL",
    )
    dkim_key_dir: str = _setting(
        "~/.config/varsel/dkim",
        "Mappen med de private DKIM-nøklene, én fil per selektor og domene: "
        "<selektor>._domainkey.<domene>.pem, for eksempel "
        "varsel._domainkey.asker.kommune.no.pem. Hold den utenfor git-repoet.",
        "VARSEL_DKIM_KEY_DIR",
    )
    public_base_url: str = _setting(
        "https://varsel.example.no",
        "Den offentlige adressen til sidene for kontroll, tilbakemelding og avmelding "
        "(myndighetens eget nettsted).",
        "VARSEL_PUBLIC_BASE_URL",
    )
    allow_test_domains: bool = _setting(
        False,
        "Godta adresser på .test (bare for testoppsett på loopback).",
        "VARSEL_ALLOW_TEST_DOMAINS",
    )
    web_host: str = _setting(
        "127.0.0.1",
        "Adressen `varsel serve` lytter på (sett en proxy som tar seg av TLS, foran).",
        "VARSEL_WEB_HOST",
    )
    web_port: int = _setting(
        8000, "Porten `varsel serve` lytter på.", "VARSEL_WEB_PORT", between=(1, 65535)
    )
    forwarded_allow_ips: str = _setting(
        "127.0.0.1",
        "Proxyer som får sette X-Forwarded-For (skilt med komma), slik at grensene ser den "
        "egentlige IP-adressen.",
        "VARSEL_FORWARDED_ALLOW_IPS",
    )
    secret_key: str = _setting(
        "",
        "Hemmelighet for signerte lenker, skjematokener og hashede IP-adresser; den samme i alle "
        "prosesser. Ikke satt: en tilfeldig per prosess (lenker og grenser overlever da ikke en "
        "omstart).",
        "VARSEL_SECRET_KEY",
    )
    user: str = _setting(
        "",
        "Operatørkontoen `campaign create` og `campaign approve` bruker når --user mangler "
        "(passord og kode spørres om, eller leses fra VARSEL_PASSWORD og VARSEL_TOTP).",
        "VARSEL_USER",
    )
    allow_no_approval: bool = _setting(
        True,
        "Om `campaign send --no-approval` kan sende uten godkjenning fra en annen (fire øyne); "
        "sett false i produksjon, så ingen kan sende alene.",
        "VARSEL_ALLOW_NO_APPROVAL",
    )
    session_idle_minutes: float = _setting(
        30.0,
        "Minutter uten aktivitet før en økt i konsollen avsluttes.",
        "VARSEL_SESSION_IDLE_MINUTES",
        between=(1, 1440),
    )
    session_hours: float = _setting(
        12.0,
        "Timer etter innlogging da en økt avsluttes uansett.",
        "VARSEL_SESSION_HOURS",
        between=(1, 168),
    )
    lockout_failures: int = _setting(
        5,
        "Mislykkede innlogginger på rad (feil passord eller kode) som låser en konto.",
        "VARSEL_LOCKOUT_FAILURES",
        between=(1, 100),
    )
    lockout_minutes: float = _setting(
        15.0,
        "Minutter en låst konto forblir låst.",
        "VARSEL_LOCKOUT_MINUTES",
        between=(1, 10080),
    )
    totp_issuer: str = _setting(
        "varsel",
        "Navnet autentiseringsappen viser for varsel-kontoer (f.eks. Oslo politidistrikt).",
        "VARSEL_TOTP_ISSUER",
    )
    password_memory_kib: int = _setting(
        65536,
        "Minne (KiB) argon2id bruker på hver passordhash: 65536 er valget i RFC 9106; hasher "
        "laget med andre verdier fornyes ved neste innlogging.",
        "VARSEL_PASSWORD_MEMORY_KIB",
        between=(8192, 4194304),
    )
    sign_in_per_ip: int = _setting(
        20,
        "Forsøk på innlogging og registrering i konsollen som én IP-adresse kan gjøre per vindu "
        "(vellykkede teller også).",
        "VARSEL_SIGN_IN_PER_IP",
        between=(1, MANY),
    )
    sign_in_window_seconds: int = _setting(
        900,
        "Lengden på vinduet for innlogging per IP-adresse, i sekunder.",
        "VARSEL_SIGN_IN_WINDOW_SECONDS",
        between=(60, 86400),
    )
    sign_in_global_per_minute: int = _setting(
        60,
        "Forsøk på innlogging og registrering i konsollen per minutt fra alle til sammen: stanser "
        "passordsprøyting fra mange adresser og begrenser CPU-en passordhashene bruker.",
        "VARSEL_SIGN_IN_GLOBAL_PER_MINUTE",
        between=(1, MANY),
    )
    verify_per_ip: int = _setting(
        10,
        "Kodeoppslag én IP-adresse kan gjøre per vindu.",
        "VARSEL_VERIFY_PER_IP",
        between=(1, MANY),
    )
    verify_window_seconds: int = _setting(
        600,
        "Lengden på vinduet for kodeoppslag per IP-adresse, i sekunder.",
        "VARSEL_VERIFY_WINDOW_SECONDS",
        between=(60, 86400),
    )
    verify_global_per_minute: int = _setting(
        600,
        "Kodeoppslag per minutt fra alle til sammen: stanser gjetting fra mange adresser.",
        "VARSEL_VERIFY_GLOBAL_PER_MINUTE",
        between=(1, MANY),
    )
    feedback_per_ip_hour: int = _setting(
        10,
        "Tilbakemeldinger én IP-adresse kan sende per time.",
        "VARSEL_FEEDBACK_PER_IP_HOUR",
        between=(1, MANY),
    )
    feedback_global_per_minute: int = _setting(
        60,
        "Tilbakemeldinger per minutt fra alle til sammen: stanser en flom fra mange adresser.",
        "VARSEL_FEEDBACK_GLOBAL_PER_MINUTE",
        between=(1, MANY),
    )
    document_per_ip_hour: int = _setting(
        10,
        "Dokumentlenker én IP-adresse kan be om per time.",
        "VARSEL_DOCUMENT_PER_IP_HOUR",
        between=(1, MANY),
    )
    document_per_address_day: int = _setting(
        3,
        "Dokumentlenker én e-postadresse kan få per døgn (så skjemaet ikke kan oversvømme den).",
        "VARSEL_DOCUMENT_PER_ADDRESS_DAY",
        between=(1, 100),
    )
    document_per_domain_hour: int = _setting(
        300,
        "Dokumentlenker som kan sendes til adresser i ett e-postdomene per time (så mange "
        "adresser hos samme domene ikke kan oversvømmes).",
        "VARSEL_DOCUMENT_PER_DOMAIN_HOUR",
        between=(1, MANY),
    )
    document_global_per_minute: int = _setting(
        30,
        "Dokumentlenker per minutt fra alle til sammen: begrenser hvor mye e-post skjemaet kan få "
        "reléet til å sende.",
        "VARSEL_DOCUMENT_GLOBAL_PER_MINUTE",
        between=(1, MANY),
    )
    document_link_hours: float = _setting(
        24.0,
        "Timer en lenke for å laste ned et dokument er gyldig.",
        "VARSEL_DOCUMENT_LINK_HOURS",
        between=(1, 168),
    )
    altinn_enabled: bool = _setting(
        False,
        "Om `varsel altinn` kan sende gjennom Altinn 3 Correspondence (docs/altinn.md).",
        "VARSEL_ALTINN_ENABLED",
    )
    altinn_base_url: str = _setting(
        "https://platform.altinn.no",
        "Adressen til Altinn-plattformen (test: https://platform.tt02.altinn.no).",
        "VARSEL_ALTINN_BASE_URL",
    )
    altinn_maskinporten_token_url: str = _setting(
        "https://maskinporten.no/token",
        "Token-endepunktet til Maskinporten (test: https://test.maskinporten.no/token); audience "
        "i granten er adressens origin med / bak.",
        "VARSEL_ALTINN_MASKINPORTEN_TOKEN_URL",
    )
    altinn_client_id: str = _setting(
        "", "Klient-id-en til Maskinporten-klienten.", "VARSEL_ALTINN_CLIENT_ID"
    )
    altinn_key_id: str = _setting(
        "",
        "Nøkkel-id-en (kid) til den offentlige nøkkelen som er registrert på "
        "Maskinporten-klienten.",
        "VARSEL_ALTINN_KEY_ID",
    )
    altinn_private_key_file: str = _setting(
        "",
        "PEM-fil med den private RSA-nøkkelen til Maskinporten-klienten; hold den utenfor "
        "git-repoet.",
        "VARSEL_ALTINN_PRIVATE_KEY_FILE",
    )
    altinn_resource_id: str = _setting(
        "",
        "Id-en til Correspondence-ressursen i Altinns ressursregister.",
        "VARSEL_ALTINN_RESOURCE_ID",
    )
    altinn_sender_orgnr: str = _setting(
        "",
        "Organisasjonsnummeret til myndigheten som sender (ressursens eier).",
        "VARSEL_ALTINN_SENDER_ORGNR",
    )
    altinn_scopes: str = _setting(
        "altinn:correspondence.write",
        "Maskinporten-scopes varsel ber om, skilt med mellomrom.",
        "VARSEL_ALTINN_SCOPES",
    )
    altinn_subscription_key: str = _setting(
        "",
        "Abonnementsnøkkelen til Altinns API (Ocp-Apim-Subscription-Key), hvis Altinn har gitt "
        "dere en.",
        "VARSEL_ALTINN_SUBSCRIPTION_KEY",
    )
    altinn_timeout: float = _setting(
        30.0,
        "Sekunder varsel venter på svar fra Maskinporten eller Altinn.",
        "VARSEL_ALTINN_TIMEOUT",
        between=(1, 600),
    )
    altinn_concurrency: int = _setting(
        4,
        "Forespørsler `varsel altinn send` og `poll` har ute samtidig (minst 1); den første går "
        "alene.",
        "VARSEL_ALTINN_CONCURRENCY",
        between=(1, 64),
    )
    altinn_send_reminder: bool = _setting(
        True,
        "Om Altinn minner virksomheten på meldingen med e-post eller SMS når den er ulest etter 7 "
        "dager.",
        "VARSEL_ALTINN_SEND_REMINDER",
    )
    verp_secret: str = _setting(
        "",
        "Hemmeligheten som signerer returadressene i konvolutten (VERP); den samme for sending og "
        "mottak av returmeldinger. Ikke satt: lest fra verp_secret_file, og laget der første "
        "gang.",
        "VARSEL_VERP_SECRET",
    )
    verp_secret_file: str = _setting(
        "",
        "Fil med VERP-hemmeligheten når VARSEL_VERP_SECRET ikke er satt; tom: verp.secret i "
        "DKIM-nøkkelmappen. Hold den utenfor git-repoet.",
        "VARSEL_VERP_SECRET_FILE",
    )
    bounce_subdomain: str = _setting(
        "",
        "Konvoluttavsendere under dette underdomenet av avsenderens domene (f.eks. gir bounce "
        "bounces+…@bounce.nsr-org.no, som DMARC fortsatt godtar); tom: avsenderens eget domene.",
        "VARSEL_BOUNCE_SUBDOMAIN",
    )
    imap_password: str = _setting(
        "", "Passordet til returpostkassen `varsel bounces poll` leser.", "VARSEL_IMAP_PASSWORD"
    )
    imap_ca_file: str = _setting(
        "",
        "CA-sertifikater (PEM) å stole på for IMAP-serveren; tom: systemets egne.",
        "VARSEL_IMAP_CA_FILE",
    )
    worker_lease_seconds: float = _setting(
        30.0,
        "Sekunder en `varsel worker` holder leveranser den har tatt, uten å fornye dem; "
        "leveransene til en arbeider som har stoppet, kommer tilbake etter så lang tid.",
        "VARSEL_WORKER_LEASE_SECONDS",
        between=(5, 3600),
    )
    worker_reconnect_seconds: float = _setting(
        60.0,
        "Sekunder en `varsel worker` prøver å få kontakt igjen med et lager som ble borte under "
        "den (PostgreSQL startet på nytt), før den stopper med statuskode 75; 0: stopp med en "
        "gang.",
        "VARSEL_WORKER_RECONNECT_SECONDS",
        between=(0, 3600),
    )
    worker_global_rate: float = _setting(
        0.0,
        "Meldinger per sekund alle arbeiderne sender til sammen, i alle kampanjer (reléets "
        "grense); 0: bare kampanjenes egne grenser.",
        "VARSEL_WORKER_GLOBAL_RATE",
        between=(0, 100_000),
    )
    worker_metrics_port: int = _setting(
        0,
        "Porten til en arbeiders Prometheus-/metrics på 127.0.0.1; 0: ingen.",
        "VARSEL_WORKER_METRICS_PORT",
        between=(0, 65535),
    )
    metrics_token: str = _setting(
        "",
        "Bearer-token `varsel serve` krever for /metrics; tom: /metrics er av.",
        "VARSEL_METRICS_TOKEN",
    )

    def __post_init__(self) -> None:
        # Here rather than in load(): settings made in code (dataclasses.replace) are checked too.
        for field in dataclasses.fields(self):
            check_range(field, getattr(self, field.name), named_setting(field))
        check_base_url(self.public_base_url, self.origin("public_base_url"))

    @classmethod
    def load(
        cls,
        environ: Mapping[str, str] | None = None,
        config_file: Path | None = None,
        **overrides: Any,
    ) -> Settings:
        """Build settings: defaults, then the TOML file, then the environment, then overrides.

        A value that cannot be used is refused naming where it came from: the environment
        variable, or the settings file with its line, table and key.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        origins: dict[str, str] = {}
        fields = {f.name: f for f in dataclasses.fields(cls)}
        path = config_file
        if path is None and "VARSEL_CONFIG" in env:
            path = Path(env["VARSEL_CONFIG"])
        if path is not None:
            named = f"{path} (VARSEL_CONFIG)" if config_file is None else str(path)
            section, where = read_toml(path, named)
            for name, value in section.items():
                if name not in fields:
                    hint = difflib.get_close_matches(name, fields, n=1)
                    more = f" (mente du «{hint[0]}»?)" if hint else ""
                    raise ConfigError(f"{where(name)}: ukjent innstilling{more}")
                values[name] = value
                origins[name] = where(name)
        for name, field in fields.items():
            env_name = field.metadata["env"]
            if env_name in env:
                values[name] = env[env_name]
                origins[name] = env_name
        for name, value in overrides.items():
            if value is not None:
                values[name] = value
                origins[name] = name
        converted = {}
        for name, value in values.items():
            if name not in fields:
                raise ConfigError(f"ukjent innstilling «{name}»")
            converted[name] = convert(fields[name], value, origins[name])
            check_range(fields[name], converted[name], origins[name])
        if "public_base_url" in converted:
            check_base_url(converted["public_base_url"], origins["public_base_url"])
        settings = cls(**converted)
        object.__setattr__(settings, "_origins", origins)  # frozen: set once, here
        return settings

    def origin(self, name: str) -> str:
        """Where a setting's value came from, as an error names it: the environment variable,
        or the settings file with its line, table and key; both when not known (the default,
        or settings made in code)."""
        origins: Mapping[str, str] = getattr(self, "_origins", {})
        return origins.get(name) or named_setting(
            next(f for f in dataclasses.fields(self) if f.name == name)
        )

    @classmethod
    def describe(cls) -> list[tuple[str, str, Any, str]]:
        """(name, environment variable, default, help) for every setting; help ends with a range."""
        return [
            (f.name, f.metadata["env"], f.default, help_text(f.metadata))
            for f in dataclasses.fields(cls)
        ]

    def changed(self) -> dict[str, str]:
        """The settings that differ from their defaults, by name, each as display() shows it."""
        return {
            f.name: display(f.name, getattr(self, f.name))
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != f.default
        }


# Settings whose values are secrets: the settings list says that they are set, never what.
SECRETS = frozenset(
    {"secret_key", "verp_secret", "imap_password", "metrics_token", "altinn_subscription_key"}
)


def display(name: str, value: Any) -> str:
    """A setting's value as an operator would write it, with secrets and passwords hidden."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return shown(value)
    text = str(value)
    if not text:
        return "(tom)"
    if name in SECRETS:
        return "(satt, vises ikke)"
    return redact_url(text)
