"""Previews of a campaign's messages, on campaigns made from the real registry records."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import dkim
import pytest
from click.testing import CliRunner

from helpers import campaign_toml, dns_for
from test_lint import HTML, TEXT
from varsel.campaign import create_campaign
from varsel.cli import cli
from varsel.config import Settings
from varsel.db import Database
from varsel.keys import key_path
from varsel.lint_content import attachments_in
from varsel.preview import preview_campaign
from varsel.registry import import_dump

CAMPAIGN = campaign_toml(campaign="per_unit = false\n", sender='reply_to = "post@nsr-org.no"\n')


@pytest.fixture
def registry_db(db: Database, brreg: Path) -> Database:
    import_dump(db, brreg / "enheter-sample.json")
    return db


def create(db: Database, settings: Settings, tmp_path: Path, extra: str = "") -> int:
    path = tmp_path / "campaign.toml"
    path.write_text(CAMPAIGN + extra, "utf-8")
    return create_campaign(db, settings, path).campaign.id


def templates(language: str = "nb", *, text: str = TEXT, html: str = HTML, **more: str) -> str:
    """A [templates.LANG] table with the given sources as TOML literal strings."""
    lines = [f"[templates.{language}]", f"text = '''{text}'''", f"html = '''{html}'''"]
    lines += [f"{key} = '''{value}'''" for key, value in more.items()]
    return "\n" + "\n".join(lines) + "\n"


def test_preview_writes_each_language_signed_as_sent(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    cid = create(registry_db, settings, tmp_path)
    out = tmp_path / "preview" / "ny"
    paths = preview_campaign(registry_db, settings, cid, out)
    assert [p.name for p in paths] == [
        f"{lang}.{ext}" for lang in ("nb", "nn", "en") for ext in ("eml", "txt", "html")
    ]
    assert sorted(out.iterdir()) == sorted(paths)
    first_nb = registry_db.query_one(
        "SELECT name FROM recipients WHERE campaign_id = ? AND language = 'nb' ORDER BY orgnr",
        (cid,),
    )
    assert first_nb is not None
    for lang in ("nb", "nn", "en"):
        data = (out / f"{lang}.eml").read_bytes()
        assert dkim.verify(data, dnsfunc=dns_for(settings))
        msg = email.message_from_bytes(data, policy=email.policy.default)
        assert msg["To"] == "post@eksempel.example"
        assert msg["Content-Language"] == lang
        text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert (out / f"{lang}.txt").read_bytes() == text.replace("\r\n", "\n").encode()
        page = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert (out / f"{lang}.html").read_bytes() == page.replace("\r\n", "\n").encode()
        assert page.startswith("<!DOCTYPE html>")
        assert attachments_in(data) == []
    assert first_nb[0] in (out / "nb.txt").read_text("utf-8")
    assert "EKSEMPEL AS" in (out / "nn.txt").read_text("utf-8")


def test_preview_needs_the_key(registry_db: Database, settings: Settings, tmp_path: Path) -> None:
    cid = create(registry_db, settings, tmp_path)
    key_path(settings, "nsr-org.no", "varsel").unlink()
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["--db", registry_db.url, "campaign", "preview", str(cid), "--out", str(tmp_path / "p")],
        env={"VARSEL_DKIM_KEY_DIR": str(settings.dkim_key_dir)},
    )
    assert result.exit_code == 2
    assert "finnes ikke" in result.output


def test_a_preview_of_an_html_fragment_opens_as_utf_8(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    cid = create(registry_db, settings, tmp_path, templates(html=HTML))
    preview_campaign(registry_db, settings, cid, tmp_path / "p")
    # No <meta charset> in the fragment: the byte order mark tells a browser it is UTF-8.
    assert (tmp_path / "p" / "nb.html").read_bytes().startswith(b"\xef\xbb\xbf<p>Til ")
    assert not (tmp_path / "p" / "nn.html").read_bytes().startswith(b"\xef\xbb\xbf")
