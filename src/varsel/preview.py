"""Previews of a campaign's messages for approval: each language as sent, as text and as HTML."""

from __future__ import annotations

import email.policy
import re
import secrets
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from varsel.builder import make_factory
from varsel.campaign import LANGUAGES, get_campaign
from varsel.config import Settings
from varsel.db import Database
from varsel.errors import UserError, os_reason
from varsel.samples import sample_code, sample_recipient, sample_units
from varsel.send_config import key_paths, message_spec


class PreviewError(UserError):
    """The previews cannot be written."""


_CHARSET = re.compile(rb"<meta[^>]+charset", re.IGNORECASE)


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body((subtype,))
    if not isinstance(part, EmailMessage):
        raise PreviewError(f"meldingen har ingen text/{subtype}-del")
    content = part.get_content()
    assert isinstance(content, str)  # noqa: S101  # a text part's content is text
    # CRLF is how lines travel in a message; in a file on disk they end in LF.
    return content.replace("\r\n", "\n")


def preview_campaign(db: Database, settings: Settings, campaign_id: int, out: Path) -> list[Path]:
    """Write <lang>.eml (signed, as sent), .txt and .html for nb, nn and en; the paths written."""
    campaign = get_campaign(db, campaign_id)
    # The sender's own factory and keys: the preview is the message as it would go out.
    factory = make_factory(message_spec(campaign), key_paths(settings, campaign.spec))
    code = sample_code()
    token = secrets.token_urlsafe(18)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PreviewError(f"{out}: kan ikke lage mappen ({os_reason(e)})") from None
    written: list[Path] = []
    for language in LANGUAGES:
        first, _ = sample_units(db, campaign_id, language)
        data = factory.build(sample_recipient([first], language, code, token))
        parsed = BytesParser(policy=email.policy.default).parsebytes(data)
        html_bytes = _body(parsed, "html").encode("utf-8")
        # A file opened from disk has no Content-Type to name its charset; a template without
        # <meta charset> gets a byte order mark, which browsers read as UTF-8.
        if not _CHARSET.search(html_bytes[:2048]):
            html_bytes = b"\xef\xbb\xbf" + html_bytes
        files = (
            (out / f"{language}.eml", data),
            (out / f"{language}.txt", _body(parsed, "plain").encode("utf-8")),
            (out / f"{language}.html", html_bytes),
        )
        for path, content in files:
            try:
                path.write_bytes(content)
            except OSError as e:
                raise PreviewError(f"{path}: kan ikke skrives ({os_reason(e)})") from None
            written.append(path)
    return written
