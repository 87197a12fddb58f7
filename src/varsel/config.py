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
