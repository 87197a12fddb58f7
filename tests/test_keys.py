from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from varsel.cli import cli
from varsel.config import Settings
from varsel.dkim import generate_key
from varsel.keys import ensure_key, key_dir, list_keys


def key_settings(tmp_path: Path) -> Settings:
    return Settings.load(environ={}, dkim_key_dir=str(tmp_path / "keys"))


def test_no_folder_means_no_keys(tmp_path: Path) -> None:
    assert list_keys(key_settings(tmp_path)) == []


def test_keys_are_listed_with_the_record_to_publish(tmp_path: Path) -> None:
    settings = key_settings(tmp_path)
    rsa = generate_key(key_dir(settings), "blåbær.no", "varsel", "rsa")
    ed = generate_key(key_dir(settings), "nsr-org.no", "ed", "ed25519")
    (key_dir(settings) / "x._domainkey.bad.no.pem").write_text("not a key\n", "utf-8")
    (key_dir(settings) / "notes.pem").write_text("not named as a key is\n", "utf-8")
    listed = list_keys(settings)
    assert [(k.domain, k.selector, k.algorithm) for k in listed] == [
        ("bad.no", "x", None),
        ("nsr-org.no", "ed", "ed25519"),
        ("xn--blbr-roah.no", "varsel", "rsa"),
    ]
    bad, ed_key, rsa_key = listed
    assert bad.problem == "ikke en privat nøkkel i PEM-format"
    assert bad.dns_record is None
    assert (ed_key.dns_record, ed_key.path) == (ed.dns_record(), ed.private_key)
    assert (rsa_key.dns_record, rsa_key.path) == (rsa.dns_record(), rsa.private_key)
    # The same line generate_key wrote beside the key, for the DNS administrator.
    assert rsa.dns_file.read_text("ascii").strip() == rsa_key.dns_record


def test_a_key_made_on_first_use_is_listed(tmp_path: Path) -> None:
    settings = key_settings(tmp_path)
    assert ensure_key(settings, "politiet.no", "varsel") is not None
    [key] = list_keys(settings)
    assert (key.domain, key.selector, key.algorithm) == ("politiet.no", "varsel", "rsa")


def test_the_ed25519_key_is_made_on_first_use_too_with_its_dns_record(tmp_path: Path) -> None:
    settings = key_settings(tmp_path)
    notice = ensure_key(settings, "politiet.no", "varsel", ed25519=True)
    keys = list_keys(settings)
    assert [(k.selector, k.algorithm) for k in keys] == [("varsel", "rsa"), ("varsele", "ed25519")]
    assert notice is not None
    for key in keys:
        assert f"Ny DKIM-nøkkel for politiet.no er laget i {key.path}.\n" in notice
        assert f"\n{key.dns_record}" in notice
    assert ensure_key(settings, "politiet.no", "varsel", ed25519=True) is None


def test_cli_lists_keys_and_their_json(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"VARSEL_DKIM_KEY_DIR": str(tmp_path / "keys"), "COLUMNS": "80"}
    missing = runner.invoke(cli, ["keys", "list"], env=env)
    assert (missing.exit_code, missing.output) == (
        0,
        f"Ingen DKIM-nøkler: mappen {tmp_path / 'keys'} finnes ikke; lag en med "
        "`varsel keys generate --domain DOMENE`.\n",
    )
    (tmp_path / "keys").mkdir()
    empty = runner.invoke(cli, ["keys", "list"], env=env)
    assert empty.exit_code == 0, empty.output
    assert empty.output == (
        f"Ingen DKIM-nøkler i {tmp_path / 'keys'}: lag en med "
        "`varsel keys generate --domain DOMENE`.\n"
    )
    files = generate_key(tmp_path / "keys", "blåbær.no", "varsel", "rsa")
    shown = runner.invoke(cli, ["keys", "list"], env=env)
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0].split() == ["blåbær.no", "(xn--blbr-roah.no)", "selektor", "varsel", "rsa"]
    assert lines[1] == f"  fil: {files.private_key}"
    # The record on one line, unwrapped at 80 columns, ready to paste into the zone.
    assert lines[2] == f"  {files.dns_record()}"
    as_json = runner.invoke(cli, ["keys", "list", "--json"], env=env)
    assert json.loads(as_json.output) == [
        {
            "domain": "xn--blbr-roah.no",
            "selector": "varsel",
            "path": str(files.private_key),
            "algorithm": "rsa",
            "dns_record": files.dns_record(),
            "problem": None,
        }
    ]


def test_the_settings_name_key_files_as_generate_key_names_them(tmp_path: Path) -> None:
    files = generate_key(tmp_path / "keys", "asker.kommune.no", "varsel", "rsa")
    assert files.private_key.name == "varsel._domainkey.asker.kommune.no.pem"
    described = {name: help for name, _, _, help in Settings.describe()}
    assert "<selektor>._domainkey.<domene>.pem" in described["dkim_key_dir"]
    assert files.private_key.name in described["dkim_key_dir"]


def test_the_keys_commands_call_a_selector_selektor_and_never_velger() -> None:
    runner = CliRunner()
    texts = [runner.invoke(cli, ["keys", *args, "--help"]).output for args in ([], ["generate"])]
    texts.append(runner.invoke(cli, ["settings"], env={"COLUMNS": "200"}).output)
    assert "DKIM-selektoren." in texts[1]
    assert all("velger" not in text.lower() for text in texts)


@pytest.mark.parametrize(
    "command",
    [["keys", "list"], ["keys", "list", "--json"], ["keys", "generate", "--domain", "x.no"]],
)
def test_a_key_folder_that_is_a_file_is_one_line(tmp_path: Path, command: list[str]) -> None:
    # It was listed as a folder without keys, exit 0; generate gave a traceback.
    folder = tmp_path / "keys"
    folder.write_text("", "utf-8")
    result = CliRunner().invoke(cli, command, env={"VARSEL_DKIM_KEY_DIR": str(folder)})
    assert (result.exit_code, result.output) == (
        2,
        f"varsel: {folder}: nøkkelmappen er en fil, ikke en mappe\n",
    )
