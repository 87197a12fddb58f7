"""How the command line prints: text as text, one-line errors, and click's own words in Bokmål."""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterable, Sequence
from typing import IO, Any

import click
from rich.console import Console
from rich.segment import Segment
from rich.table import Table
from rich.text import Text as Styled  # Text(...) is errors.Text to the catalogs

from varsel.errors import UserError

# The largest id or count a command takes: what both stores' integer columns hold (a larger
# number is refused by click in one line, not by the store with a traceback).
MAX_INT = 2**31 - 1
CAMPAIGN_ID = click.IntRange(1, MAX_INT)
COUNT = click.IntRange(1, MAX_INT)


class TextConsole(Console):
    """A Rich console for text from outside: control and format characters are printed as
    escapes (\\x1b, \\u202e), line breaks and tabs kept.

    A registry dump, a relay's reply, a suppression note or a campaign name may carry an
    escape sequence that would clear the operator's screen, move the cursor to overwrite what
    was printed, or a bidi override that shows a name reversed. Every string is escaped before
    it is laid out (so a table's columns fit what is shown), and whatever reaches the terminal
    in a Text built elsewhere is escaped as it is written; Rich's own cursor controls (a
    progress bar) are left alone. Norwegian letters and other printable Unicode are untouched.
    """

    def render_str(self, text: str, **kwargs: Any) -> Styled:
        return super().render_str(screen_text(text), **kwargs)

    def render(self, renderable: Any, options: Any = None) -> Iterable[Segment]:
        for segment in super().render(renderable, options):
            if segment.control or segment.text.isprintable():
                yield segment
            else:
                yield Segment(screen_text(segment.text), segment.style)


def screen_text(text: str) -> str:
    """Text for a terminal: control and format characters as escapes, line breaks and tabs kept."""
    from varsel.audit import printable

    return printable(text, keep="\n\t")


def make_console(
    *, stderr: bool = False, file: IO[str] | None = None, width: int | None = None
) -> Console:
    """A console that prints every string as it is: no markup, no emoji codes, no highlighting,
    and no terminal escapes from text that came from outside (TextConsole).

    Campaign names, file names and registry text are data: "[uke 3]" or ":abc:" in them must
    be printed, not read as styling. Styled output is built as rich Text on purpose.
    """
    return TextConsole(
        stderr=stderr, file=file, width=width, highlight=False, markup=False, emoji=False
    )


def print_table(console: Console, table: Table) -> None:
    """A table, folded to the terminal's width; into a file or a pipe in whole lines, however
    long, so that a name or an address is never broken mid-word where it is read or searched."""
    from rich.measure import Measurement

    if console.is_terminal:
        console.print(table)
        return
    # print(width=) is capped at the console's width: a console as wide as the table is not.
    whole = Measurement.get(console, console.options.update_width(10_000), table).maximum
    width = max(whole, console.width)
    make_console(file=console.file, width=width).print(table)


def error_line(message: str) -> Styled:
    """`varsel: <message>` with the prefix in bold red; the message is never parsed."""
    return Styled.assemble(("varsel:", "bold red"), " ", screen_text(message))


def styled(text: str, style: str) -> Styled:
    """A value in a style (a total in bold, a file name dimmed), never parsed as markup."""
    return Styled(screen_text(text), style=style)


# -- click's usage errors, in Bokmål on one line ----------------------------------------------


class OneLineUsageError(click.UsageError):
    """A click usage error already put into words: printed as one line, exit status 2."""

    def show(self, file: IO[Any] | None = None) -> None:
        make_console(stderr=True).print(error_line(self.message), soft_wrap=True)


def _name(param: click.Parameter | None) -> str:
    if param is None:
        return "verdien"
    if isinstance(param, click.Argument):
        return param.human_readable_name
    return next((o for o in param.opts if o.startswith("--")), param.opts[0])


def _either(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} eller {items[-1]}"


def _number(n: float | str) -> str:
    # No thousands separator: "65535" reads as the port it is. An integer is said as it was
    # written, however long (through float, 99999999999999999999 would read 1e20).
    if isinstance(n, int) or (isinstance(n, str) and n.strip().lstrip("-").isdecimal()):
        return str(int(n))
    try:
        value = float(n)
    except ValueError:
        return str(n)
    return str(int(value)) if value.is_integer() else str(value).replace(".", ",")


def describe_range(t: click.IntRange | click.FloatRange) -> str:
    """A number type's allowed values in words: 'minst 0', 'fra 1 til 65 535'."""
    lo, hi = t.min, t.max
    if lo is not None and hi is not None:
        return f"fra {_number(lo)} til {_number(hi)}"
    if lo is not None:
        return f"over {_number(lo)}" if t.min_open else f"minst {_number(lo)}"
    if hi is not None:
        return f"under {_number(hi)}" if t.max_open else f"høyst {_number(hi)}"
    return "alle tall"


_QUOTED = re.compile(
    r"""^(?:(?:file|directory|path) )?('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""", re.I
)
_PATH_PROBLEMS = {
    "does not exist": "finnes ikke",
    "is a file": "er en fil, ikke en mappe",
    "is a directory": "er en mappe, ikke en fil",
    "is not readable": "kan ikke leses",
    "is not writable": "kan ikke skrives",
    "is not executable": "kan ikke kjøres",
}


def _quoted_value(message: str) -> str | None:
    m = _QUOTED.match(message)
    if not m:
        return None
    try:
        return str(ast.literal_eval(m.group(1)))
    except (ValueError, SyntaxError):
        return None


def _bad_value(e: click.BadParameter) -> str:
    t = e.param.type if e.param is not None else None
    message = e.message
    if isinstance(t, click.IntRange | click.FloatRange) and " is not in the range" in message:
        number = message.split(" is not in the range", 1)[0]
        return f"{_number(number)} er ikke tillatt ({describe_range(t)})"
    value = _quoted_value(message)
    if value is None:
        return message
    if isinstance(t, click.types.IntParamType | click.types.FloatParamType):
        return f"«{value}» er ikke et tall"
    if isinstance(t, click.Choice):
        choices = [str(c) for c in t.choices]
        which = f"velg {_either(choices)}" if len(choices) <= 6 else "se --help"
        return f"«{value}» er ikke et av valgene ({which})"
    for english, norwegian in _PATH_PROBLEMS.items():
        if english in message:
            return f"«{value}» {norwegian}"
    return message


def usage_message(e: click.UsageError) -> str:
    """Click's own error, said in Bokmål on one line: what, and which option or argument."""
    if isinstance(e, click.NoSuchOption):
        guess = f" (mente du {_either(e.possibilities)}?)" if e.possibilities else ""
        return f"ukjent valg {e.option_name}{guess}"
    no_such_command = getattr(click.exceptions, "NoSuchCommand", None)
    if no_such_command is not None and isinstance(e, no_such_command):
        found = [f"«{p}»" for p in e.possibilities or ()]
        guess = f" (mente du {_either(found)}?)" if found else ""
        return f"ukjent kommando «{e.command_name}»{guess}"
    if isinstance(e, click.BadOptionUsage):
        if "requires an argument" in e.message:
            return f"{e.option_name} mangler en verdi"
        if "does not take a value" in e.message:
            return f"{e.option_name} tar ingen verdi"
        return f"{e.option_name}: {e.message}"
    if isinstance(e, click.MissingParameter):
        return f"mangler {_name(e.param)}"
    if isinstance(e, click.BadParameter):
        return f"{_name(e.param)}: {_bad_value(e)}"
    extra = re.match(r"Got unexpected extra arguments? \((.*)\)$", e.message)
    if extra:
        return f"for mange argumenter: {extra.group(1)}"
    return e.format_message()


def one_line(e: click.UsageError) -> click.UsageError:
    """The error to raise instead of `e`; the help a bare command group shows stays as it is."""
    if isinstance(e, click.exceptions.NoArgsIsHelpError):
        return e
    return OneLineUsageError(usage_message(e), e.ctx)


def require_terminal(what: str) -> None:
    """Refuse, in one line, to ask for a secret when no one is there to type it."""
    if not sys.stdin.isatty():
        raise UserError(
            f"ingen terminal å spørre om {what} på; sett VARSEL_PASSWORD og VARSEL_TOTP"
        )


# -- help in Bokmål -------------------------------------------------------------------------

_HEADINGS = {
    "Options": "Valg",
    "Commands": "Kommandoer",
    "Positional arguments": "Argumenter",
    "Arguments": "Argumenter",
}
_HELP = {
    "Show this message and exit.": "Vis denne hjelpen og avslutt.",
    "Show the version and exit.": "Vis versjonen og avslutt.",
}
_METAVARS = {
    "INTEGER RANGE": "TALL",
    "FLOAT RANGE": "TALL",
    "INTEGER": "TALL",
    "FLOAT": "TALL",
    "TEXT": "TEKST",
    "FILE": "FIL",
    "DIRECTORY": "MAPPE",
    "PATH": "STI",
}
_EXTRA = re.compile(r"\[([^\[\]]*)\]$")


def _range_words(text: str) -> str:
    def ends(m: re.Match[str]) -> str:
        return f"{m.group(1)}–{m.group(2)}"

    text = re.sub(r"^(-?[\d.]+)<=x<=(-?[\d.]+)$", ends, text)
    text = re.sub(r"^x>=(-?[\d.]+)$", r"minst \1", text)
    text = re.sub(r"^x>(-?[\d.]+)$", r"over \1", text)
    text = re.sub(r"^x<=(-?[\d.]+)$", r"høyst \1", text)
    return re.sub(r"^x<(-?[\d.]+)$", r"under \1", text)


def _extra_words(help_text: str) -> str:
    m = _EXTRA.search(help_text)
    if not m:
        return help_text
    items = []
    for item in m.group(1).split("; "):
        said = item.replace("default: ", "standard: ").replace("env var: ", "miljøvariabel: ")
        items.append("påkrevd" if said == "required" else _range_words(said))
    return f"{help_text[: m.start()]}[{'; '.join(items)}]"


def _term_words(term: str) -> str:
    for english, norwegian in _METAVARS.items():
        term = re.sub(rf"\b{english}\b", norwegian, term)
    return term


class NorskFormatter(click.HelpFormatter):
    """Click's help with its own words (Usage, Options, [default: …]) in Bokmål."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, args, "Bruk: " if prefix is None else prefix)

    def write_heading(self, heading: str) -> None:
        super().write_heading(_HEADINGS.get(heading, heading))

    def write_dl(
        self, rows: Iterable[tuple[str, str]], col_max: int = 30, col_spacing: int = 2
    ) -> None:
        said = [(_term_words(t), _extra_words(_HELP.get(h, h))) for t, h in rows]
        super().write_dl(said, col_max, col_spacing)


class NorskContext(click.Context):
    """A context whose help is in Bokmål."""

    formatter_class = NorskFormatter


class NorskCommand(click.Command):
    """A command whose help is in Bokmål."""

    context_class = NorskContext

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("options_metavar", "[VALG]")
        super().__init__(*args, **kwargs)


class NorskGroup(click.Group):
    """A command group whose help, and whose commands' help, is in Bokmål."""

    context_class = NorskContext
    command_class = NorskCommand
    group_class: type[click.Group] | type[type] = type  # subgroups are NorskGroups too

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("options_metavar", "[VALG]")
        kwargs.setdefault("subcommand_metavar", "KOMMANDO [ARGUMENTER]...")
        super().__init__(*args, **kwargs)
