"""`varsel bounces`: take in bounces from a pipe, a Maildir, an mbox or an IMAP mailbox."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from varsel.cli import State

# Made here rather than imported: cli.py imports this module at its end, and a decorator taken
# from a module still being imported has no type mypy can see.
pass_state = click.make_pass_decorator(State)

_CAMPAIGN = click.option(
    "--campaign",
    "campaign_id",
    type=int,
    help="Look a failed address up in this campaign only (VERP and Message-ID need no help).",
)
_JSON = click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")


@click.group()
def bounces() -> None:
    """Bounces, complaints and auto-replies to the VERP envelope addresses (docs/delivery.md)."""


@bounces.command("ingest")
@click.option(
    "--maildir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Take in a Maildir's new and unseen messages; the unrecognised go to DIR/.unrecognised.",
)
@click.option(
    "--mbox", type=click.Path(dir_okay=False, path_type=Path), help="Take in an mbox file."
)
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    help="Maildir for messages kept aside (standard input and mbox; made if missing).",
)
@click.option(
    "--tempfail",
    is_flag=True,
    help="For MTA pipes: any failure but bad input exits 75 (EX_TEMPFAIL), so the MTA keeps "
    "the message and tries again.",
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
    """Take in one message from standard input (a pipe from the MTA), or a Maildir or mbox."""
    if not tempfail:
        _ingest(state, maildir, mbox, keep, campaign_id, as_json)
        return
    from varsel.bounces import BounceInputError

    try:
        _ingest(state, maildir, mbox, keep, campaign_id, as_json)
    except BounceInputError:
        raise
    except Exception as e:  # the store down, a bug: the MTA must keep the bounce
        click.echo(f"varsel: prøver igjen senere: {type(e).__name__}: {e}", err=True)
        sys.exit(75)


def _ingest(
    state: State,
    maildir: Path | None,
    mbox: Path | None,
    keep: Path | None,
    campaign_id: int | None,
    as_json: bool,
) -> None:
    from varsel.bounces import (
        BounceInputError,
        BounceIntake,
        ingest_bytes,
        ingest_maildir,
        ingest_mbox,
    )
    from varsel.verp import Verp

    if maildir and mbox:
        raise BounceInputError("bruk enten --maildir eller --mbox, ikke begge")
    if maildir and keep:
        raise BounceInputError("--keep gjelder ikke --maildir (den bruker DIR/.unrecognised)")
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
    help="imaps://user@host[:port]/MAILBOX, or imap:// for STARTTLS; password from "
    "VARSEL_IMAP_PASSWORD.",
)
@click.option("--once", is_flag=True, help="One pass, then stop.")
@click.option(
    "--interval",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Seconds between passes.",
)
@_CAMPAIGN
@_JSON
@pass_state
def bounces_poll(
    state: State, url: str, once: bool, interval: float, campaign_id: int | None, as_json: bool
) -> None:
    """Read an IMAP mailbox: each message once (keyword $VarselDone), until stopped."""
    from varsel.bounces import BounceIntake, ImapMailbox, IngestSummary, poll_forever, poll_imap
    from varsel.verp import Verp

    box = ImapMailbox.from_url(url, state.settings)
    intake = BounceIntake(state.db, Verp.from_settings(state.settings), campaign_id)

    def report(summary: IngestSummary) -> None:
        click.echo(json.dumps(summary.as_dict()) if as_json else summary.summary())

    if once:
        report(poll_imap(intake, box))
    else:
        poll_forever(intake, box, interval, report)
