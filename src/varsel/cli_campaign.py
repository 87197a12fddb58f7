"""`varsel campaign ...`: create, list, approve, send and follow campaigns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.text import Text

from varsel.cli import State, err, out, pass_state
from varsel.cli_output import CAMPAIGN_ID, COUNT, NorskGroup, print_table
from varsel.errors import Interrupted

if TYPE_CHECKING:
    from varsel.campaign import Campaign
    from varsel.campaign_spec import Limits


@click.group(cls=NorskGroup)
def campaign() -> None:
    """Lag, sjekk, send og følg kampanjer."""


@campaign.command("list")
@click.option("--json", "as_json", is_flag=True, help="Skriv ut JSON.")
@pass_state
def campaign_list(state: State, as_json: bool) -> None:
    """Vis kampanjene, nyeste først: status, forfatter, virksomheter, e-poster og sendt."""
    from rich import box
    from rich.table import Table

    from varsel.campaign import STATUS_WORDS, summaries
    from varsel.i18n import fmt_int

    found = summaries(state.db)
    if as_json:
        click.echo(json.dumps([c.as_dict() for c in found], ensure_ascii=False, indent=2))
        return
    if not found:
        out.print("Ingen kampanjer ennå: lag en med `varsel campaign create FIL.toml`.")
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    table.add_column("Id", justify="right", no_wrap=True)
    table.add_column("Navn", overflow="fold", min_width=12, ratio=1)
    for header in ("Status", "Laget", "Av"):
        table.add_column(header, no_wrap=True)
    for header in ("Virksomheter", "E-poster", "Sendt"):
        table.add_column(header, justify="right", no_wrap=True)
    for c in found:
        table.add_row(
            str(c.id),
            c.name,
            # A forgotten campaign holds no contact data any more (campaign forget).
            STATUS_WORDS[c.status] + ("\nglemt" if c.forgotten_at else ""),
            c.created_at[:10],
            c.created_by or "–",
            *(fmt_int(n) for n in (c.units, c.emails, c.sent)),
        )
    print_table(out, table)


@campaign.command("create")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), metavar="FIL")
@click.option(
    "--user", "user_name", metavar="NAVN", help="Forfatteren (en konto); det samme som VARSEL_USER."
)
@pass_state
def campaign_create(state: State, file: Path, user_name: str | None) -> None:
    """Lag en kampanje fra TOML-filen, som forfatter; skriver den nye kampanjens id sist.

    Spør om forfatterens passord og engangskode (eller leser VARSEL_PASSWORD og VARSEL_TOTP).
    """
    from varsel.accounts import Role
    from varsel.campaign import check_definition, create_campaign
    from varsel.campaign_spec import load_spec
    from varsel.cli_users import signed_in

    # A wrong file, or one that could never be sent, is reported before anyone types a code.
    check_definition(load_spec(file, state.settings), str(file))
    # state.db: a store that does not exist has no author to sign in (a mistyped --db was made
    # into a new store, and the author told the password was wrong).
    author = signed_in(state, user_name, Role.AUTHOR)
    result = create_campaign(state.db, state.settings, file, created_by=author.name)
    from varsel.snapshot import stale_warning

    # Said, not refused: old data may be what the operator has. On stderr: the id stays last.
    if warning := stale_warning(state.db):
        err.print(f"advarsel: {warning}", soft_wrap=True, markup=False)
    out.print(result.summary(), soft_wrap=True)


@campaign.command("approve")
@click.argument("campaign_id", type=CAMPAIGN_ID, metavar="KAMPANJE")
@click.option(
    "--user",
    "user_name",
    metavar="NAVN",
    help="Godkjenneren (ikke forfatteren); det samme som VARSEL_USER.",
)
@click.option(
    "--digest",
    metavar="HEX",
    help="Godkjenn bare hvis kampanjen fortsatt har dette fingeravtrykket (fra --show).",
)
@click.option(
    "--show", is_flag=True, help="Vis fingeravtrykket og delene det bygger på; godkjenn ingenting."
)
@pass_state
def campaign_approve(
    state: State, campaign_id: int, user_name: str | None, digest: str | None, show: bool
) -> None:
    """Godkjenn kampanjen slik den er nå (fire øyne); spør om passord og engangskode.

    Skript kan sette VARSEL_PASSWORD og VARSEL_TOTP i stedet. Sjekk kampanjen, noter
    fingeravtrykket --show viser, og godkjenn med --digest: er kampanjen endret i mellomtiden,
    blir ingenting godkjent.
    """
    from varsel.accounts import Role
    from varsel.approval import PARTS, approve, check_approvable, check_digest, fingerprint
    from varsel.cli_users import signed_in

    if show:
        shown = fingerprint(state.db, campaign_id)
        for part, name in PARTS.items():
            out.print(f"{name:<26} {shown.parts[part]}", soft_wrap=True)
        out.print(f"{'fingeravtrykk':<26} {shown.digest}", soft_wrap=True)
        out.print(
            f"Godkjenn nettopp dette: varsel campaign approve {campaign_id} --user NAVN "
            f"--digest {shown.digest}",
            soft_wrap=True,
        )
        return
    if digest is not None:
        check_digest(digest, campaign_id)  # a mistyped digest is told before anyone signs in
    # So are a wrong id and a campaign cancelled, done or approved already: a code typed for
    # nothing would be used up (a code works once).
    check_approvable(state.db, campaign_id)
    approver = signed_in(state, user_name, Role.APPROVER)
    approval = approve(state.db, state.settings, campaign_id, approver, expected_digest=digest)
    out.print(
        f"Kampanje {campaign_id} er godkjent av {approval.approved_by} "
        f"(fingeravtrykk {approval.digest[:16]}). Endres den, må den godkjennes på nytt.",
        soft_wrap=True,
    )


@campaign.command(
    "send", help="Send en godkjent kampanje; trygt å kjøre igjen etter et krasj (docs/delivery.md)."
)
@click.argument("campaign_id", type=CAMPAIGN_ID, metavar="KAMPANJE")
@click.option(
    "--smtp", "smtp_url", metavar="URL", help="E-posttjeneren; det samme som VARSEL_SMTP_URL."
)
@click.option("--connections", type=COUNT, help="SMTP-forbindelser.")
@click.option(
    "--rate", type=click.FloatRange(min=0.01), help="Høyst så mange meldinger i sekundet."
)
@click.option(
    "--no-approval",
    is_flag=True,
    help="Send uten godkjenning med fire øyne (logges; VARSEL_ALLOW_NO_APPROVAL=false forbyr det).",
)
@pass_state
def campaign_send(
    state: State,
    campaign_id: int,
    smtp_url: str | None,
    connections: int | None,
    rate: float | None,
    no_approval: bool,
) -> None:
    """Send an approved campaign; safe to run again after a crash (see docs/delivery.md)."""
    from varsel import send_lock
    from varsel.audit import cli_actor
    from varsel.campaign import get_campaign
    from varsel.channel.smtp_relay import RelayConfig
    from varsel.progress import counts_bar
    from varsel.send_gate import check_send, send_checked
    from varsel.sender import SendOptions

    relay = RelayConfig.from_url(smtp_url or state.settings.smtp_url)
    spec = get_campaign(state.db, campaign_id).spec
    # Refused at once, before the progress bar; send_checked checks again as the send starts.
    check_send(state.db, state.settings, campaign_id, no_approval=no_approval)
    # A paused campaign, or one the workers hold, says what to do about that before anything
    # else (a missing DKIM key, say): as the console's Send does.
    send_lock.refuse_holder(state.db, campaign_id)
    options = SendOptions.for_campaign(spec, connections=connections, rate_per_second=rate)
    total = int(
        state.db.scalar(
            "SELECT count(*) FROM deliveries WHERE campaign_id = ? AND channel = 'email'",
            (campaign_id,),
        )
        or 0
    )
    _say_window(campaign_id, spec.limits)
    try:
        with counts_bar(f"Sender kampanje {campaign_id}", total, err) as progress:
            report = send_checked(
                state.db,
                state.settings,
                campaign_id,
                actor=cli_actor(),
                no_approval=no_approval,
                relay=relay,
                options=options,
                progress=progress,
            )
    except KeyboardInterrupt:
        raise _send_interrupted(state, campaign_id) from None
    out.print(report.summary(), soft_wrap=True)  # it names commands: never wrapped


def _send_interrupted(state: State, campaign_id: int) -> Interrupted:
    """Ctrl-C during a send: what was sent, what is left, and how to go on, in one line."""
    from varsel.i18n import fmt_int
    from varsel.send_report import sent_words, status

    # The sender has settled its claims and given the campaign back: the counts are final.
    c = status(state.db, campaign_id).counts
    left = c["queued"] + c["deferred"]
    text = f"avbrutt: kampanje {campaign_id} har {sent_words(c)}, {fmt_int(left)} igjen"
    if c["in_doubt"]:
        text += f", {fmt_int(c['in_doubt'])} usikre (se «varsel campaign status {campaign_id}»)"
    return Interrupted(f"{text}; «varsel campaign send {campaign_id}» sender resten")


def _say_window(campaign_id: int, limits: Limits) -> None:
    """A line on stderr when the send will wait for the campaign's send window to open."""
    import datetime as dt

    from varsel.send_window import window_shut_until

    when = window_shut_until(limits, dt.datetime.now(dt.UTC))
    if when is not None:
        err.print(
            f"Kampanje {campaign_id} er utenfor sendevinduet sitt ([window]): sendingen "
            f"begynner {when} og venter til da.",
            soft_wrap=True,
            markup=False,
        )


@campaign.command(
    "status", help="Antall leveranser per kanal og tilstand, og de usikre leveransene."
)
@click.argument("campaign_id", type=CAMPAIGN_ID, metavar="KAMPANJE")
@click.option("--json", "as_json", is_flag=True, help="Skriv ut ett JSON-objekt.")
@pass_state
def campaign_status(state: State, campaign_id: int, as_json: bool) -> None:
    """Counts per channel and delivery state, and the deliveries in doubt."""
    from varsel.send_report import CHANNEL_WORDS, status

    report = status(state.db, campaign_id)
    approval = _approval_said(state, report.campaign)
    if as_json:
        said = {**report.as_dict(), "approval": approval[1] if approval else None}
        click.echo(json.dumps(said, ensure_ascii=False, indent=2))
        return
    # The name is printed whole and as typed: a wrapped or half-markup name cannot be found.
    out.print(
        f"Kampanje {campaign_id} «{report.campaign.name}»: {report.status_words}"
        f"{_who_sends(state, report.campaign)}",
        soft_wrap=True,
        markup=False,
    )
    if approval is not None:
        out.print(approval[0], soft_wrap=True)
    for line in report.lines():
        out.print(line, soft_wrap=True)
    for d in report.in_doubt:
        out.print(
            f"  usikker: leveranse {d.id} til {d.address} ({', '.join(d.units)})", soft_wrap=True
        )
    if report.in_doubt:
        # A command is printed whole, never wrapped: it is copied as it is.
        out.print(
            "Send dem på nytt (de kan komme fram to ganger) med "
            f"«varsel campaign resend-in-doubt {campaign_id}».",
            soft_wrap=True,
        )
        out.print(
            "Eller avgjør dem uten ny sending, når loggen til e-posttjeneren viser om de kom "
            f"fram: «varsel campaign settle-in-doubt {campaign_id} --as sent» eller «--as failed».",
            soft_wrap=True,
        )
    labels = {"deferred": "utsatt", "failed": "feilet"}
    if report.reasons:
        # Worded and grouped (send_report, reply_words): addresses and relays' ids left out.
        out.print("Vanligste grunner:")
    for r in report.reasons:
        channel = "" if r.channel == "email" else f"{CHANNEL_WORDS.get(r.channel, r.channel)}: "
        out.print(
            f"  {labels[r.state]:<7} {r.count:>8}  {channel}{r.reason or '(ingen)'}",
            markup=False,
            soft_wrap=True,
        )


def _approval_said(state: State, campaign: Campaign) -> tuple[str, dict[str, object]] | None:
    """Whether an approval holds for a campaign that may still send, and why not (changed
    since, or its approver disabled since): a line, and the same for --json. None for a
    finished or forgotten campaign."""
    from varsel.approval import approval_state, not_approved
    from varsel.campaign import CampaignStatus
    from varsel.retention import forgotten_at

    if campaign.status in (CampaignStatus.DONE, CampaignStatus.CANCELLED):
        return None
    if forgotten_at(state.db, campaign.id) is not None:
        return None
    approval = approval_state(state.db, campaign.id)
    latest = approval.approval
    why = not_approved(approval)
    data: dict[str, object] = {
        "holds": why is None,
        "latest": latest.as_dict() if latest else None,
        "reason": why,
    }
    if why is not None:
        return f"{why[:1].upper()}{why[1:]}.", data
    if latest is None:  # not_approved said why: never here
        return None
    at = latest.approved_at[:16].replace("T", " ")
    return f"Godkjent av {latest.approved_by} ({at} UTC).", data


def _who_sends(state: State, campaign: Campaign) -> str:
    """For a campaign handed to the workers: how many run now (none is worth saying)."""
    from varsel.campaign import CampaignStatus
    from varsel.leases import workers_for

    if campaign.status is not CampaignStatus.SENDING:
        return ""
    running = workers_for(state.db, campaign.id)  # None on SQLite, which has no workers
    if running is None:
        return ""
    if not running:
        return " (av arbeiderne; ingen «varsel worker» kjører nå)"
    return f" (av arbeiderne; {running} kjører)"


@campaign.command("lint")
@click.argument("campaign_id", type=CAMPAIGN_ID, metavar="KAMPANJE")
@click.option("--json", "as_json", is_flag=True, help="Skriv ut ett JSON-objekt.")
@pass_state
@click.pass_context
def campaign_lint(ctx: click.Context, state: State, campaign_id: int, as_json: bool) -> None:
    """Sjekk en kampanje før utsending; avslutter med status 2 hvis noe må rettes."""
    from varsel.audit import cli_actor
    from varsel.lint import lint_campaign
    from varsel.lint_report import Severity

    report = lint_campaign(state.db, state.settings, campaign_id, actor=cli_actor())
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        for f in report.findings:
            error = f.severity is Severity.ERROR
            label = ("feil    ", "bold red") if error else ("advarsel", "yellow")
            # Messages quote TOML tables and templates: "[links]" is text, not Rich markup.
            out.print(Text.assemble(label, " ", f.message), soft_wrap=True)
        out.print(report.summary(), soft_wrap=True)
    if not report.ok:
        ctx.exit(2)


@campaign.command("preview")
@click.argument("campaign_id", type=CAMPAIGN_ID, metavar="KAMPANJE")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Mappe for <språk>.eml, .txt og .html (lages hvis den mangler).",
)
@pass_state
def campaign_preview(state: State, campaign_id: int, out_dir: Path) -> None:
    """Skriv meldingen på hvert språk, signert slik den ville blitt sendt, til en prøvemottaker."""
    from varsel.preview import preview_campaign

    for path in preview_campaign(state.db, state.settings, campaign_id, out_dir):
        click.echo(str(path))


def _set_status(state: State, campaign_id: int, status_name: str) -> None:
    from varsel.audit import cli_actor
    from varsel.campaign import STATUS_WORDS, CampaignStatus, get_campaign, set_status
    from varsel.leases import WORKERS, status_changed

    db = state.db
    set_status(db, campaign_id, CampaignStatus(status_name), actor=cli_actor())
    status_changed(db, campaign_id)
    now = get_campaign(db, campaign_id).status
    said = f"Kampanje {campaign_id} er nå «{STATUS_WORDS[now]}»."
    holder = db.scalar("SELECT sender_pid FROM campaigns WHERE id = ?", (campaign_id,))
    if holder == WORKERS and now is CampaignStatus.SENDING:
        said += " Arbeiderne (`varsel worker`) sender resten."
    elif now is CampaignStatus.READY:
        said += f" Send resten med «varsel campaign send {campaign_id}»."
    out.print(said, soft_wrap=True)


@campaign.command("start")
@click.argument("campaign_id", type=CAMPAIGN_ID, metavar="KAMPANJE")
@click.option(
    "--no-approval",
    is_flag=True,
    help="Uten godkjenning med fire øyne (logges; VARSEL_ALLOW_NO_APPROVAL=false forbyr det).",
)
@pass_state
def campaign_start(state: State, campaign_id: int, no_approval: bool) -> None:
    """Gi en godkjent kampanje til `varsel worker`-prosessene (PostgreSQL); de begynner nå."""
    from varsel.audit import cli_actor
    from varsel.leases import require_postgresql, start_campaign
    from varsel.send_gate import authorise_send

    require_postgresql(state.dialect)  # before the store is opened: SQLite needs no file
    authorise_send(
        state.db, state.settings, campaign_id, actor=cli_actor(), no_approval=no_approval
    )
    start_campaign(state.db, campaign_id, state.settings.worker_lease_seconds)
    out.print(
        f"Kampanje {campaign_id} sendes nå av arbeiderne; følg med: varsel worker --status",
        soft_wrap=True,
    )


@campaign.command("pause")
@click.argument("campaign_id", type=CAMPAIGN_ID, metavar="KAMPANJE")
@pass_state
def campaign_pause(state: State, campaign_id: int) -> None:
    """Sett utsendingen på pause; en sending som pågår, stopper innen et sekund."""
    from varsel.campaign import get_campaign, refuse_pause

    refuse_pause(get_campaign(state.db, campaign_id))
    _set_status(state, campaign_id, "paused")


@campaign.command("resume")
@click.argument("campaign_id", type=CAMPAIGN_ID, metavar="KAMPANJE")
@pass_state
def campaign_resume(state: State, campaign_id: int) -> None:
    """La en kampanje på pause sendes igjen (kjør så `campaign send`)."""
    _set_status(state, campaign_id, "ready")


@campaign.command("cancel")
@click.argument("campaign_id", type=CAMPAIGN_ID, metavar="KAMPANJE")
@pass_state
def campaign_cancel(state: State, campaign_id: int) -> None:
    """Stopp en kampanje for godt: det som ikke er sendt ennå, blir kansellert."""
    _set_status(state, campaign_id, "cancelled")


@campaign.command("settle-in-doubt")
@click.argument("campaign_id", type=CAMPAIGN_ID, metavar="KAMPANJE")
@click.option(
    "--as",
    "outcome",
    type=click.Choice(["sent", "failed"]),
    required=True,
    help="sent: e-posttjeneren tok imot meldingen (se loggen dens; Message-ID begynner med "
    "leveransenummeret). failed: den sendes ikke, og virksomheten regnes som ikke nådd "
    "på e-post.",
)
@click.option(
    "--delivery",
    "deliveries",
    type=click.IntRange(min=1),
    multiple=True,
    metavar="NR",
    help="Bare denne leveransen (nummeret i «campaign status»); kan gjentas. "
    "Standard: alle usikre.",
)
@pass_state
def campaign_settle_in_doubt(
    state: State, campaign_id: int, outcome: str, deliveries: tuple[int, ...]
) -> None:
    """Avgjør usikre leveranser uten å sende dem på nytt: som sendt eller som feilet."""
    from varsel.audit import cli_actor
    from varsel.campaign import get_campaign
    from varsel.outbox import settle_in_doubt

    get_campaign(state.db, campaign_id)
    delivered = outcome == "sent"
    n = settle_in_doubt(
        state.db, campaign_id, delivered=delivered, deliveries=deliveries, actor=cli_actor()
    )
    how = "sendt" if delivered else "feilet (sendes ikke på nytt)"
    _say_decided(campaign_id, n, f"avgjort som {how}.")


def _say_decided(campaign_id: int, n: int, done: str) -> None:
    """What a decision about deliveries in doubt did: «2 usikre leveranser er <done>»."""
    from varsel.i18n import fmt_int

    if not n:
        out.print(
            f"Kampanje {campaign_id} har ingen usikre leveranser; ingenting er endret.",
            soft_wrap=True,
        )
        return
    what = "usikker leveranse er" if n == 1 else "usikre leveranser er"
    out.print(f"{fmt_int(n)} {what} {done}", soft_wrap=True)


@campaign.command("resend-in-doubt")
@click.argument("campaign_id", type=CAMPAIGN_ID, metavar="KAMPANJE")
@pass_state
def campaign_resend_in_doubt(state: State, campaign_id: int) -> None:
    """Legg de usikre leveransene i kø igjen: du godtar at de kan komme fram to ganger."""
    from varsel.audit import cli_actor
    from varsel.campaign import get_campaign
    from varsel.outbox import resend_in_doubt

    get_campaign(state.db, campaign_id)
    n = resend_in_doubt(state.db, campaign_id, actor=cli_actor())
    _say_decided(campaign_id, n, f"lagt i kø igjen; kjør «varsel campaign send {campaign_id}».")


@campaign.command("forget")
@click.argument("campaign_id", type=CAMPAIGN_ID, metavar="KAMPANJE")
@click.option(
    "--yes", is_flag=True, help="Slett nå; uten dette vises bare hva som ville bli slettet."
)
@pass_state
def campaign_forget(state: State, campaign_id: int, yes: bool) -> None:
    """Slett kontaktopplysningene i en ferdig kampanje; tallene og bevisene beholdes.

    Adressene, svarene fra e-posttjeneren, trykkeriets fritekst om returnerte brev, fritekst i
    tilbakemeldinger og adressene som ba om dokumentet slettes. Virksomhetene, leveransenes
    tilstand og koder (også årsakskoden for et returnert brev), sperrelisten og revisjonsloggen
    beholdes, og rapportene gir de samme tallene (docs/operators.md).
    """
    from varsel.audit import cli_actor
    from varsel.retention import forget_campaign, forgettable

    if not yes:
        found = forgettable(state.db, campaign_id)
        out.print(f"Kampanje {campaign_id}: dette ville blitt slettet:", soft_wrap=True)
        for line in found.lines():
            out.print(line, soft_wrap=True, markup=False)
        out.print(
            "Ingenting er slettet. Kjør igjen med --yes for å slette kontaktopplysningene; "
            "det kan ikke angres.",
            soft_wrap=True,
        )
        return
    found = forget_campaign(state.db, campaign_id, actor=cli_actor())
    if not found.total:
        out.print(
            f"Kampanje {campaign_id} har ingen kontaktopplysninger igjen å slette; "
            "ingenting er endret.",
            soft_wrap=True,
        )
        return
    out.print(f"Kampanje {campaign_id}: kontaktopplysningene er slettet:", soft_wrap=True)
    for line in found.lines():
        out.print(line, soft_wrap=True, markup=False)
