"""An Altinn message: its texts in the unit's language, and the request that carries it.

The title is the campaign's own subject; the summary and the Markdown body are varsel's Altinn
texts (templates/altinn), filled with the campaign's sender, document and fields like the
letter's. The body shows the code and the verify address as text in code spans: never a link.
Names and other values are escaped, so a business called "*AS*" shows as written.
"""

from __future__ import annotations

import importlib.resources
import re
import uuid
from dataclasses import dataclass
from typing import Any

import jinja2

from varsel import codes
from varsel.altinn_client import ORGANISATION_URN, AltinnConfig, AltinnError
from varsel.campaign import LANGUAGES, CampaignSpec
from varsel.message_fields import clean_text
from varsel.sandbox import operator_sandbox
from varsel.unit import format_orgnr

# Any key made here is this namespace's UUID v5 of the delivery (id, orgnr, code): stable for
# the delivery, different for every delivery of every store (the code is random).
KEY_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://varsel.invalid/altinn/idempotent-key")
TITLE_MAX, SUMMARY_MAX, BODY_MAX = 255, 255, 30000  # Altinn's limits (errors 1037, 1042, 1022)

# The notice Altinn sends by e-mail (or SMS without one) to the business's notification
# addresses. Altinn fills in $sendersName$ and $correspondenceRecipientName$; no links, as
# Altinn asks. {title} is the message's title.
NOTICES: dict[str, dict[str, str]] = {
    "nb": {
        "emailSubject": "Ny melding i Altinn fra $sendersName$",
        "emailBody": "Hei. $correspondenceRecipientName$ har fått en melding fra $sendersName$ "
        "i Altinn: «{title}». Logg inn i Altinn for å lese den.",
        "smsBody": "$correspondenceRecipientName$ har fått en melding fra $sendersName$ i "
        "Altinn. Logg inn i Altinn for å lese den.",
        "reminderEmailSubject": "Påminnelse: ulest melding i Altinn fra $sendersName$",
        "reminderEmailBody": "Hei. $correspondenceRecipientName$ har en ulest melding fra "
        "$sendersName$ i Altinn: «{title}». Logg inn i Altinn for å lese den.",
        "reminderSmsBody": "Påminnelse: $correspondenceRecipientName$ har en ulest melding fra "
        "$sendersName$ i Altinn.",
    },
    "nn": {
        "emailSubject": "Ny melding i Altinn frå $sendersName$",
        "emailBody": "Hei. $correspondenceRecipientName$ har fått ei melding frå $sendersName$ "
        "i Altinn: «{title}». Logg inn i Altinn for å lese ho.",
        "smsBody": "$correspondenceRecipientName$ har fått ei melding frå $sendersName$ i "
        "Altinn. Logg inn i Altinn for å lese ho.",
        "reminderEmailSubject": "Påminning: ulesen melding i Altinn frå $sendersName$",
        "reminderEmailBody": "Hei. $correspondenceRecipientName$ har ei ulesen melding frå "
        "$sendersName$ i Altinn: «{title}». Logg inn i Altinn for å lese ho.",
        "reminderSmsBody": "Påminning: $correspondenceRecipientName$ har ei ulesen melding frå "
        "$sendersName$ i Altinn.",
    },
    "en": {
        "emailSubject": "New message in Altinn from $sendersName$",
        "emailBody": "Hello. $correspondenceRecipientName$ has received a message from "
        "$sendersName$ in Altinn: “{title}”. Log in to Altinn to read it.",
        "smsBody": "$correspondenceRecipientName$ has received a message from $sendersName$ in "
        "Altinn. Log in to Altinn to read it.",
        "reminderEmailSubject": "Reminder: unread message in Altinn from $sendersName$",
        "reminderEmailBody": "Hello. $correspondenceRecipientName$ has an unread message from "
        "$sendersName$ in Altinn: “{title}”. Log in to Altinn to read it.",
        "reminderSmsBody": "Reminder: $correspondenceRecipientName$ has an unread message from "
        "$sendersName$ in Altinn.",
    },
}


class AltinnTemplateError(AltinnError):
    """The campaign's texts cannot make an Altinn message."""


# -- the message ------------------------------------------------------------------------------

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")


def markdown_text(text: str) -> str:
    """Text as Markdown that shows it literally: no emphasis, links or HTML from a name."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", clean_text(text))


@dataclass(frozen=True)
class Content:
    """One correspondence's texts, in the shape of Altinn's `content`."""

    language: str
    title: str
    summary: str
    body: str  # Markdown


class AltinnTexts:
    """Renders each unit's message from the campaign's subject and varsel's Altinn texts."""

    def __init__(self, spec: CampaignSpec) -> None:
        env = operator_sandbox()
        folder = importlib.resources.files("varsel") / "templates" / "altinn"
        self._title: dict[str, jinja2.Template] = {}
        self._summary: dict[str, jinja2.Template] = {}
        self._body: dict[str, jinja2.Template] = {}
        for lang in LANGUAGES:
            template = spec.templates.get(lang)
            sources = {
                "emne": template.subject if template is not None else "",
                "sammendrag": (folder / f"{lang}.summary.txt.j2").read_text("utf-8"),
                "tekst": (folder / f"{lang}.md.j2").read_text("utf-8"),
            }
            compiled = {}
            for what, source in sources.items():
                try:
                    compiled[what] = env.from_string(source)
                except jinja2.TemplateSyntaxError as e:
                    raise AltinnTemplateError(
                        f"Altinn-{what} ({lang}), linje {e.lineno}: {e.message}"
                    ) from None
            self._title[lang] = compiled["emne"]
            self._summary[lang] = compiled["sammendrag"]
            self._body[lang] = compiled["tekst"]
        fields = {k: clean_text(v) for k, v in spec.fields.items()}
        self._plain: dict[str, Any] = {
            "sender": {
                "name": clean_text(spec.from_name),
                "organisation": clean_text(spec.organisation),
                "address": spec.from_address,
            },
            "document_title": clean_text(spec.document_title),
            "document_url": spec.document_url,
            "verify_url": spec.verify_url,
            "unsubscribe_url": spec.unsubscribe_url,
            "fields": fields,
        }
        self._markdown: dict[str, Any] = {
            **self._plain,
            "sender": {k: markdown_text(v) for k, v in self._plain["sender"].items()},
            "document_title": markdown_text(spec.document_title),
            "fields": {k: markdown_text(v) for k, v in fields.items()},
        }
        self.verify_url = spec.verify_url
        self.organisation = clean_text(spec.organisation)

    def render(self, orgnr: str, name: str, language: str, code: str, reason: str) -> Content:
        """The title, summary and body for one unit, checked against Altinn's rules."""
        lang = language if language in self._body else "nb"
        shown = codes.format_code(code)

        def context(base: dict[str, Any], unit_name: str) -> dict[str, Any]:
            unit = {"orgnr": orgnr, "name": unit_name, "municipality": None}
            return {
                **base,
                "unit": unit,
                "units": [unit],
                "organisation_names": unit_name,
                "address": format_orgnr(orgnr),
                "code": shown,
                "language": lang,
                "reason": reason,
            }

        plain = context(self._plain, clean_text(name))
        title = " ".join(self._render(self._title[lang], plain, "emne", lang).split())
        summary = " ".join(self._render(self._summary[lang], plain, "sammendrag", lang).split())
        body = self._render(
            self._body[lang], context(self._markdown, markdown_text(name)), "tekst", lang
        ).strip()
        if not title:
            raise AltinnTemplateError(f"Altinn-emnet ({lang}) blir tomt")
        for what, text, limit in (
            ("emnet", title, TITLE_MAX),
            ("sammendraget", summary, SUMMARY_MAX),
            ("teksten", body, BODY_MAX),
        ):
            if len(text) > limit:
                raise AltinnTemplateError(
                    f"Altinn-{what} ({lang}) blir {len(text)} tegn; Altinn tar høyst {limit}"
                )
        if shown not in body or self.verify_url not in body:
            raise AltinnTemplateError(
                f"Altinn-teksten ({lang}) viser ikke kontrollkoden og kontrolladressen"
            )
        return Content(lang, title, summary, body)

    @staticmethod
    def _render(template: jinja2.Template, context: dict[str, Any], what: str, lang: str) -> str:
        try:
            return template.render(context)
        except (jinja2.TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as e:
            raise AltinnTemplateError(f"Altinn-{what} ({lang}): malfeil: {e}") from None


def idempotent_key(delivery_id: int, orgnr: str, code: str) -> str:
    """The delivery's idempotent key: the same on every attempt, unique to the delivery."""
    return str(uuid.uuid5(KEY_NAMESPACE, f"{delivery_id}:{orgnr}:{code}"))


def request_body(
    config: AltinnConfig,
    campaign_id: int,
    delivery_id: int,
    orgnr: str,
    code: str,
    content: Content,
    sender_name: str,
) -> dict[str, Any]:
    """The InitializeCorrespondences request for one delivery."""
    notice = {k: v.replace("{title}", content.title) for k, v in NOTICES[content.language].items()}
    notification: dict[str, Any] = {
        "notificationTemplate": "CustomMessage",
        "notificationChannel": "EmailPreferred",
        "emailSubject": notice["emailSubject"],
        "emailBody": notice["emailBody"],
        "smsBody": notice["smsBody"],
        "sendReminder": config.send_reminder,
    }
    if config.send_reminder:
        notification.update(
            reminderNotificationChannel="EmailPreferred",
            reminderEmailSubject=notice["reminderEmailSubject"],
            reminderEmailBody=notice["reminderEmailBody"],
            reminderSmsBody=notice["reminderSmsBody"],
        )
    return {
        "correspondence": {
            "resourceId": config.resource_id,
            "sender": f"0192:{config.sender_orgnr}",  # 0192: Norwegian organisation numbers
            "sendersReference": f"varsel-{campaign_id}-{delivery_id}",
            "messageSender": sender_name[:256],
            "content": {
                "language": content.language,
                "messageTitle": content.title,
                "messageSummary": content.summary,
                "messageBody": content.body,
            },
            "notification": notification,
        },
        "recipients": [ORGANISATION_URN + orgnr],
        "idempotentKey": idempotent_key(delivery_id, orgnr, code),
    }
