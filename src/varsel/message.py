"""One authenticated message per recipient: templates in nb, nn and en, MIME built by hand, DKIM."""

from __future__ import annotations

import dataclasses
import importlib.resources
import re
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from types import CodeType
from typing import Any
from urllib.parse import urlsplit

import jinja2
from jinja2 import meta
from markupsafe import Markup, escape

from varsel import codes
from varsel.dkim import Signer
from varsel.errors import N_, Text, quoted, visible
from varsel.message_fields import (
    MARKUP,
    a_label,
    clean_text,
    display_address,
    header_address,
    phrase,
    references,
    refuse_breakers,
    subject_field,
    url_value,
)
from varsel.message_fields import (
    HeaderInjectionError as HeaderInjectionError,  # noqa: PLC0414  # re-exported
)
from varsel.message_fields import (
    MessageError as MessageError,  # noqa: PLC0414  # re-exported
)
from varsel.message_slots import MARKER as SLOT_MARKER
from varsel.message_slots import (
    RANDOM_GLOBALS,
    CompiledPart,
    CompilingSandbox,
    NotCompilable,
    Slot,
    UnitSlots,
    check_source,
    compile_output,
    fill,
    prepare,
    render_slots,
    slot_filter,
)
from varsel.quoted_printable import QuotedPrintable, quoted_printable_line
from varsel.sandbox import OperatorSandbox, operator_sandbox
from varsel.sandbox_texts import checked_output
from varsel.unit import format_orgnr

LANGUAGES = ("nb", "nn", "en")
_TOKEN = re.compile(r"[A-Za-z0-9._~-]{1,200}\Z")
_FEEDBACK_ID = re.compile(r"[!-~]{1,200}\Z")
_LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{1,8})*\Z")  # BCP 47, as Content-Language
_AND = {"nb": "og", "nn": "og", "en": "and"}


@dataclass(frozen=True)
class UnitRef:
    """A business the message is addressed to."""

    orgnr: str
    name: str
    municipality: str | None  # municipality name, e.g. "Bærum"


@dataclass(frozen=True)
class MessageSpec:
    """Everything that is the same for every recipient of a campaign."""

    campaign_id: int
    from_address: str
    from_name: str
    reply_to: str | None
    organisation: str
    subjects: Mapping[str, str]  # language -> subject template (Jinja2 text)
    text_templates: Mapping[str, str]  # language -> Jinja2 source, plain text
    html_templates: Mapping[str, str]  # language -> Jinja2 source, HTML
    document_title: str
    document_url: str
    verify_url: str  # the authority's own page, e.g. "https://www.politiet.no/kontroll"
    unsubscribe_url: (
        str  # base, e.g. "https://varsel.politiet.no/avmelding"; token appended as /TOKEN
    )
    unsubscribe_mailto: str  # e.g. "avmelding@nsr.no"
    allow_links: bool = False  # clickable links in the HTML part only when True
    allowed_link_domains: tuple[str, ...] = ()
    fields: Mapping[str, str] = field(default_factory=dict)  # extra campaign fields for templates
    feedback_id: str = ""  # stable Feedback-ID, e.g. "c42:varsel:nsr.no"


@dataclass(frozen=True)
class Recipient:
    """One address and the units it receives the message for."""

    delivery_id: int
    address: str  # recipient e-mail (already validated; A-label domain)
    units: tuple[UnitRef, ...]  # one or several (an address shared by many units)
    language: str  # "nb" | "nn" | "en"
    code: str  # grouped verification code
    unsubscribe_token: str  # opaque, URL-safe


@dataclass(frozen=True)
class Rendered:
    """The three texts of one message, before MIME: for previews and the campaign linter."""

    subject: str
    text: str
    html: str


def default_templates() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """The shipped templates: (subjects, plain texts, HTML) by language."""
    folder = importlib.resources.files("varsel") / "templates" / "email"
    subjects, texts, htmls = {}, {}, {}
    for language in LANGUAGES:
        subjects[language] = (folder / f"{language}.subject.txt").read_text("utf-8").strip()
        texts[language] = (folder / f"{language}.txt.j2").read_text("utf-8")
        htmls[language] = (folder / f"{language}.html.j2").read_text("utf-8")
    return subjects, texts, htmls


def _clean_unit(unit: UnitRef) -> UnitRef:
    municipality_ok = unit.municipality is None or unit.municipality.isprintable()
    if unit.name.isprintable() and unit.orgnr.isprintable() and municipality_ok:
        return unit
    municipality = None if unit.municipality is None else clean_text(unit.municipality)
    return UnitRef(clean_text(unit.orgnr), clean_text(unit.name), municipality)


def _join_names(names: Sequence[str], language: str) -> str:
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} {_AND.get(language, 'og')} {names[-1]}"


_UNIT_FIELDS = frozenset(f.name for f in dataclasses.fields(UnitRef))


class _Sandbox(OperatorSandbox):
    """Jinja's immutable sandbox, with a short way to the values varsel itself puts in."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        # The sandbox vets every attribute it hands out (several isinstance checks against
        # abstract classes), and for a dict it first fails on the attribute, raising and catching
        # an exception. Units and the context's dicts hold only strings, so their fields are
        # safe as they are; anything else, "__class__" included, takes the sandbox's own way.
        kind = type(obj)
        if kind is UnitRef and attribute in _UNIT_FIELDS:
            return getattr(obj, attribute)
        if kind is dict and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


class _CompilingSandbox(CompilingSandbox, _Sandbox):
    """The sandbox that renders a template once with slots (see message_slots)."""


_RECIPIENT_VALUES = ("organisation_names", "code", "address", "unsubscribe_url")
_UNPLANNED: Any = object()  # no plan made yet for a language and number of units
_MAX_PLANS = 256  # plans kept per factory: addresses shared by more units than most are rare

# Compiled templates by environment kind, escaping and source. A factory is made for every
# send, preview and lint, and Jinja takes ~10 ms to compile a default template, far more than
# rendering it: the console's pages and lint make several factories for one campaign. The
# code does not depend on the environment it was compiled in beyond these (its filters and
# finalize are looked up where it runs: see _rebind), and every environment of one kind is
# set up alike (_environment).
_COMPILED_KEPT = 256
_compiled_code: dict[tuple[type[jinja2.Environment], bool, str], CodeType] = {}
_compiled_lock = threading.Lock()


def _compiled(env: jinja2.Environment, source: str) -> CodeType:
    """env.compile(source), from the cache when the same kind of environment compiled it."""
    key = (type(env), bool(env.autoescape), source)
    with _compiled_lock:
        code = _compiled_code.get(key)
    if code is None:
        code = env.compile(source)  # a TemplateSyntaxError is not kept: it is raised each time
        with _compiled_lock:
            if len(_compiled_code) >= _COMPILED_KEPT:
                del _compiled_code[next(iter(_compiled_code))]  # the oldest
            _compiled_code[key] = code
    return code


# What a template can get wrong at run time, beyond Jinja's own errors: {{ 1 / 0 }}, {{ x[9] }}.
# A macro that calls itself without end stops at Python's recursion limit: RecursionError.
_TEMPLATE_ERRORS = (
    jinja2.TemplateError,
    ArithmeticError,
    LookupError,
    TypeError,
    ValueError,
    RecursionError,
)


def _where(delivery_id: int | None) -> Text:
    """What a template error names: the subject (the same for everyone) or the delivery."""
    if delivery_id is None:
        return Text(N_("emne"))
    return Text("levering %(delivery)s", delivery=delivery_id)


def _render(template: jinja2.Template, context: dict[str, Any], delivery_id: int | None) -> str:
    """Render with a context that already holds the environment's globals."""
    # Template.render() copies the context twice and merges the globals each time, which costs
    # as much as a short template; shared=True hands over the dict that render() built for us.
    try:
        # The environment's concat, not "".join: it stops a render that writes too much.
        parts = template.root_render_func(template.new_context(context, shared=True))
        return template.environment.concat(parts)
    except _TEMPLATE_ERRORS as e:
        message = str(e) if isinstance(e, jinja2.TemplateError) else f"{type(e).__name__}: {e}"
        raise MessageError(
            Text("%(where)s: malfeil: %(error)s", where=_where(delivery_id), error=message)
        ) from None


def _default_now() -> datetime:
    return datetime.now().astimezone()


class MessageFactory:
    """Builds the complete, signed message for each recipient of one campaign."""

    def __init__(
        self,
        spec: MessageSpec,
        signer: Signer | None,
        *,
        message_id_domain: str | None = None,
        now: Callable[[], datetime] = _default_now,
        compile_templates: bool = True,
    ) -> None:
        self.spec = spec
        self.signer = signer
        self.now = now
        # False renders every message with Jinja: for tests that compare the two ways.
        self.compile_templates = compile_templates
        languages = set(spec.subjects)
        if not languages or not languages == set(spec.text_templates) == set(spec.html_templates):
            raise MessageError("emne, tekstmal og HTML-mal må finnes for de samme språkene")
        for language in languages:
            if not _LANGUAGE_TAG.match(refuse_breakers(language, "språkkode")):
                raise MessageError(
                    f"ugyldig språkkode {quoted(language)} (for eksempel nb, nn, en)"
                )

        from_address = header_address(spec.from_address, "avsenderadresse")
        self._sender_domain = from_address.rpartition("@")[2]
        self._mid_domain = a_label(message_id_domain or self._sender_domain, "Message-ID-domene")
        reply_to = header_address(spec.reply_to, "svaradresse") if spec.reply_to else None
        self._unsubscribe_base = url_value(spec.unsubscribe_url, "avmeldingsadresse").rstrip("/")
        self._unsubscribe_mailto = header_address(spec.unsubscribe_mailto, "avmeldingsadresse")
        feedback_id = spec.feedback_id or f"c{spec.campaign_id}:varsel:{self._sender_domain}"
        if not _FEEDBACK_ID.match(refuse_breakers(feedback_id, "Feedback-ID")):
            raise MessageError(f"Feedback-ID: ugyldig verdi {quoted(feedback_id)}")
        for what, url in (
            ("kontrolladresse", spec.verify_url),
            ("dokumentadresse", spec.document_url),
        ):
            url_value(url, what)
        self._link_domains = tuple(
            a_label(d, "tillatt lenkedomene") for d in spec.allowed_link_domains
        )
        if spec.allow_links and not self._link_domains:
            raise MessageError("lenker er slått på, men ingen domener er tillatt")

        name = phrase(spec.from_name, "avsendernavn")
        from_field = f"From: {name} <{from_address}>" if name else f"From: {from_address}"
        # The constant fields, built once; only To, Subject, Date, Message-ID, List-Unsubscribe
        # and Content-Language change per recipient.
        self._from = f"{from_field}\r\n".encode("ascii")
        self._reply_to = f"Reply-To: {reply_to}\r\n".encode("ascii") if reply_to else b""
        self._boundary = f"=_varsel_{secrets.token_hex(8)}"
        self._after_unsubscribe = (
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
            f"Feedback-ID: {feedback_id}\r\n"
            "MIME-Version: 1.0\r\n"
        )
        self._content_type = (
            f'Content-Type: multipart/alternative;\r\n boundary="{self._boundary}"\r\n\r\n'
        ).encode("ascii")
        self._text_head = (
            f"--{self._boundary}\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ).encode("ascii")
        self._html_head = (
            f"\r\n--{self._boundary}\r\n"
            "Content-Type: text/html; charset=utf-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ).encode("ascii")
        self._close = f"\r\n--{self._boundary}--\r\n".encode("ascii")
        self._subject_cache: dict[str, bytes] = {}
        self._checked_markup: set[str] = set()
        self._qp = QuotedPrintable()
        self._date: tuple[datetime, str] | None = None
        self._plans: dict[tuple[str, int], tuple[CompiledPart, CompiledPart] | None] = {}
        self._slot_templates: dict[str, tuple[jinja2.Template, jinja2.Template]] = {}
        self._slot_envs: tuple[_Sandbox, _Sandbox] | None = None
        self._compile_templates(languages, from_address, reply_to)

    def _compile_templates(
        self, languages: set[str], from_address: str, reply_to: str | None
    ) -> None:
        """The Jinja templates and the base context, and the subjects that are always the same."""
        spec = self.spec
        self._code: dict[int, CodeType] = {}  # by id() of the template compiled from it
        text_env = self._environment(autoescape=False)
        html_env = self._environment(autoescape=True)
        # _render() passes the context as it is, so it carries the globals (range, namespace).
        self._base_context: dict[str, Any] = {
            **text_env.globals,
            "sender": {
                "name": clean_text(spec.from_name),
                "organisation": clean_text(spec.organisation),
                "address": from_address,
            },
            "document_title": clean_text(spec.document_title),
            "document_url": spec.document_url,
            "verify_url": spec.verify_url,
            "unsubscribe_mailto": self._unsubscribe_mailto,
            "reply_to": reply_to,
            "fields": {k: clean_text(v) for k, v in spec.fields.items()},
        }
        self._subjects, self._texts, self._htmls = {}, {}, {}
        # Subjects that use only what is the same for every recipient are rendered once.
        self._fixed_subjects: dict[str, str] = {}
        for language in sorted(languages):
            source = spec.subjects[language].strip()
            self._subjects[language] = self._compile(
                text_env, source, Text("emne (%(language)s)", language=language)
            )
            if meta.find_undeclared_variables(text_env.parse(source)) <= {
                *self._base_context,
                "language",
            }:
                context = {**self._base_context, "language": language}
                self._fixed_subjects[language] = self._render_subject(language, context, None)
            self._texts[language] = self._compile(
                text_env,
                spec.text_templates[language],
                Text("tekstmal (%(language)s)", language=language),
            )
            self._htmls[language] = self._compile(
                html_env,
                spec.html_templates[language],
                Text("HTML-mal (%(language)s)", language=language),
            )

    def _environment(self, *, autoescape: bool, kind: type[_Sandbox] = _Sandbox) -> _Sandbox:
        env = operator_sandbox(kind, autoescape=autoescape)
        env.filters["link"] = self._html_link if autoescape else str
        # Set in every environment, so that code compiled in one runs in the other: the
        # environment that renders with slots sets its own (message_slots).
        env.finalize = checked_output
        return env

    def _compile(self, env: _Sandbox, source: str, what: str) -> jinja2.Template:
        try:
            code = _compiled(env, source)
        except jinja2.TemplateSyntaxError as e:
            raise MessageError(
                Text(
                    "%(what)s, linje %(line)s: %(error)s", what=what, line=e.lineno, error=e.message
                )
            ) from None
        template = env.template_class.from_code(env, code, env.make_globals(None))
        self._code[id(template)] = code
        return template

    def _rebind(self, template: jinja2.Template, env: _Sandbox) -> jinja2.Template:
        """The same compiled template, rendering in another environment (filters, finalize)."""
        # Compiling costs far more than rendering, and the generated code looks its filters,
        # tests and finalize up in the environment it runs in.
        code = self._code[id(template)]
        return env.template_class.from_code(env, code, env.make_globals(None))

    def _link_allowed(self, url: str) -> bool:
        if not self.spec.allow_links:
            return False
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            return False
        try:
            host = a_label(parts.hostname, "lenke")
        except MessageError:
            return False
        return any(host == d or host.endswith("." + d) for d in self._link_domains)

    def _html_link(self, url: str) -> Markup:
        """A URL in the HTML part: a link only if links are on and its host is allowed."""
        if self._link_allowed(url):
            return Markup('<a href="{0}">{0}</a>').format(url)
        # Plain text, never an <a>: the reader is told to type the address, and a client that
        # turns it into a link on its own still shows the full address.
        return escape(url)

    def render(self, recipient: Recipient) -> Rendered:
        """Subject, plain text and HTML for one recipient, checked for headers and links."""
        return Rendered(*self._render_parts(recipient))

    def fixed_subject(self, language: str) -> str | None:
        """The language's subject when it is the same for every recipient (names no unit)."""
        return self._fixed_subjects.get(language)

    def subject(self, recipient: Recipient) -> str:
        """The recipient's subject as its message would have it; MessageError if it cannot be."""
        language, units, values = self._recipient_values(recipient)
        subject: str = self._context(language, units, values, recipient.delivery_id)["subject"]
        subject_field(subject)  # one that is too long for its header field is refused there
        return subject

    def _render_parts(self, recipient: Recipient) -> tuple[str, str, str]:
        """Subject, plain text and HTML, links checked."""
        language, units, values = self._recipient_values(recipient)
        context = self._context(language, units, values, recipient.delivery_id)
        subject = context["subject"]
        text = _render(self._texts[language], context, recipient.delivery_id)
        html_text = _render(self._htmls[language], context, recipient.delivery_id)
        self._check_links(html_text)
        return subject, text, html_text

    def _recipient_values(self, recipient: Recipient) -> tuple[str, list[UnitRef], dict[Any, Any]]:
        """The recipient checked: language, cleaned units, and the values that name it."""
        language = recipient.language
        if language not in self._subjects:
            raise MessageError(
                f"levering {recipient.delivery_id}: ingen mal for språket {quoted(language)}"
            )
        if not recipient.units:
            raise MessageError(f"levering {recipient.delivery_id}: ingen virksomhet å sende til")
        canonical = codes.normalise(recipient.code)
        if canonical is None:
            raise MessageError(f"levering {recipient.delivery_id}: ugyldig kontrollkode")
        token = recipient.unsubscribe_token
        if not _TOKEN.match(refuse_breakers(token, "avmeldingsnøkkel")):
            raise MessageError(f"levering {recipient.delivery_id}: ugyldig avmeldingsnøkkel")
        units = [_clean_unit(u) for u in recipient.units]
        values: dict[Any, Any] = {
            "organisation_names": _join_names([u.name for u in units], language),
            "code": codes.format_code(canonical),
            "address": display_address(clean_text(recipient.address)),
            "unsubscribe_url": f"{self._unsubscribe_base}/{token}",
        }
        return language, units, values

    def _context(
        self, language: str, units: list[UnitRef], values: dict[Any, Any], delivery_id: int
    ) -> dict[str, Any]:
        """The Jinja context of one recipient, its subject rendered."""
        context = dict(self._base_context)
        context.update(values, units=units, unit=units[0], language=language)
        subject = self._fixed_subjects.get(language)
        if subject is None:
            subject = self._render_subject(language, context, delivery_id)
        context["subject"] = subject
        return context

    def bodies(self, recipient: Recipient) -> tuple[str, bytes, bytes]:
        """The subject and the two quoted-printable bodies (CRLF line ends) build() writes."""
        language, units, values = self._recipient_values(recipient)
        plan = self._plans.get((language, len(units)), _UNPLANNED)
        if plan is _UNPLANNED:
            plan = self._plan(language, len(units))
        if plan is not None:
            subject = self._fixed_subjects.get(language)
            if subject is None:
                context = self._context(language, units, values, recipient.delivery_id)
                subject = context["subject"]
                values["subject"] = subject
            for position, unit in enumerate(units):
                values[position, "orgnr"] = unit.orgnr
                values[position, "name"] = unit.name
                values[position, "municipality"] = unit.municipality
            text_part, html_part = plan
            text = fill(text_part, values, quoted_printable_line)
            html_body = fill(html_part, values, quoted_printable_line)
            if text is not None and html_body is not None:
                return subject, text, html_body
        subject, text_str, html_text = self._render_parts(recipient)
        return subject, self._qp.encode(text_str), self._qp.encode(html_text)

    def _plan(self, language: str, count: int) -> tuple[CompiledPart, CompiledPart] | None:
        """The compiled text and HTML parts for recipients of count units; None: use Jinja."""
        try:
            plan = self._compile_plan(language, count)
        except Exception:  # anything at all: the Jinja path renders (or reports) it
            plan = None
        if len(self._plans) < _MAX_PLANS:
            self._plans[language, count] = plan
        return plan

    def _compile_plan(self, language: str, count: int) -> tuple[CompiledPart, CompiledPart]:
        if not self.compile_templates:
            raise NotCompilable("compiling is off")
        templates = self._slot_templates.get(language)
        if templates is None:
            text_env, html_env = self._slot_environments()
            text_source = self.spec.text_templates[language]
            html_source = self.spec.html_templates[language]
            check_source(text_env, text_source)
            check_source(html_env, html_source)
            templates = (
                self._rebind(self._texts[language], text_env),
                self._rebind(self._htmls[language], html_env),
            )
            self._slot_templates[language] = templates
        text_env, html_env = self._slot_environments()
        units = [UnitSlots(position) for position in range(count)]
        context = {k: v for k, v in self._base_context.items() if k not in RANDOM_GLOBALS}
        context.update(
            {
                key: Slot(key)
                for key in ("organisation_names", "code", "address", "unsubscribe_url")
            },
            units=units,
            unit=units[0],
            language=language,
            subject=self._fixed_subjects.get(language) or Slot("subject"),
        )
        encode_line = quoted_printable_line
        text, text_slots = render_slots(text_env, templates[0], context)
        html_text, html_slots = render_slots(html_env, templates[1], context)
        text_part = compile_output(text, text_slots, encode_line)
        html_part = compile_output(html_text, html_slots, encode_line)
        # Values written out escaped are text without "<" or ">": outside markup they cannot
        # add or change any, so every recipient's HTML has the markup checked here.
        markup_spans = [m.span() for m in MARKUP.finditer(html_text)]
        for marker in SLOT_MARKER.finditer(html_text):
            escaped = marker.group(1) == "&amp;"
            inside = any(a <= marker.start() < b for a, b in markup_spans)
            if inside or not escaped or self.spec.allow_links:
                raise NotCompilable("a value in the HTML may change its markup")
        self._check_links(html_text)
        return text_part, html_part

    def _slot_environments(self) -> tuple[_Sandbox, _Sandbox]:
        """The environments that render templates with slots (made once)."""
        if self._slot_envs is None:
            text_env = self._environment(autoescape=False, kind=_CompilingSandbox)
            html_env = self._environment(autoescape=True, kind=_CompilingSandbox)
            prepare(text_env, {"orgnr": slot_filter(format_orgnr), "link": slot_filter(str)})
            prepare(
                html_env,
                {"orgnr": slot_filter(format_orgnr), "link": slot_filter(self._html_link)},
            )
            self._slot_envs = (text_env, html_env)
        return self._slot_envs

    def _render_subject(
        self, language: str, context: dict[str, Any], delivery_id: int | None
    ) -> str:
        subject = _render(self._subjects[language], context, delivery_id)
        # Line breaks are refused before cleaning, which would quietly make them spaces.
        subject = clean_text(refuse_breakers(subject.strip(), "emne"))
        if not subject:
            raise MessageError(Text("%(where)s: emnet er tomt", where=_where(delivery_id)))
        return subject

    def _check_links(self, html_text: str) -> None:
        # The markup is the same for nearly every recipient (names and codes are escaped text),
        # so each distinct markup is checked once; the key holds all that the check reads.
        markup = "\n".join(MARKUP.findall(html_text))
        if markup in self._checked_markup:
            return
        for attribute, url in references(markup):
            # Nothing is ever loaded (no images, no pixels, no fonts); links only when allowed.
            if attribute != "href" or not self._link_allowed(url):
                raise MessageError(
                    Text(
                        "HTML-malen lenker til eller laster «%(url)s», som ikke er tillatt",
                        url=visible(url[:80]),
                    )
                )
        if len(self._checked_markup) > 1024:
            self._checked_markup.clear()  # links that carry a token differ per recipient
        self._checked_markup.add(markup)

    def _date_value(self) -> str:
        # format_datetime costs more than the rest of the header block; it changes once a second.
        now = self.now().replace(microsecond=0)
        if self._date is None or self._date[0] != now:
            self._date = (now, format_datetime(now))
        return self._date[1]

    def build(self, recipient: Recipient) -> bytes:
        """The complete RFC 5322 message for one recipient, DKIM-signed if there is a signer."""
        return self.build_with_id(recipient)[0]

    def build_with_id(self, recipient: Recipient) -> tuple[bytes, str]:
        """build(), and the message's Message-ID ("<...>") as the store keeps it."""
        return self.build_many([recipient])[0]

    def build_many(self, recipients: Sequence[Recipient]) -> list[tuple[bytes, str]]:
        """build_with_id() for each recipient; signed together, which costs less CPU."""
        built = [self._unsigned(r) for r in recipients]
        if self.signer is None:
            return built
        # Every body line comes from quoted_printable_line or is a fixed MIME line, so the body
        # is already in DKIM's relaxed form (test_message checks this for hostile templates).
        signed = self.signer.sign_many([m for m, _ in built], body_is_relaxed=True)
        return [(m, message_id) for m, (_, message_id) in zip(signed, built, strict=True)]

    def _unsigned(self, recipient: Recipient) -> tuple[bytes, str]:
        """The message before DKIM, and its Message-ID."""
        to = header_address(recipient.address, "mottakeradresse")
        subject, text, html_text = self.bodies(recipient)
        subject_bytes = self._subject_cache.get(subject)
        if subject_bytes is None:
            subject_bytes = subject_field(subject)
            if len(self._subject_cache) > 4096:
                self._subject_cache.clear()  # subjects that name each unit would grow it forever
            self._subject_cache[subject] = subject_bytes
        token = recipient.unsubscribe_token
        to_field = f"To: {to}\r\n".encode("ascii")
        message_id = f"<{recipient.delivery_id}.{secrets.token_hex(8)}@{self._mid_domain}>"
        dated = f"Date: {self._date_value()}\r\nMessage-ID: {message_id}\r\n".encode("ascii")
        unsubscribe = (
            f"List-Unsubscribe: <{self._unsubscribe_base}/{token}>,\r\n"
            f" <mailto:{self._unsubscribe_mailto}?subject=unsubscribe-{token}>\r\n"
            f"{self._after_unsubscribe}"
            f"Content-Language: {recipient.language}\r\n"
        ).encode("ascii")
        message = b"".join(
            (
                self._from,
                to_field,
                subject_bytes,
                dated,
                self._reply_to,
                unsubscribe,
                self._content_type,
                self._text_head,
                text,
                self._html_head,
                html_text,
                self._close,
            )
        )
        return message, message_id
