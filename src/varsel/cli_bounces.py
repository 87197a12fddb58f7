"""`varsel bounces`: take in bounces from a pipe, a Maildir, an mbox or an IMAP mailbox."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from varsel.cli import State, err
from varsel.cli_output import CAMPAIGN_ID, NorskGroup, error_line

# Made here rather than imported: cli.py imports this module at its end, and a decorator taken
# from a module still being imported has no type mypy can see.
pass_state = click.make_pass_decorator(State)

_CAMPAIGN = click.option(
    "--campaign",
    "campaign_id",
    type=CAMPAIGN_ID,
    metavar="KAMPANJE",
    help="Let bare i denne kampanjen etter en adresse som feilet (VERP og Message-ID finner "
    "kampanjen selv).",
)
_JSON = click.option("--json", "as_json", is_flag=True, help="Skriv ut tallene som JSON.")


@click.group(cls=NorskGroup)
def bounces() -> None:
    """Returmeldinger, klager, autosvar og avmeldinger per e-post (docs/delivery.md)."""


@bounces.command("ingest")
@click.option(
    "--maildir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Ta inn nye og uleste meldinger i en Maildir; de ukjente havner i MAPPE/.unrecognised.",
)
@click.option("--mbox", type=click.Path(dir_okay=False, path_type=Path), help="Ta inn en mbox-fil.")
@click.option(
    "--keep",
    # Checked when it is made (bounce_sources._maildir), not by click: a usage error is exit status
    # 2, and with --tempfail a folder that cannot be made must be 75, or the MTA drops the mail.
    type=click.Path(path_type=Path),
    help="Maildir for meldinger som legges til side (standard inn og mbox; lages om den mangler).",
)
@click.option(
    "--tempfail",
    is_flag=True,
    help="For rør fra MTA-en: alle feil unntatt ugyldig inndata gir status 75 (EX_TEMPFAIL), "
    "så MTA-en beholder meldingen og prøver igjen.",
)
@_CAMPAIGN
@_JSON
@pass_state
def bounces_ingest(
    state: State,
    maildir: Path | None,
    mbox: Path | None,
    keep: Path | None,
    tempfail: bool,
    campaign_id: int | None,
    as_json: bool,
) -> None:
    """Ta inn én melding fra standard inn (et rør fra MTA-en), eller en Maildir eller mbox."""
    if not tempfail:
        _ingest(state, maildir, mbox, keep, campaign_id, as_json)
        return
    from varsel.bounce_sources import BounceInputError
    from varsel.errors import VarselError

    try:
        _ingest(state, maildir, mbox, keep, campaign_id, as_json)
    except BounceInputError:
        raise
    except Exception as e:  # the store down, a bug: the MTA must keep the bounce
        # An error of ours says what went wrong in words; only a bug is named by its class.
        why = e.message if isinstance(e, VarselError) else f"{type(e).__name__}: {e}"
        # The reason may quote a server's reply: printed escaped, as all CLI output is.
        err.print(error_line(f"prøver igjen senere: {why}"), soft_wrap=True)
        sys.exit(75)


def _ingest(
    state: State,
    maildir: Path | None,
    mbox: Path | None,
    keep: Path | None,
    campaign_id: int | None,
    as_json: bool,
) -> None:
    from varsel.bounce_sources import (
        BounceInputError,
        ingest_bytes,
        ingest_maildir,
        ingest_mbox,
    )
    from varsel.bounces import BounceIntake
    from varsel.verp import Verp

    if maildir and mbox:
        raise BounceInputError("bruk enten --maildir eller --mbox, ikke begge")
    if maildir and keep:
        raise BounceInputError("--keep gjelder ikke --maildir (den bruker MAPPE/.unrecognised)")
    intake = BounceIntake(state.db, Verp.from_settings(state.settings), campaign_id)
    if maildir:
        summary = ingest_maildir(intake, maildir)
    elif mbox:
        summary = ingest_mbox(intake, mbox, keep)
    else:
        summary = ingest_bytes(intake, sys.stdin.buffer.read(), keep)
    click.echo(json.dumps(summary.as_dict()) if as_json else summary.summary())


@bounces.command("poll")
@click.option(
    "--imap",
    "url",
    required=True,
    metavar="URL",
    help="imaps://bruker@vert[:port]/POSTKASSE, eller imap:// for STARTTLS; passordet fra "
    "VARSEL_IMAP_PASSWORD.",
)
@click.option("--once", is_flag=True, help="Én runde, så stopp.")
@click.option(
    "--interval",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Sekunder mellom rundene.",
)
@_CAMPAIGN
@_JSON
@pass_state
def bounces_poll(
    state: State, url: str, once: bool, interval: float, campaign_id: int | None, as_json: bool
) -> None:
    """Les en IMAP-postkasse: hver melding én gang (nøkkelordet $VarselDone), til den stoppes."""
    from varsel.bounce_sources import ImapMailbox, poll_forever, poll_imap
    from varsel.bounces import BounceIntake, IngestSummary
    from varsel.verp import Verp

    box = ImapMailbox.from_url(url, state.settings)
    intake = BounceIntake(state.db, Verp.from_settings(state.settings), campaign_id)

    def report(summary: IngestSummary) -> None:
        click.echo(json.dumps(summary.as_dict()) if as_json else summary.summary())

    if once:
        report(poll_imap(intake, box))
    else:
        poll_forever(intake, box, interval, report)
