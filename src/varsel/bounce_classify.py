"""What a message that came back says: hard or soft bounce, policy refusal, complaint, auto-reply.

Read in this order, the most reliable first:

0. a request to unsubscribe: the Subject `unsubscribe-<token>` of every message's
   List-Unsubscribe mailto, as a mail program sends it (after "Re:", "SV:" or "AW:" if any);
1. an ARF feedback report (RFC 5965): feedback type abuse or fraud is a complaint;
2. an RFC 3464 delivery-status report, by its Status code (see `status_kind`);
3. a challenge (a spam filter asking the sender to prove it is human, or to reply or click
   to be let through: Boxbe's guest list, "Bekreft at du er et menneske"), whoever sent it and
   however much it looks like a bounce: the address works, so it is an automatic reply;
4. an automatic reply (RFC 3834 Auto-Submitted: auto-replied, X-Autoreply, Precedence:
   auto_reply, and the subjects Outlook, Gmail and others give out-of-office replies and
   ticket systems their acknowledgements) that no mailer daemon sent. `auto-generated` alone
   is no reply: RFC 3834 gives it to DSNs and other messages that answer nothing;
5. flufl.bounce's heuristics for the many servers that send bounces without a report, the
   kind taken from the code the bounce quotes and soft for a delay warning (a message its
   detectors fail on goes on to the next step: they are not ours to fix);
6. the words of a message that looks like a bounce (from a mailer daemon, or a bounce subject).

Anything else is unrecognised and kept for an operator to look at. Nothing here touches the
store: `bounces` decides what a classification does.
"""

from __future__ import annotations

import email.errors
import email.header
import email.message
import email.parser
import email.policy
import email.utils
import logging
import re
from dataclasses import dataclass
from enum import StrEnum

from flufl.bounce import all_failures

from varsel import codes
from varsel.bounce_mime import (
    address_of,
    decoded,
    from_address,
    header,
    readable_text,
    report_fields,
)

# flufl.bounce logs a detector's exception with its traceback before re-raising it; classify()
# catches it (see _heuristics), so the traceback would only reach an MTA's pipe as noise.
_flufl_log = logging.getLogger("flufl.bounce")
_flufl_log.addHandler(logging.NullHandler())
_flufl_log.propagate = False


class BounceKind(StrEnum):
    """What a message that came back means for the delivery."""

    HARD = "hard"  # the address does not exist or cannot take mail: suppress, send a letter
    SOFT = "soft"  # temporary (mailbox full, delayed, gave up retrying): counted only
    POLICY = "policy"  # refused for other reasons than the address (spam filter, size, DMARC)
    COMPLAINT = "complaint"  # the recipient reported the message as spam (ARF abuse)
    AUTO_REPLY = "auto_reply"  # out-of-office and other automatic replies: not a bounce
    UNSUBSCRIBE = "unsubscribe"  # the List-Unsubscribe mailto's message: stop the address
    UNRECOGNISED = "unrecognised"  # none of the above can be told: kept for an operator


class Evidence(StrEnum):
    """What the classification rests on."""

    ARF = "arf"  # an RFC 5965 feedback report
    DSN = "dsn"  # an RFC 3464 delivery-status report
    HEADERS = "headers"  # auto-reply headers or subject, or the unsubscribe subject
    HEURISTIC = "heuristic"  # flufl.bounce recognised the server's own format
    TEXT = "text"  # the words of a message that looks like a bounce
    NONE = "none"  # nothing


@dataclass(frozen=True)
class Classification:
    """One message, read."""

    kind: BounceKind
    evidence: Evidence
    status: str | None = None  # RFC 3463 enhanced status, e.g. 5.1.1
    diagnostic: str | None = None  # the remote server's words, or the report's reason
    recipient: str | None = None  # the failed (or complaining, or replying) address
    feedback_type: str | None = None  # ARF only
    token: str | None = None  # unsubscribe only: the delivery's unsubscribe token
    challenge: bool = False  # auto-reply only: a challenge-response filter's request


_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
# Words for x.0.0 codes and reports without one. Address first: "mailbox unavailable" and
# "rejected" appear in all kinds, so the more specific pattern decides.
_ADDRESS_WORDS = re.compile(
    r"user unknown|unknown user|no such (user|mailbox|recipient|address|account)"
    r"|does ?n[o']t exist|unknown (recipient|mailbox|address|local part)"
    r"|invalid (recipient|mailbox|address)|mailbox (unavailable|not found|disabled)"
    r"|not a valid (user|mailbox|recipient)|user not found|recipient not found"
    r"|account (is )?(disabled|inactive|suspended|deleted)|addressee unknown"
    r"|unrouteable address|host or domain name not found|domain (name )?not found"
    r"|no mailbox here|recipient address rejected: user unknown|nosuchuser"
    # Norwegian ISPs' and mail systems' own words, Bokmål and Nynorsk.
    r"|(adressen|mottakeren|mottakaren|brukeren|brukaren|postkassen|kontoen|domenet)"
    r" (finnes ikke|finst ikkje|eksisterer ikke|eksisterer ikkje)"
    r"|ukjent (mottaker|bruker|adresse|e-postadresse)|ukjend (mottakar|brukar|adresse)"
    r"|ugyldig (mottaker|mottakar|e-postadresse)|ingen slik (bruker|brukar|mottaker|adresse)"
    r"|(kontoen|postkassen) er (slettet|sletta|stengt|deaktivert)",
    re.IGNORECASE,
)
_FULL_WORDS = re.compile(
    r"quota|mailbox (is )?full|insufficient (system )?storage|exceeded storage"
    r"|maximum delivery attempts|delivery time expired|retry time(out)? (not )?exceeded"
    r"|could not be delivered within|temporar"
    r"|(postkassen|innboksen|e-postkassen) er full|full postkasse|kvote|midlertidig|mellombels",
    re.IGNORECASE,
)
_POLICY_WORDS = re.compile(
    r"spam|blocked|block ?list|black ?list|reputation|policy|dmarc|\bspf\b|\bdkim\b"
    r"|not authori[sz]ed|message (is )?too (big|large)|size limit|message size|unable to relay"
    r"|relay(ing)? (denied|not permitted)"
    r"|søppelpost|uønsket e-post|blokkert|svarteliste|meldingen er for stor",
    re.IGNORECASE,
)
_AUTO_SUBJECT = re.compile(
    r"^\s*(automatic reply|auto[- ]?reply|autoreply|auto[- ]?response|auto:|automatisk svar"
    r"|automatiskt svar|autosvar|fravær|fraværsmelding|fraværende|out of (the )?office"
    r"|abwesenheit|réponse automatique|automatisch antwoord|vacation|ferie)",
    re.IGNORECASE,
)
# A ticket system's acknowledgement: a case number in brackets, or the words it always uses.
_TICKET_SUBJECT = re.compile(
    r"\[\s*(ticket|sak|saksnr\.?|case|request|henvendelse|incident)\s*(#|nr\.?|id:?)?\s*"
    r"[\w/-]*\d[\w/-]*\s*\]|we have received your (message|e-?mail|request|enquiry|inquiry)"
    r"|vi har (mottatt|motteke) (din|di|henvendelsen|e-posten|meldingen|saken)",
    re.IGNORECASE,
)
# What a challenge-response filter asks of the sender. Specific on purpose: varsel's own
# message (quoted in many bounces) asks the reader to type an address and a code, and a real
# refusal says "sender verify failed", neither of which may read as a challenge.
_CHALLENGE_WORDS = re.compile(
    r"(verify|confirm|prove) (that )?you are (a )?(human|real person|person|not a (ro)?bot"
    r"|not a spammer)|are you (a )?human\b|i'?m not a robot"
    r"|(sender|e-?mail|address) verification (is )?(required|needed|request)"
    r"|verify your (e-?mail )?(address|message|identity)|guest ?list"
    r"|approved[- ]senders?( list)?|(waiting|pending) (list|for verification)"
    r"|challenge[- ]response|held (until|pending) (you|your|the sender)"
    r"|bekreft at du (er et menneske|er en ekte person|ikke er en robot|sendte)"
    r"|stadfest at du (er eit menneske|ikkje er ein robot)"
    r"|bekreft (avsender(en|adressen)?|e-postadressen din|adressen din)"
    r"|verifiser (at du|avsender|e-postadressen)|godkjente avsendere|venteliste",
    re.IGNORECASE,
)
# ... and how: a link to click, or a reply to send.
_CHALLENGE_ACTION = re.compile(
    r"https?://|\bclick|\bklikk|\breply (to this|with)|simply reply|just reply|svar på denne"
    r"|svar på (e-posten|meldingen|eposten)|send (us )?a reply",
    re.IGNORECASE,
)
_DELAY_SUBJECT = re.compile(
    r"^\s*(warning: (message .{0,80} )?delayed|delayed mail|delivery delayed"
    r"|delivery status notification \(delay\)|forsinket levering|levering forsinket)",
    re.IGNORECASE,
)
# Said only of a message still being tried; "will not be retried" is a failure, so the words
# must follow one another as here.
_DELAY_WORDS = re.compile(
    r"has not yet been delivered|not been delivered yet|delivery attempts will continue"
    r"|will (keep|continue) (on )?trying|still being retried|will be retried"
    r"|this is a warning only|(er|ble) ikke levert (ennå|enda)|ikkje levert enno"
    r"|vi (prøver|forsøker) (igjen|å levere)",
    re.IGNORECASE,
)
# An SMTP reply the bounce quotes without an enhanced status: a code where a reply begins (a
# line, or after "said:", ":" or "<<<") and then words, not a size ("452 KB") or a number.
_SMTP_REPLY = re.compile(
    r"(?:^\s*|[:>]\s*|\b(?:said|error|reply)\s+)([45][0-5]\d)(?=[ -][^\d\s])", re.IGNORECASE
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (status notification|failure|has failed|failed)"
    r"|mail delivery failed|returned mail|failure notice|could not be delivered"
    r"|non[- ]?delivery|unzustellbar|ikke levert|kunne ikke leveres|ikkje levert"
    r"|kunne ikkje leverast|returnert e-post|leveringsfeil",
    re.IGNORECASE,
)
# The subject message.py puts in the List-Unsubscribe mailto, after any reply prefixes a mail
# program adds; the token is secrets.token_urlsafe (by_token takes up to 64 characters).
_UNSUBSCRIBE_SUBJECT = re.compile(
    r"\s*(?:(?:re|sv|aw)\s*:\s*)*unsubscribe-([A-Za-z0-9_-]{1,64})\s*", re.IGNORECASE
)
_DAEMONS = frozenset({"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "ndr"})
_NOT_WORDS = frozenset(
    {
        "final-recipient",
        "original-recipient",
        "remote-mta",
        "reporting-mta",
        "diagnostic-code",
        "status",
        "action",
    }
)
_SEVERITY = {
    BounceKind.HARD: 3,
    BounceKind.POLICY: 2,
    BounceKind.SOFT: 1,
}


def parse(raw: bytes) -> email.message.Message:
    """The message as the classifier reads it (compat32: tolerant of what bounces contain)."""
    return email.message_from_bytes(raw)


def classify(msg: email.message.Message) -> Classification:
    """Read one message that came back."""
    token = unsubscribe_token(msg)
    if token is not None:
        return Classification(
            BounceKind.UNSUBSCRIBE, Evidence.HEADERS, recipient=from_address(msg), token=token
        )
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "message/feedback-report":
            return _arf(part)
    reports = [
        p
        for p in msg.walk()
        if p.get_content_type() in ("message/delivery-status", "message/global-delivery-status")
    ]
    if reports:
        found = _dsn(reports)
        if found is not None:
            return found
    if is_challenge(msg):
        return Classification(
            BounceKind.AUTO_REPLY,
            Evidence.TEXT,
            diagnostic=header(msg, "Subject"),
            recipient=from_address(msg),
            challenge=True,
        )
    daemon = from_daemon(msg)
    if not daemon and is_auto_reply(msg):
        return Classification(
            BounceKind.AUTO_REPLY,
            Evidence.HEADERS,
            diagnostic=header(msg, "Subject"),
            recipient=from_address(msg),
        )
    heuristic = _heuristic(msg)
    if heuristic is not None:
        return heuristic
    if daemon or _BOUNCE_SUBJECT.search(header(msg, "Subject") or ""):
        text = readable_text(msg)
        said = _words_kind(text)
        if said is not None:
            return Classification(said, Evidence.TEXT, diagnostic=_first_line(text, said))
    return Classification(BounceKind.UNRECOGNISED, Evidence.NONE)


def unsubscribe_token(msg: email.message.Message) -> str | None:
    """The token of a message sent to the List-Unsubscribe mailto, or None."""
    found = _UNSUBSCRIBE_SUBJECT.fullmatch(header(msg, "Subject") or "")
    return found.group(1) if found else None


def _heuristic(msg: email.message.Message) -> Classification | None:
    """A bounce without a report, as flufl.bounce finds its failed address; None if it finds
    none. Temporary failures and delay warnings are soft; a permanent one is hard unless the
    code it quotes says otherwise (flufl.bounce calls every failure it finds permanent, a spam
    filter's 5.7.1 and a full mailbox's 5.2.2 too)."""
    temporary, permanent = _heuristics(msg)
    if not (permanent or temporary):
        return None
    address = sorted(permanent or temporary)[0].decode("utf-8", "replace").lower()
    if not permanent or is_delay_warning(msg):
        return Classification(BounceKind.SOFT, Evidence.HEURISTIC, recipient=address)
    quoted = _said_status(readable_text(msg))
    if quoted is not None:
        status, line = quoted
        kind = status_kind(status, line)
        # Sendmail's 553 5.3.0 "No such user here": the words name the address.
        if kind in (BounceKind.SOFT, BounceKind.POLICY) and not _ADDRESS_WORDS.search(line):
            return Classification(
                kind,
                Evidence.HEURISTIC,
                status=refined_status(status, line) or None,
                diagnostic=line,
                recipient=address,
            )
    return Classification(BounceKind.HARD, Evidence.HEURISTIC, recipient=address)


def _heuristics(msg: email.message.Message) -> tuple[frozenset[bytes], frozenset[bytes]]:
    """flufl.bounce's (temporary, permanent) failed addresses; none if a detector fails."""
    try:
        return all_failures(msg)
    except Exception:
        # Its detectors index and unpack what broken or hostile messages need not have
        # (Yale's fails on any message without a From): then they have no answer.
        return frozenset(), frozenset()


def status_kind(status: str, diagnostic: str = "", action: str = "failed") -> BounceKind | None:
    """The kind an RFC 3464 Status means; None for success (2.x.x, delivered, relayed).

    - `delayed`, and 4.x.x (even when the server gave up): soft.
    - 5.1.x (bad mailbox, bad domain, no longer there): hard; but 5.1.7 and 5.1.8, which are
      about the sender's address: policy.
    - 5.2.2 (mailbox full): soft; 5.2.3 (message too big): policy; other 5.2.x (disabled): hard.
    - 5.3.x (the receiving system), 5.5.x (protocol), 5.6.x (content), 5.7.x (security and
      policy: spam filters, DMARC, blocks): policy, not the address's fault.
    - 5.4.1 (Office 365 answers unknown recipients so) and 5.4.4 (no route to the domain):
      hard; 5.4.6 (loop): policy; other 5.4.x: soft.
    - An unspecific code (5.0.0, which Exim and others send for everything, or a bare 550)
      takes the specific code the diagnostic quotes from the remote server, if any; else its
      words: a full mailbox soft, a block policy, otherwise hard (Exim sends 5.0.0 chiefly for
      addresses it cannot route).
    """
    action = action.strip().lower()
    if action in ("delivered", "relayed", "expanded"):
        return None
    code = refined_status(status, diagnostic)
    found = _STATUS.fullmatch(code)
    if found is None:
        basic = re.match(r"[245]\d\d\b", code)
        if basic is None:
            return BounceKind.SOFT if action == "delayed" else _words_kind(diagnostic)
        klass, subject, detail = basic.group(0)[0], 0, 0
    else:
        klass, subject, detail = found.group(1), int(found.group(2)), int(found.group(3))
    if klass == "2":
        return None
    if action == "delayed" or klass == "4":
        return BounceKind.SOFT
    if subject == 0:
        return _words_kind(f"{status} {diagnostic}") or BounceKind.HARD
    if subject == 1:
        # 5.1.7 and 5.1.8 are the sender's address (Office 365's "5.1.8 Access denied, bad
        # outbound sender"): no fault of the recipient's, whose address is not dead.
        return BounceKind.POLICY if detail in (7, 8) else BounceKind.HARD
    if subject == 2:
        return {2: BounceKind.SOFT, 3: BounceKind.POLICY}.get(detail, BounceKind.HARD)
    if subject == 4:
        if detail in (1, 4):
            return BounceKind.HARD
        return BounceKind.POLICY if detail == 6 else BounceKind.SOFT
    return BounceKind.POLICY


def refined_status(status: str, diagnostic: str) -> str:
    """The Status code, or the more specific one the diagnostic quotes (5.0.0 → 5.7.1)."""
    found = _STATUS.search(status)
    quoted = _STATUS.search(diagnostic)
    if quoted and (found is None or (found.group(2) == "0" and quoted.group(1) == found.group(1))):
        return quoted.group(0)
    if found:
        return found.group(0)
    return " ".join(status.split()[:1])


def from_daemon(msg: email.message.Message) -> bool:
    """Whether the message comes from a mail system rather than a person."""
    name, address = email.utils.parseaddr(header(msg, "From") or "")
    local = address.rpartition("@")[0].lower()
    if local in _DAEMONS or (local.startswith("prvs=") and local.endswith("=ndr")):
        return True
    # A report only if it holds a delivery status: challenge filters and auto-responders dress
    # their messages as multipart/report too, and RFC 8098 read receipts are reports.
    if msg.get_content_type() == "multipart/report" and any(
        p.get_content_type() in ("message/delivery-status", "message/global-delivery-status")
        for p in msg.walk()
    ):
        return True
    return bool(re.search(r"mail delivery|delivery (subsystem|system)", name, re.IGNORECASE))


def is_auto_reply(msg: email.message.Message) -> bool:
    """Whether the headers or subject mark an automatic reply (RFC 3834 and common practice).

    `Auto-Submitted: auto-generated` alone does not: RFC 3834 gives it to messages that answer
    nothing, DSNs among them (a bounce sent so is still a bounce).
    """
    auto = (header(msg, "Auto-Submitted") or "").strip().lower()
    if re.match(r"auto-replied\b", auto):
        return True
    if any(msg.get(h) for h in ("X-Autoreply", "X-Autorespond", "X-Autoresponder")):
        return True
    if (header(msg, "X-Autogenerated") or "").strip().lower() == "reply":
        return True
    if (header(msg, "X-Apple-Action") or "").strip().lower() == "vacation":
        return True
    precedence = {(header(msg, h) or "").strip().lower() for h in ("Precedence", "X-Precedence")}
    if "auto_reply" in precedence:
        return True
    subject = header(msg, "Subject") or ""
    return bool(_AUTO_SUBJECT.search(subject) or _TICKET_SUBJECT.search(subject))


def is_delay_warning(msg: email.message.Message) -> bool:
    """Whether the message says delivery is delayed and still being tried (not a failure).

    Servers that send no delivery-status part say so in words only (Exim's "Warning: message
    … delayed 24 hours", Sendmail's "Will keep trying"), and flufl.bounce reads such a
    warning, which names the address it is still trying, as a permanent failure.
    """
    subject = header(msg, "Subject") or ""
    return bool(_DELAY_SUBJECT.search(subject) or _DELAY_WORDS.search(readable_text(msg)))


def is_challenge(msg: email.message.Message) -> bool:
    """Whether the message is a challenge-response filter's request to the sender.

    It asks the sender to prove it is human or to be let through (its subject or its own
    text, not a returned original's), and gives a link to click or asks for a reply.
    """
    text = readable_text(msg)
    words = f"{header(msg, 'Subject') or ''}\n{text}"
    return bool(_CHALLENGE_WORDS.search(words) and _CHALLENGE_ACTION.search(text))


def message_ids(msg: email.message.Message, raw: bytes) -> list[str]:
    """Message-IDs the message refers to: In-Reply-To, References, the returned original's."""
    found: list[str] = []
    for name in ("In-Reply-To", "References"):
        found += re.findall(r"<[^<>\s]+>", header(msg, name) or "")
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], email.message.Message):
                found += re.findall(r"<[^<>\s]+>", header(inner[0], "Message-ID") or "")
        elif kind == "text/rfc822-headers":
            headers = email.parser.HeaderParser().parsestr(decoded(part))
            found += re.findall(r"<[^<>\s]+>", header(headers, "Message-ID") or "")
    # Servers that quote the original in the text instead still quote its Message-ID line.
    found += [
        m.decode("ascii", "replace") for m in re.findall(rb"<\d+\.[0-9a-f]{16}@[^<>\s]+>", raw)
    ]
    return list(dict.fromkeys(found))


# A verification code as a message prints it (codes.format_code), quoted anywhere in a text.
_PRINTED_CODE = re.compile(r"(?<![0-9A-Za-z-])[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}(?![0-9A-Za-z-])")
_MAX_CODES = 20  # a message quotes one of ours; more is no clue, and the lookup stays small


def quoted_codes(msg: email.message.Message) -> list[str]:
    """The verification codes the message's text quotes (a returned original's too), in
    canonical form, distinct, in the order they come; those whose check symbol is wrong are
    not codes."""
    found: dict[str, None] = {}
    for part in msg.walk():
        if part.get_content_maintype() != "text":
            continue
        for printed in _PRINTED_CODE.findall(decoded(part)):
            canonical = codes.normalise(printed)
            if canonical is not None:
                found[canonical] = None
                if len(found) == _MAX_CODES:
                    return list(found)
    return list(found)


# -- the two report formats ---------------------------------------------------------------


def _arf(report: email.message.Message) -> Classification:
    blocks = report_fields(report)
    fields = blocks[0] if blocks else {}
    feedback = fields.get("feedback-type", "").strip().lower()
    recipient = address_of(fields.get("original-rcpt-to", ""))
    if feedback in ("abuse", "fraud"):
        return Classification(
            BounceKind.COMPLAINT,
            Evidence.ARF,
            diagnostic=f"complaint: {feedback}",
            recipient=recipient,
            feedback_type=feedback,
        )
    # not-spam, virus, auth-failure (DMARC failure reports) and the like: not about the
    # recipient's wishes, so nothing is done, but an operator may want to see them.
    return Classification(
        BounceKind.UNRECOGNISED, Evidence.ARF, recipient=recipient, feedback_type=feedback or None
    )


def _dsn(reports: list[email.message.Message]) -> Classification | None:
    blocks = [
        fields
        for report in reports
        for fields in report_fields(report)
        # Not the per-message block (Reporting-MTA, Arrival-Date).
        if "action" in fields or "status" in fields
    ]
    # An address the receiving system expanded (an alias, a list) has a block per mailbox:
    # if one of them got the message, the address was reached, and a dead mailbox behind it
    # is no reason to stop it.
    reached = {
        _recipient(fields)
        for fields in blocks
        if fields.get("action", "").strip().lower() in ("delivered", "relayed", "expanded")
    }
    best: Classification | None = None
    for fields in blocks:
        status = fields.get("status", "")
        diagnostic = fields.get("diagnostic-code", "")
        # Some servers put the reason only in a comment or an X- field (X400 gateways).
        words = " ".join(v for k, v in fields.items() if k not in _NOT_WORDS)
        action = fields.get("action", "failed")
        kind = status_kind(status, f"{diagnostic} {words}", action)
        if kind is None:
            continue
        recipient = _recipient(fields)
        if recipient is not None and recipient in reached:
            kind = BounceKind.SOFT
        found = Classification(
            kind,
            Evidence.DSN,
            status=refined_status(status, f"{diagnostic} {words}") or None,
            diagnostic=diagnostic or None,
            recipient=recipient,
        )
        if best is None or _SEVERITY[kind] > _SEVERITY[best.kind]:
            best = found
    return best


def _recipient(fields: dict[str, str]) -> str | None:
    """The address a recipient block is about: the one the sender gave, where it says so."""
    return address_of(fields.get("original-recipient", "")) or address_of(
        fields.get("final-recipient", "")
    )


# -- what the text says ------------------------------------------------------------------


def _said_status(text: str) -> tuple[str, str] | None:
    """The first failure code the bounce's own text quotes, and its line with the lines that
    continue it (more indented), as one: (code, words); None if it quotes none."""
    lines = text.splitlines()
    for number, line in enumerate(lines):
        enhanced = next((m for m in _STATUS.finditer(line) if m.group(1) != "2"), None)
        found = enhanced or _SMTP_REPLY.search(line)
        if found is None:
            continue
        indent = len(line) - len(line.lstrip())
        said = [line.strip()]
        for more in lines[number + 1 : number + 4]:
            if not more.strip() or len(more) - len(more.lstrip()) <= indent:
                break
            said.append(more.strip())
        code = found.group(0) if found is enhanced else found.group(1)
        return code, " ".join(" ".join(said).split())[:300]
    return None


def _words_kind(text: str) -> BounceKind | None:
    if _ADDRESS_WORDS.search(text):
        return BounceKind.HARD
    if _FULL_WORDS.search(text):
        return BounceKind.SOFT
    if _POLICY_WORDS.search(text):
        return BounceKind.POLICY
    return None


def _first_line(text: str, kind: BounceKind) -> str:
    pattern = {BounceKind.HARD: _ADDRESS_WORDS, BounceKind.SOFT: _FULL_WORDS}.get(
        kind, _POLICY_WORDS
    )
    for line in text.splitlines():
        if pattern.search(line):
            return " ".join(line.split())[:300]
    return ""
