from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from click.testing import CliRunner

from varsel.cli import cli
from varsel.config import Settings, display
from varsel.errors import ConfigError
from varsel.message_fields import LONGEST_BASE_URL

NUMERIC = [f for f in dataclasses.fields(Settings) if type(f.default) in (int, float)]


def refusal(**environ: str) -> str:
    with pytest.raises(ConfigError) as raised:
        Settings.load(environ=environ)
    return raised.value.message


def test_the_defaults_load_without_any_setting() -> None:
    settings = Settings.load(environ={})
    assert settings.verify_per_ip == 10
    assert settings.document_link_hours == 24.0
    assert settings.feedback_global_per_minute == 60
    assert settings.document_global_per_minute == 30


@pytest.mark.parametrize("field", NUMERIC, ids=lambda f: f.name)
def test_every_number_has_a_range_that_holds_its_default_and_both_ends(
    field: dataclasses.Field[object],
) -> None:
    low, high = field.metadata["between"]
    assert low <= field.default <= high  # type: ignore[operator]
    env = field.metadata["env"]
    assert getattr(Settings.load(environ={env: str(low)}), field.name) == low
    assert getattr(Settings.load(environ={env: str(high)}), field.name) == high


def test_a_lookup_limit_of_zero_is_refused_with_its_range() -> None:
    # It used to start the site, which then refused the very first lookup with 429.
    assert refusal(VARSEL_VERIFY_PER_IP="0") == (
        "VARSEL_VERIFY_PER_IP: 0 er utenfor det tillatte området 1–1\u00a0000\u00a0000\u00a0000"
    )


@pytest.mark.parametrize("value", ["0", "-24", "0.5", "169", "nan", "inf"])
def test_a_link_lifetime_outside_an_hour_to_a_week_is_refused(value: str) -> None:
    message = refusal(VARSEL_DOCUMENT_LINK_HOURS=value)
    assert message.startswith("VARSEL_DOCUMENT_LINK_HOURS: ")
    assert message.endswith(" er utenfor det tillatte området 1–168")


def test_a_port_that_is_not_a_number_is_refused_with_its_range() -> None:
    assert refusal(VARSEL_WEB_PORT="åtte tusen") == (
        "VARSEL_WEB_PORT: «åtte tusen» er ikke et heltall; det tillatte området er 1–65\u00a0535"
    )


def test_a_fraction_is_no_count() -> None:
    assert refusal(VARSEL_LOCKOUT_FAILURES="2.5") == (
        "VARSEL_LOCKOUT_FAILURES: «2.5» er ikke et heltall; det tillatte området er 1–100"
    )


def test_a_timeout_that_is_not_a_number_is_refused() -> None:
    assert refusal(VARSEL_ALTINN_TIMEOUT="lenge") == (
        "VARSEL_ALTINN_TIMEOUT: «lenge» er ikke et tall; det tillatte området er 1–600"
    )


def test_zero_still_turns_off_what_it_is_documented_to_turn_off() -> None:
    settings = Settings.load(
        environ={"VARSEL_WORKER_GLOBAL_RATE": "0", "VARSEL_WORKER_METRICS_PORT": "0"}
    )
    assert (settings.worker_global_rate, settings.worker_metrics_port) == (0.0, 0)


def test_the_settings_file_is_checked_too(tmp_path: Path) -> None:
    path = tmp_path / "varsel.toml"
    path.write_text("[varsel]\nfeedback_per_ip_hour = 10.0\ndocument_link_hours = 48\n")
    settings = Settings.load(environ={}, config_file=path)
    assert (settings.feedback_per_ip_hour, settings.document_link_hours) == (10, 48.0)
    path.write_text("[varsel]\nverify_per_ip = true\n")
    with pytest.raises(ConfigError) as raised:
        Settings.load(environ={}, config_file=path)
    assert raised.value.message == (
        f"{path}, linje 2: [varsel] verify_per_ip: true er ikke et heltall; "
        "det tillatte området er 1–1\u00a0000\u00a0000\u00a0000"
    )


@pytest.mark.parametrize(
    ("key", "more"), [("nonsense", ""), ("web_prot", " (mente du «web_port»?)")]
)
def test_an_unknown_setting_names_the_settings_file(tmp_path: Path, key: str, more: str) -> None:
    path = tmp_path / "varsel.toml"
    path.write_text(f"[varsel]\n{key} = 1\n")
    with pytest.raises(ConfigError) as raised:
        Settings.load(environ={}, config_file=path)
    assert raised.value.message == f"{path}, linje 2: [varsel] {key}: ukjent innstilling{more}"


def test_a_range_is_said_with_a_decimal_comma() -> None:
    assert refusal(VARSEL_DOWNLOAD_TIMEOUT="0") == (
        "VARSEL_DOWNLOAD_TIMEOUT: 0 er utenfor det tillatte området 0,1–3\u00a0600"
    )


def test_settings_made_in_code_are_checked_too() -> None:
    with pytest.raises(ConfigError) as raised:
        dataclasses.replace(Settings.load(environ={}), worker_lease_seconds=1.0)
    assert raised.value.message == (
        "VARSEL_WORKER_LEASE_SECONDS (worker_lease_seconds): 1 er utenfor det tillatte "
        "området 5–3\u00a0600"
    )


def test_a_yes_or_no_that_is_neither_is_refused() -> None:
    assert refusal(VARSEL_ALTINN_ENABLED="kanskje") == (
        "VARSEL_ALTINN_ENABLED: «kanskje» er verken true eller false"
    )


def test_the_settings_list_shows_each_range() -> None:
    described = {name: help for name, _, _, help in Settings.describe()}
    assert described["document_link_hours"].endswith(" Tillatt: 1–168.")
    assert "Tillatt" not in described["smtp_url"]


def test_the_settings_list_speaks_bokmal_and_keeps_its_indent_at_80_columns() -> None:
    result = CliRunner().invoke(cli, ["settings"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert (
        "lockout_failures  (VARSEL_LOCKOUT_FAILURES, standard: 5)\n"
        "    Mislykkede innlogginger på rad (feil passord eller kode) som låser en konto.\n"
        "    Tillatt: 1–100.\n"
    ) in result.output
    assert "    Porten `varsel serve` lytter på. Tillatt: 1–65\u00a0535." in lines
    # Each setting's name starts a line, followed by its help text: indented, never empty.
    names = [f.name for f in dataclasses.fields(Settings)]
    starts = [n for n, line in enumerate(lines) if not line.startswith(" ")]
    assert [lines[n].split("  (")[0] for n in starts] == names
    helps = [line for line in lines if line.startswith(" ")]
    assert all(line.strip() and len(line) <= 80 for line in helps)
    assert all(lines[n + 1].startswith("    ") for n in starts)


def test_no_help_text_is_empty() -> None:
    assert all(help.strip() for _, _, _, help in Settings.describe())


def test_the_command_stops_with_one_line_and_changes_nothing(tmp_path: Path) -> None:
    store = tmp_path / "varsel.db"
    result = CliRunner().invoke(
        cli, ["--db", str(store), "init"], env={"VARSEL_DOCUMENT_LINK_HOURS": "0"}
    )
    assert result.exit_code == 2
    assert result.output == (
        "varsel: VARSEL_DOCUMENT_LINK_HOURS: 0 er utenfor det tillatte området 1–168\n"
    )
    assert not store.exists()


@pytest.mark.parametrize(
    ("config", "reason"),
    [("mangler.toml", "finnes ikke"), ("fil/varsel.toml", "en del av stien er ikke en mappe")],
)
def test_a_settings_file_that_cannot_be_read_says_why_in_bokmal(
    tmp_path: Path, config: str, reason: str
) -> None:
    (tmp_path / "fil").write_text("ikke en mappe")
    store = tmp_path / "varsel.db"
    path = tmp_path / config
    result = CliRunner().invoke(cli, ["--db", str(store), "init"], env={"VARSEL_CONFIG": str(path)})
    assert (result.exit_code, result.output) == (
        2,
        f"varsel: {path} (VARSEL_CONFIG): kan ikke lese innstillingsfilen: {reason}\n",
    )
    assert not store.exists()


def test_values_are_shown_as_an_operator_writes_them() -> None:
    assert display("allow_test_domains", False) == "false"
    assert display("download_timeout", 60.0) == "60"
    assert display("download_timeout", 0.5) == "0.5"
    assert display("user", "") == "(tom)"
    assert display("database_url", "varsel.db") == "varsel.db"


def test_secrets_and_passwords_in_addresses_are_never_shown() -> None:
    assert display("secret_key", "s3cret") == "(satt, vises ikke)"
    assert display("imap_password", "pw") == "(satt, vises ikke)"
    assert display("smtp_url", "smtp+starttls://ola:pw@relay.example:587") == (
        "smtp+starttls://ola:***@relay.example:587"
    )
    assert display("database_url", "postgresql://varsel:pw@db/varsel") == (
        "postgresql://varsel:***@db/varsel"
    )
    assert display("smtp_url", "smtp://relay.example:25") == "smtp://relay.example:25"


def test_the_settings_list_shows_what_is_set_now_and_hides_secrets(tmp_path: Path) -> None:
    env = {
        "COLUMNS": "100",
        "VARSEL_SECRET_KEY": "s3cret",
        "VARSEL_SMTP_URL": "smtp://ola:pw@relay.example:587",
        "VARSEL_WEB_PORT": "8080",
    }
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "x.db"), "settings"], env=env)
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output
    assert ":pw@" not in result.output
    assert "web_port  (VARSEL_WEB_PORT, standard: 8000)\n    nå: 8080\n" in result.output
    assert "smtp_url  (VARSEL_SMTP_URL, standard: smtp://127.0.0.1:25)\n" in result.output
    assert "    nå: smtp://ola:***@relay.example:587\n" in result.output
    assert "    nå: (satt, vises ikke)\n" in result.output
    assert f"    nå: {tmp_path / 'x.db'}\n" in result.output
    # Unchanged settings have no "nå" line.
    assert "lockout_failures  (VARSEL_LOCKOUT_FAILURES, standard: 5)\n    Mislykkede" in (
        result.output
    )


def test_a_public_base_url_too_long_for_the_list_unsubscribe_line_is_refused() -> None:
    # The link in List-Unsubscribe stands whole on one line of at most 998 octets.
    longest = "https://politiet.no/" + "a" * (LONGEST_BASE_URL - len("https://politiet.no/"))
    assert Settings.load(environ={"VARSEL_PUBLIC_BASE_URL": longest}).public_base_url == longest
    # A trailing slash is not written; a host is counted as its A-label (æ → xn--…).
    assert Settings.load(environ={"VARSEL_PUBLIC_BASE_URL": longest + "/"})
    assert refusal(VARSEL_PUBLIC_BASE_URL=longest + "b") == (
        "VARSEL_PUBLIC_BASE_URL: adressen er 903 tegn lang; avmeldingslenken "
        "i e-postenes List-Unsubscribe-felt må stå på én linje, så den kan være på høyst 902 "
        "tegn"
    )
    # "pøl" is written "xn--pl-lka": two characters more than "politiet".
    assert refusal(VARSEL_PUBLIC_BASE_URL=longest.replace("politiet", "pøl")).startswith(
        "VARSEL_PUBLIC_BASE_URL: adressen er 904 tegn lang;"
    )


def test_a_command_with_a_public_base_url_too_long_says_so_in_one_line() -> None:
    result = CliRunner().invoke(
        cli, ["settings"], env={"VARSEL_PUBLIC_BASE_URL": "https://politiet.no/" + "a" * 900}
    )
    assert result.exit_code == 2
    assert result.output.startswith("varsel: VARSEL_PUBLIC_BASE_URL: adressen er")
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


# -- a value from the settings file is named by the file, its line, table and key ---------------


def file_refusal(tmp_path: Path, text: str, **environ: str) -> str:
    path = tmp_path / "varsel.toml"
    path.write_text(text, "utf-8")
    with pytest.raises(ConfigError) as raised:
        Settings.load(environ=environ, config_file=path)
    return raised.value.message.replace(str(path), "varsel.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[varsel]\n# the relay\nsmtp_url = 'smtp://relay:25'\n\nweb_port = 'åtte tusen'\n",
            "varsel.toml, linje 5: [varsel] web_port: «åtte tusen» er ikke et heltall; "
            "det tillatte området er 1–65\u00a0535",
        ),
        (
            "lockout_failures = 0\n",
            "varsel.toml, linje 1: lockout_failures: 0 er utenfor det tillatte området 1–100",
        ),
        (
            "[varsel]\naltinn_timeout = 'lenge'\n",
            "varsel.toml, linje 2: [varsel] altinn_timeout: «lenge» er ikke et tall; "
            "det tillatte området er 1–600",
        ),
        (
            '[varsel]\nnote = """\nweb_port = 1\n"""\naltinn_enabled = "kanskje"\n',
            "varsel.toml, linje 2: [varsel] note: ukjent innstilling",
        ),
        (
            "[varsel]\naltinn_enabled = 'kanskje'\n",
            "varsel.toml, linje 2: [varsel] altinn_enabled: «kanskje» er verken true eller false",
        ),
        (
            "[varsel]\nsmtp_url = ['smtp://a', 'smtp://b']\n",
            "varsel.toml, linje 2: [varsel] smtp_url: skal være tekst (i anførselstegn), "
            "ikke en liste",
        ),
        (
            "[varsel]\nallow_test_domains = 1\n",
            "varsel.toml, linje 2: [varsel] allow_test_domains: 1 er verken true eller false",
        ),
        (
            "varsel.web_port = 0\n",
            "varsel.toml: [varsel] web_port: 0 er utenfor det tillatte området 1–65\u00a0535",
        ),
    ],
    ids=[
        "text-for-a-count",
        "top-level",
        "text-for-a-number",
        "unknown",
        "neither",
        "a-list",
        "a-number-for-yes-or-no",
        "dotted-key-without-a-line",
    ],
)
def test_a_bad_value_in_the_settings_file_names_the_file_line_table_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    assert file_refusal(tmp_path, text) == message


def test_a_line_inside_a_multi_line_string_is_not_taken_for_the_key(tmp_path: Path) -> None:
    text = '[varsel]\ntotp_issuer = """\nweb_port = 1\n"""\nweb_port = 0\n'
    assert file_refusal(tmp_path, text) == (
        "varsel.toml, linje 5: [varsel] web_port: 0 er utenfor det tillatte området 1–65\u00a0535"
    )


def test_the_environment_value_that_wins_over_the_file_is_named_by_its_variable(
    tmp_path: Path,
) -> None:
    # The file's own value is fine; the environment's overrides it and is the one refused.
    assert file_refusal(tmp_path, "web_port = 8080\n", VARSEL_WEB_PORT="0") == (
        "VARSEL_WEB_PORT: 0 er utenfor det tillatte området 1–65\u00a0535"
    )


def test_a_settings_file_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "varsel.toml"
    path.write_bytes(b"[varsel]\ntotp_issuer = 'Oslo politidistrikt'\nuser = 'b\xf8rre'\n")
    with pytest.raises(ConfigError) as raised:
        Settings.load(environ={}, config_file=path)
    assert raised.value.message == (
        f"{path}, linje 3: er ikke UTF-8 (byte 55); lagre filen som UTF-8"
    )


def test_each_setting_says_where_its_value_came_from(tmp_path: Path) -> None:
    path = tmp_path / "varsel.toml"
    path.write_text("[varsel]\n\nregistry_base_url = 'ftp://mirror'\n", "utf-8")
    settings = Settings.load(
        environ={"VARSEL_SMTP_URL": "smtp://relay:25"}, config_file=path, database_url="x.db"
    )
    assert settings.origin("registry_base_url") == f"{path}, linje 3: [varsel] registry_base_url"
    assert settings.origin("smtp_url") == "VARSEL_SMTP_URL"
    assert settings.origin("database_url") == "database_url"
    assert settings.origin("web_port") == "VARSEL_WEB_PORT (web_port)"  # the default


def test_a_settings_file_named_by_the_environment_says_so(tmp_path: Path) -> None:
    path = tmp_path / "varsel.toml"
    path.write_text("web_port = 0\n", "utf-8")
    result = CliRunner().invoke(
        cli, ["--db", str(tmp_path / "x.db"), "settings"], env={"VARSEL_CONFIG": str(path)}
    )
    assert (result.exit_code, result.output) == (
        2,
        f"varsel: {path} (VARSEL_CONFIG), linje 1: web_port: 0 er utenfor det tillatte området "
        "1–65\u00a0535\n",
    )
