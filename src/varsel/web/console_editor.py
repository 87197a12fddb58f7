"""The template editor: every language side by side, previews, lint inline, a test send.

Previews are rendered by the sender's own message factory for sample recipients from the
campaign's frozen list (samples.sample_units), so what the editor shows is what would be sent.
Saving goes through campaign.update_spec: the change is audited and voids an approval.
"""

from __future__ import annotations

import dataclasses
import secrets

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from varsel import documents
from varsel.accounts import Role
from varsel.builder import make_factory
from varsel.campaign import LANGUAGES, Campaign, CampaignSpec, get_campaign, update_spec
from varsel.channel.smtp_relay import RelayConfig
from varsel.db import Database
from varsel.errors import VarselError
from varsel.i18n import fmt_int
from varsel.lint import lint_campaign
from varsel.lint_report import LintReport
from varsel.message import MessageError, MessageFactory, Recipient, Rendered
from varsel.samples import SAMPLE_ADDRESS, sample_code, sample_units
from varsel.send_config import key_paths, message_spec
from varsel.web.console_auth import PREFIX, Page, console, shown, translate
from varsel.web.console_campaigns import campaign_id
from varsel.web.templating import LANGUAGE_NAMES, N_, gettext

FIELDS = ("subject", "text", "html")
MAX_TEMPLATE = 30_000  # characters per template: the shipped ones are under 3,000


@dataclasses.dataclass(frozen=True)
class Preview:
    """One language's message for a sample recipient, or why it cannot be made."""

    language: str
    rendered: Rendered | None
    error: str | None


def _sample(db: Database, cid: int, language: str, address: str, code: str) -> Recipient:
    first, _ = sample_units(db, cid, language)
    return Recipient(0, address, (first,), language, code, secrets.token_urlsafe(18))


def previews(db: Database, campaign: Campaign, page_language: str) -> list[Preview]:
    """Each language's message as the sender would render it, with a sample code.

    Why a message cannot be made is said in the page's language.
    """
    try:
        factory = MessageFactory(message_spec(campaign), None)
    except MessageError as e:
        why = translate(page_language, e.message)
        return [Preview(lang, None, why) for lang in LANGUAGES]
    code = sample_code()
    out = []
    for language in LANGUAGES:
        try:
            recipient = _sample(db, campaign.id, language, SAMPLE_ADDRESS, code)
            out.append(Preview(language, factory.render(recipient), None))
        except MessageError as e:
            out.append(Preview(language, None, translate(page_language, e.message)))
    return out


# The editor's field names in the page's words, for a field's error.
FIELD_NAMES = {"subject": N_("Emne"), "text": N_("Tekst"), "html": N_("HTML")}
TOO_LONG = N_(
    "%(field)s (%(lang)s) har %(length)s tegn; en mal kan ha høyst %(limit)s. Ingenting er lagret."
)
HAS_NUL = N_(
    "%(field)s (%(lang)s) har et NUL-tegn (\\u0000), som ingen e-post kan ha. Ingenting er lagret."
)


def _edited(spec: CampaignSpec, form: dict[str, str]) -> CampaignSpec:
    """The spec with the form's templates, as typed (too long ones too: see _too_long)."""
    templates = {}
    for lang in LANGUAGES:
        old = spec.templates[lang]
        values = {f: form.get(f"{lang}-{f}", getattr(old, f)) for f in FIELDS}
        # Browsers post text areas with CRLF line ends; templates are kept with LF.
        values = {f: v.replace("\r\n", "\n") for f, v in values.items()}
        values["subject"] = values["subject"].strip()
        templates[lang] = dataclasses.replace(old, **values)
    return dataclasses.replace(spec, templates=templates)


def _too_long(page: Page, spec: CampaignSpec) -> dict[str, str]:
    """Each template field over the limit or with a NUL, by its form name, with the message
    shown at it.

    Refused rather than cut: a cut text saved as if whole would lose the operator's work.
    """
    errors = {}
    for lang in LANGUAGES:
        for f in FIELDS:
            text = getattr(spec.templates[lang], f)
            length = len(text)
            if "\x00" in text:
                # No message can carry it (and PostgreSQL's text could not store it).
                values = {"field": gettext(page.language, FIELD_NAMES[f]), "lang": lang}
                errors[f"{lang}-{f}"] = gettext(page.language, HAS_NUL) % values
            elif length > MAX_TEMPLATE:
                values = {
                    "field": gettext(page.language, FIELD_NAMES[f]),
                    "lang": lang,
                    "length": fmt_int(length),
                    "limit": fmt_int(MAX_TEMPLATE),
                }
                errors[f"{lang}-{f}"] = gettext(page.language, TOO_LONG) % values
    return errors


def _editor(
    page: Page,
    campaign: Campaign,
    made: list[Preview],
    *,
    lint: LintReport | None = None,
    notice: str | None = None,
    error: str | None = None,
    field_errors: dict[str, str] | None = None,
    unsaved: bool = False,
    status: int = 200,
) -> Response:
    # The findings' messages in the page's language; the template writes them as text.
    findings = [
        dataclasses.replace(f, message=translate(page.language, f.message))
        for f in (lint.findings if lint else ())
    ]
    return page.render(
        "editor.html",
        {
            "campaign": campaign,
            "templates": {lang: campaign.spec.templates[lang] for lang in LANGUAGES},
            "previews": made,
            "language_names": LANGUAGE_NAMES,
            "lint": lint,
            "findings": findings,
            "notice": notice,
            "error": error,
            "field_errors": field_errors or {},
            "unsaved": unsaved,
            "editable": campaign.status.value in ("ready", "paused"),
        },
        status=status,
    )


@console.route("/kampanjer/{cid:int}/maler", role=Role.VIEWER)
def editor(page: Page) -> Response:
    """The templates in nb, nn and en beside the messages they make."""
    with page.db() as db:
        campaign = get_campaign(db, campaign_id(page))
        made = previews(db, campaign, page.language)
    notice = page.request.query_params.get("melding")
    return _editor(page, campaign, made, notice=notice if notice in ("test",) else None)


@console.route("/kampanjer/{cid:int}/maler", role=Role.AUTHOR, methods=("POST",))
def editor_post(page: Page) -> Response:
    """Preview the edited templates, or save them (which lints them and voids an approval)."""
    cid = campaign_id(page)
    settings = page.site.settings
    with page.db() as db:
        campaign = get_campaign(db, cid)
        edited = dataclasses.replace(campaign, spec=_edited(campaign.spec, dict(page.form)))
        too_long = _too_long(page, edited.spec)
        if too_long:
            # The form shows what was typed, whole, so that nothing is lost.
            return _editor(
                page,
                edited,
                previews(db, edited, page.language),
                field_errors=too_long,
                unsaved=True,
                status=400,
            )
        if page.form.get("action") != "save":
            return _editor(page, edited, previews(db, edited, page.language), unsaved=True)
        try:
            saved = update_spec(db, cid, edited.spec, actor=page.user.name)
        except VarselError as e:
            return _editor(
                page,
                edited,
                previews(db, edited, page.language),
                error=translate(page.language, e.message),
                status=400,
            )
        report = lint_campaign(db, settings, cid, actor=page.user.name)
        return _editor(page, saved, previews(db, saved, page.language), lint=report, notice="saved")


@console.route("/kampanjer/{cid:int}/lint", role=Role.AUTHOR, methods=("POST",))
def lint_post(page: Page) -> Response:
    """Run lint on the saved campaign and show what it found."""
    cid = campaign_id(page)
    with page.db() as db:
        report = lint_campaign(db, page.site.settings, cid, actor=page.user.name)
        campaign = get_campaign(db, cid)
        return _editor(page, campaign, previews(db, campaign, page.language), lint=report)


@console.route("/kampanjer/{cid:int}/testsending", role=Role.AUTHOR, methods=("POST",))
async def test_send(page: Page) -> Response:
    """Send the saved message in one language to the operator's own address, signed."""
    cid = campaign_id(page)
    language = page.text("language")
    address = page.user.email

    def build() -> tuple[Campaign, bytes | None, str | None]:
        with page.db() as db:
            campaign = get_campaign(db, cid)
            if language not in LANGUAGES:
                return campaign, None, N_("Velg et språk.")
            if not address:
                return (
                    campaign,
                    None,
                    N_("Kontoen din har ingen e-postadresse. Be en administrator legge den inn."),
                )
            factory = make_factory(
                message_spec(campaign), key_paths(page.site.settings, campaign.spec)
            )
            recipient = _sample(db, cid, language, address, sample_code())
            return campaign, factory.build(recipient), None

    try:
        campaign, data, problem = await run_in_threadpool(build)
    except VarselError as e:
        return await _editor_again(page, cid, translate(page.language, e.message))
    if data is None or address is None:
        return await _editor_again(page, cid, shown(page.language, problem or ""))
    relay = RelayConfig.from_url(page.site.settings.smtp_url)
    failed = await documents.send(relay, campaign.spec.from_address, address, data)
    if failed is not None:
        # varsel's words in the page's language; a relay's reply as the relay wrote it.
        return await _editor_again(page, cid, translate(page.language, failed))
    return page.redirect(f"{PREFIX}/kampanjer/{cid}/maler", melding="test")


async def _editor_again(page: Page, cid: int, error: str | None) -> Response:
    def render() -> Response:
        with page.db() as db:
            campaign = get_campaign(db, cid)
            return _editor(
                page, campaign, previews(db, campaign, page.language), error=error, status=400
            )

    return await run_in_threadpool(render)
