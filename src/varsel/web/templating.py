"""Languages and templates: the catalogs, each language's Jinja environment and its filters."""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from datetime import date, datetime
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import markupsafe
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2.ext import Extension
from jinja2.lexer import Token, TokenStream
from markupsafe import Markup, escape

from varsel.erasure import is_stand_in
from varsel.web.page_slots import slot_filter

LANGUAGES = ("nb", "nn", "en")
LANGUAGE_NAMES = {"nb": "Bokmål", "nn": "Nynorsk", "en": "English"}
_OSLO = ZoneInfo("Europe/Oslo")


def N_(text: str) -> str:  # the name gettext extractors look for
    """Mark text for translation where it is defined; it is translated where it is shown."""
    return text


# -- languages ------------------------------------------------------------------------


@functools.cache
def _translations(language: str) -> Translations:
    # The .po files are the source; compiling them in memory at start-up (a few ms) means no
    # build step and no .mo file that can fall out of step with its .po.
    folder = resources.files("varsel.web") / "locale" / language / "LC_MESSAGES"
    with (folder / "messages.po").open("rb") as f:
        catalog = read_po(f, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def _local(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(_OSLO)


def _orgnr(value: str) -> str:
    if is_stand_in(value):
        return "–"  # a unit removed from the registry (erased): it has no number to show
    return " ".join(value[i : i + 3] for i in range(0, len(value), 3))


def _date(language: str, iso: str) -> str:
    # By the day in Oslo: every message of a campaign has its own time stamp, but few days.
    return long_date(language, _local(iso).date())


@functools.lru_cache(maxsize=4096)
def long_date(language: str, day: date) -> str:
    """A day as the pages write it: 29. november 2026; British English (29 November 2026), as
    the document e-mail writes it, not babel's US "long"."""
    return format_date(day, "d MMMM y" if language == "en" else "long", locale=language)


def day(language: str, iso: str) -> str:
    """A date, or the day of a time in Oslo, as long_date writes it: 29. november 2026.

    22:30 UTC on 30 March is already 31 March in Oslo.
    """
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    if moment.tzinfo is not None:
        moment = moment.astimezone(_OSLO)
    return long_date(language, moment.date())


@functools.lru_cache(maxsize=4096)
def date_time(language: str, iso: str) -> str:
    """A stored UTC time as Oslo's clock shows it: 29. november 2026 kl. 14.05 (29 November
    2026, 14:05 in English). Norwegian writes a time of day with a dot (Språkrådet), as the
    document e-mail and the command line do; English with a colon."""
    pattern = "d. MMMM y 'kl.' HH.mm" if language != "en" else "d MMMM y, HH:mm"
    return format_datetime(_local(iso), pattern, locale=language)


def clock(language: str, hour: int, minute: int) -> str:
    """A time of day as the language writes it: 14.05 in Norwegian, 14:05 in English."""
    return f"{hour:02d}{':' if language == 'en' else '.'}{minute:02d}"


def _with_lang(language: str, path: str, root: str = "") -> str:
    return root + path if language == "nb" else f"{root}{path}?lang={language}"


def _translated(translation: str, **values: Any) -> Markup:
    # What newstyle gettext does with a translation and values, as a filter: a template calls
    # a filter directly, where a function goes through the context's call machinery.
    if _only_text_fields(translation):
        # Markup's % wraps every value in a helper; for %(name)s fields escaping them first
        # gives the same text at a fraction of the cost.
        escaped = {name: _fast_escape(value) for name, value in values.items()}
        # Markup's constructor, without its Python-level __new__ (as _fast_escape does).
        return str.__new__(Markup, translation % escaped)
    return Markup(translation) % values  # noqa: S704 -- our own catalog, trusted as gettext does


_FIELD = re.compile(r"%(?:\([^)]*\))?[^%(]*?[a-zA-Z%]")


@functools.lru_cache(maxsize=1024)
def _only_text_fields(translation: str) -> bool:
    return all(
        f == "%%" or (f.startswith("%(") and f.endswith(")s")) for f in _FIELD.findall(translation)
    )


class TranslateLiterals(Extension):
    """Translates `_("literal")` once, when a template is compiled, instead of on every render.

    Each language has its own environment and its catalog never changes while the process runs,
    so a literal's translation is a constant. `_("literal", name=value)` becomes the translation
    with a filter that fills in the values (escaped, as newstyle gettext does), and
    `with_lang("/path")` the path under the site's root in the environment's language. Calls
    with a variable
    (`_(title)`) are left to the i18n extension at render time.
    """

    def filter_stream(self, stream: TokenStream) -> Iterator[Token]:
        tokens = list(stream)  # a template's tokens: a few thousand at most
        translations: Translations = self.environment.literal_translations  # type: ignore[attr-defined]
        language = str(self.environment.globals["lang"])
        root = str(self.environment.globals["root"])
        i = 0
        while i < len(tokens):
            token = tokens[i]
            window = tokens[i : i + 4]
            shape = [t.type for t in window]
            if shape[:3] == ["name", "lparen", "string"] and len(shape) == 4:
                literal, line = window[2].value, token.lineno
                if token.value == "_" and shape[3] == "rparen":
                    # As newstyle gettext does: the translation is a %-format with no values.
                    yield Token(line, "string", translations.gettext(literal) % {})
                    i += 4
                    continue
                if token.value == "_" and shape[3] == "comma":
                    # _("…", a=x) → "translation"|translated(a=x): the rest of the call stays.
                    yield Token(line, "string", translations.gettext(literal))
                    yield Token(line, "pipe", "|")
                    yield Token(line, "name", "translated")
                    yield Token(line, "lparen", "(")
                    i += 4
                    continue
                if token.value == "with_lang" and shape[3] == "rparen":
                    yield Token(line, "string", _with_lang(language, literal, root))
                    i += 4
                    continue
            yield token
            i += 1


# markupsafe's C escaping, as markupsafe.escape uses it; escape() then wraps the result with
# Markup's constructor in Python, which costs more than the escaping itself.
_escape_inner: Callable[[str], str] | None = getattr(markupsafe, "_escape_inner", None)


def _fast_escape(value: Any) -> Markup:
    """markupsafe.escape(value), without Markup's Python constructor for text and Markup."""
    kind = type(value)
    if kind is str and _escape_inner is not None:
        return str.__new__(Markup, _escape_inner(value))
    if kind is Markup:
        return value  # type: ignore[no-any-return]
    return escape(value)


class _Template(jinja2.Template):
    """A template whose {{ values }} are escaped by _fast_escape: the same text, sooner."""

    @classmethod
    def _from_namespace(
        cls,
        environment: jinja2.Environment,
        namespace: MutableMapping[str, Any],
        globals: MutableMapping[str, Any],
    ) -> jinja2.Template:
        # A compiled template's module imports escape from jinja2.runtime and calls it for
        # every value; this is its namespace before any of it runs. (Jinja is pinned.)
        namespace["escape"] = _fast_escape
        return super()._from_namespace(environment, namespace, globals)


class _Environment(jinja2.Environment):
    """An environment whose templates are looked up once, by name.

    The templates are package files that never change while the site runs, but a child
    template asks for its parent on every render, and Jinja's lookup makes a weak reference
    and takes its cache's lock each time (~10 µs a page).
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.found: dict[tuple[str, str | None], jinja2.Template] = {}

    def get_template(
        self,
        name: str | jinja2.Template,
        parent: str | None = None,
        globals: MutableMapping[str, Any] | None = None,
    ) -> jinja2.Template:
        if globals or not isinstance(name, str):
            return super().get_template(name, parent, globals)
        found = self.found.get((name, parent))
        if found is None:
            found = self.found[(name, parent)] = super().get_template(name, parent)
        return found


@functools.cache
def environment(language: str, root: str = "") -> jinja2.Environment:
    """The templates in one language under a root (built once per process: they never change)."""
    env = _Environment(
        loader=jinja2.PackageLoader("varsel.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n", TranslateLiterals],
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # the templates are package files: no need to stat them per page
    )
    env.template_class = _Template
    env.extend(literal_translations=_translations(language))
    env.install_gettext_translations(_translations(language), newstyle=True)  # type: ignore[attr-defined]
    # The filters a compiled page applies to per-request values (see varsel.web.page_slots).
    env.filters["date"] = slot_filter(functools.partial(_date, language))
    env.filters["datetime"] = functools.partial(date_time, language)
    env.filters["orgnr"] = slot_filter(_orgnr)
    env.filters["urlencode"] = slot_filter(env.filters["urlencode"])
    env.filters["translated"] = _translated
    env.globals["lang"] = language
    env.globals["root"] = root  # the site's path prefix (see site.root_of), before every link
    env.globals["languages"] = LANGUAGE_NAMES
    env.globals["language_list"] = tuple(LANGUAGE_NAMES.items())
    # A link to a page of the site in this language (folded into the templates for literals).
    env.globals["with_lang"] = functools.partial(_with_lang, language, root=root)
    return env


def gettext(language: str, text: str) -> str:
    """The text in the language (the msgid is Bokmål)."""
    return _translations(language).gettext(text)


def ngettext(language: str, singular: str, plural: str, n: int) -> str:
    """The singular or plural form for n in the language (the msgids are Bokmål)."""
    return _translations(language).ngettext(singular, plural, n)


# -- text from a template ----------------------------------------------------------------


@functools.cache
def _template(language: str, name: str, root: str) -> tuple[jinja2.Template, dict[str, Any]]:
    page = environment(language, root).get_template(name)
    return page, dict(page.globals)


def render_text(language: str, name: str, values: Mapping[str, Any], root: str = "") -> str:
    """Template.render(values) under the site's root, without its per-call copy of the globals.

    Template.render makes its context from a ChainMap of the template's and the environment's
    globals, which costs ~10 µs a page by itself; they never change here, so they are copied
    to a plain dict once per template. (Jinja is pinned: this is how 3.1 makes a context.)
    """
    page, globals_ = _template(language, name, root)
    env = page.environment
    context = env.context_class(env, {**globals_, **values}, page.name, page.blocks, globals_)
    try:
        return env.concat(page.root_render_func(context))
    except Exception:
        env.handle_exception()
