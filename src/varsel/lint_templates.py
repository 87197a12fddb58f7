"""The campaign linter's checks of the templates' sources, before anything is rendered.

Jinja's syntax errors said in Bokmål, names and `fields` the templates use but the campaign
does not give, and a language whose plain text and HTML are not both its own or both the
defaults. Each finding names the template as the definition does: `templates.nb.text, linje 3`.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from varsel.campaign_spec import CampaignSpec, Template
from varsel.errors import N_, Text, listed
from varsel.lint_report import Finding, Severity
from varsel.message import UnitRef

# What each kind of template may use besides Jinja's own globals (message.py, letter_render.py).
_EMAIL_NAMES = frozenset(
    {
        "sender",
        "document_title",
        "document_url",
        "verify_url",
        "unsubscribe_mailto",
        "unsubscribe_url",
        "reply_to",
        "fields",
        "organisation_names",
        "code",
        "address",
        "units",
        "unit",
        "language",
        "subject",
    }
)
_LETTER_NAMES = frozenset(
    {
        "sender",
        "document_title",
        "document_url",
        "verify_url",
        "fields",
        "organisation_names",
        "code",
        "units",
        "unit",
        "language",
        "reason",
    }
)
# The attributes of the objects templates get (message.UnitRef, the sender's table): another
# one fails only when the message is rendered, and was blamed on the registry's data.
_ATTRIBUTES = {
    "unit": tuple(sorted(f.name for f in dataclasses.fields(UnitRef))),
    "sender": ("address", "name", "organisation"),  # the table message.py and letters build
}
_FILTERS = ("orgnr", "link")  # varsel's own filters, besides Jinja's built-in ones


def _environment() -> jinja2.Environment:
    # As the message factory's: the same syntax, and filters known by name.
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    for name in _FILTERS:
        env.filters[name] = str
    return env


# Jinja's commonest complaints (its English text, as a pattern) and what the operator is told.
_JINJA_MESSAGES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"unexpected end of template, expected 'end of print statement'"),
        N_("malen slutter før «}}» som avslutter «{{»"),
    ),
    (
        re.compile(r"unexpected end of template, expected 'end of statement block'"),
        N_("malen slutter før «%%}» som avslutter «{%%»"),
    ),
    (
        re.compile(r"Unexpected end of template\. Jinja was looking for .*'(?P<end>end\w+)'"),
        N_("malen slutter før «{%% %(end)s %%}»"),
    ),
    (
        re.compile(r"Encountered unknown tag '(?P<end>end\w+)'"),
        N_("«{%% %(end)s %%}» avslutter ingenting"),
    ),
    (re.compile(r"Encountered unknown tag '(?P<tag>[^']*)'"), N_("ukjent kode «{%% %(tag)s %%}»")),
    (re.compile(r"No filter named '(?P<name>[^']*)'"), N_("filteret «%(name)s» finnes ikke")),
    (
        re.compile(r"expected token 'end of print statement', got '(?P<token>[^']*)'"),
        N_("ventet «}}», fant «%(token)s»"),
    ),
    (re.compile(r"unexpected '(?P<token>[^']*)'"), N_("uventet «%(token)s»")),
    (re.compile(r"unexpected char '(?P<token>[^']*)'"), N_("uventet tegn «%(token)s»")),
)


def jinja_message(english: str) -> str:
    """Jinja's description of a syntax error in Bokmål; one it has not seen says Jinja's words."""
    for pattern, msgid in _JINJA_MESSAGES:
        found = pattern.search(english)
        if found:
            return Text(msgid, **found.groupdict())
    return Text("Jinja sier: %(error)s", error=english)


def _sources(template: Template) -> Iterator[tuple[str, str, frozenset[str]]]:
    """(key, source, the names it may use) of one language's templates."""
    yield "subject", template.subject, _EMAIL_NAMES
    yield "text", template.text, _EMAIL_NAMES
    yield "html", template.html, _EMAIL_NAMES
    if template.letter:
        yield "letter", template.letter, _LETTER_NAMES


def _error(language: str, message: str) -> Finding:
    return Finding(Severity.ERROR, "template", language, message)


def _names_used(tree: nodes.Template, known: frozenset[str]) -> Iterator[tuple[int, str]]:
    """(line, name) of each name the template reads that it neither defines nor may use."""
    unknown = meta.find_undeclared_variables(tree) - known - set(_environment().globals)
    seen: set[str] = set()
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name in unknown and node.name not in seen:
            seen.add(node.name)
            yield node.lineno, node.name


def _attributes_unknown(tree: nodes.Template) -> Iterator[tuple[int, str, str]]:
    """(line, object, attribute) of each `unit.x` or `sender.x` that no message has."""
    seen: set[tuple[str, str]] = set()
    for node in tree.find_all(nodes.Getattr):
        owner = node.node.name if isinstance(node.node, nodes.Name) else ""
        known = _ATTRIBUTES.get(owner)
        if known is not None and node.attr not in known and (owner, node.attr) not in seen:
            seen.add((owner, node.attr))
            yield node.lineno, owner, node.attr


def _field_keys(tree: nodes.Node) -> Iterator[tuple[int, str]]:
    """(line, key) of each `fields.key` and `fields["key"]` in a template or an expression."""
    yield from _field_key(tree)
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        yield from _field_key(node)


def _field_key(node: nodes.Node) -> Iterator[tuple[int, str]]:
    if isinstance(node, nodes.Getattr) and _is_fields(node.node):
        yield node.lineno, node.attr
    elif (
        isinstance(node, nodes.Getitem)
        and _is_fields(node.node)
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
    ):
        yield node.lineno, node.arg.value


def _fields_used(tree: nodes.Template) -> Iterator[tuple[int, str]]:
    """(line, key) of each field the template needs: not one it asks `is defined` or defaults."""
    optional = set()
    for guard in tree.find_all((nodes.Test, nodes.Filter)):
        if guard.name in ("defined", "undefined", "default", "d") and guard.node is not None:
            optional |= {key for _, key in _field_keys(guard.node)}
    seen = set()
    for line, key in _field_keys(tree):
        if key not in optional and key not in _DICT_METHODS and key not in seen:
            seen.add(key)
            yield line, key


_DICT_METHODS = frozenset({"get", "items", "keys", "values"})


def _is_fields(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == "fields"


@dataclass(frozen=True)
class _Examined:
    """What lint reads from one template source: its syntax error, or what it uses."""

    error: jinja2.TemplateSyntaxError | None
    fields: tuple[tuple[int, str], ...] = ()  # (line, key) of the fields it needs
    attributes: tuple[tuple[int, str, str], ...] = ()  # (line, object, attribute) unknown
    names: tuple[tuple[int, str], ...] = ()  # (line, name) unknown


@functools.lru_cache(maxsize=256)
def _examine(source: str, known: frozenset[str]) -> _Examined:
    """A source parsed, compiled and walked, once: lint runs on every campaign page the console
    shows and before every send, and the defaults are the same every time (~10 ms each)."""
    env = _environment()
    try:
        tree = env.parse(source)
        env.compile(tree)  # an unknown filter is found when the template is compiled
    except jinja2.TemplateSyntaxError as e:
        return _Examined(e)
    return _Examined(
        None,
        tuple(_fields_used(tree)),
        tuple(_attributes_unknown(tree)),
        tuple(_names_used(tree, known)),
    )


def source_findings(language: str, template: Template, fields: Mapping[str, str]) -> list[Finding]:
    """Syntax errors, unknown names and unknown fields in one language's templates."""
    findings = []
    for key, source, known in _sources(template):
        name = f"templates.{language}.{key}"
        examined = _examine(source, known)
        if examined.error is not None:
            e = examined.error
            findings.append(
                _error(
                    language,
                    Text(
                        "%(template)s, linje %(line)s: %(error)s",
                        template=name,
                        line=e.lineno,
                        error=jinja_message(e.message or str(e)),
                    ),
                )
            )
            continue
        for line, field in examined.fields:
            if field not in fields:
                findings.append(
                    _error(
                        language,
                        Text(
                            "%(template)s, linje %(line)s: feltet «%(name)s» finnes ikke i "
                            "[fields]",
                            template=name,
                            line=line,
                            name=field,
                        ),
                    )
                )
        for line, owner, attribute in examined.attributes:
            findings.append(
                _error(
                    language,
                    Text(
                        "%(template)s, linje %(line)s: «%(owner)s.%(name)s» finnes ikke; "
                        "%(owner)s har %(known)s",
                        template=name,
                        line=line,
                        owner=owner,
                        name=attribute,
                        known=listed(list(_ATTRIBUTES[owner])),
                    ),
                )
            )
        for line, unknown in examined.names:
            findings.append(
                _error(
                    language,
                    Text(
                        "%(template)s, linje %(line)s: «%(name)s» finnes ikke; malen kan bruke "
                        "%(known)s",
                        template=name,
                        line=line,
                        name=unknown,
                        known=listed(sorted(known)),
                    ),
                )
            )
    return findings


def pairing_finding(language: str, template: Template, defaults: Template) -> Finding | None:
    """A language whose text is its own and whose HTML is the default, or the other way round.

    The recipient's program shows one of the two parts: they must say the same thing, and the
    defaults say what the authority's own text may not (a greeting, a reply request).
    """
    own_text, own_html = template.text != defaults.text, template.html != defaults.html
    if own_text == own_html:
        return None
    key, other = ("html", "text") if own_text else ("text", "html")
    return Finding(
        Severity.ERROR,
        "template-pair",
        language,
        Text(
            "[templates.%(language)s] %(key)s: mangler, men %(other)s er kampanjens egen; "
            "skriv %(key)s (eller %(key)s_file) også, så tekst- og HTML-delen sier det samme",
            language=language,
            key=key,
            other=other,
        ),
    )


def template_findings(spec: CampaignSpec) -> list[Finding]:
    """What is wrong in the templates' sources, every language, before any is rendered."""
    from varsel.letter_render import default_letter_templates
    from varsel.message import default_templates

    subjects, texts, htmls = default_templates()
    letters = default_letter_templates()
    findings = []
    for language, template in spec.templates.items():
        if language in texts:
            defaults = Template(subjects[language], texts[language], htmls[language])
            pairing = pairing_finding(language, template, defaults)
            if pairing is not None:
                findings.append(pairing)
        own_letter = template.letter if template.letter != letters.get(language) else ""
        checked = Template(template.subject, template.text, template.html, own_letter)
        findings += source_findings(language, checked, spec.fields)
    return findings
