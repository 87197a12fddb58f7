"""Sending from the console, and the live progress of any send.

A send started in the console runs `send_gate.send_checked` (the four-eyes gate, the sender,
the audit entries) on a thread of the web process with its own store connection: the sender
is asyncio on its own event loop, and builds messages in spawned processes for large sends, so
it shares nothing with the request threads. The sender's lease on the campaign row keeps a
second sender (another web worker, or `varsel campaign send`) off the same campaign. If the web
process stops mid-send, what was on the wire is settled as the sender always settles a crash
(in doubt, never resent silently) and `varsel campaign send` (or the console) goes on.

Progress is read from the store, so a send from the command line shows the same way.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta

from varsel.campaign import CampaignStatus, get_campaign
from varsel.channel.smtp_relay import RelayConfig
from varsel.clock import utcnow
from varsel.config import Settings
from varsel.db import Database, connect, lost
from varsel.errors import Text, VarselError
from varsel.leases import WORKERS, workers_for
from varsel.outbox import counts
from varsel.send_gate import send_checked
from varsel.send_lock import WORKERS_ONLY
from varsel.sender import SendOptions
from varsel.web.templating import N_

log = logging.getLogger("varsel.web")

RATE_WINDOW_SECONDS = 60  # the rate shown is over the last minute


class Senders:
    """The sends this web process runs, one thread per campaign, and how the last one ended."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._threads: dict[int, threading.Thread] = {}
        # campaign -> why its last send failed: the library's message (a Text) or an N_ id,
        # translated where it is shown (console_auth.shown)
        self._outcomes: dict[int, str] = {}

    def running(self, campaign_id: int) -> bool:
        """A send of this campaign is running in this process."""
        with self._lock:
            thread = self._threads.get(campaign_id)
            return thread is not None and thread.is_alive()

    def problem(self, campaign_id: int) -> str | None:
        """Why the last send of the campaign from this process stopped with an error."""
        with self._lock:
            return self._outcomes.get(campaign_id)

    def start(self, campaign_id: int, actor: str) -> bool:
        """Send the campaign in the background as `actor`; False if it is already running here.

        The caller has checked the approval (so the refusal shows at once); send_checked checks
        it again, in the same transaction-order as the command line, and audits the send.
        """
        with self._lock:
            thread = self._threads.get(campaign_id)
            if thread is not None and thread.is_alive():
                return False
            self._outcomes.pop(campaign_id, None)
            thread = threading.Thread(
                target=self._send,
                args=(campaign_id, actor),
                name=f"varsel-send-{campaign_id}",
                daemon=True,  # a stopped web process leaves in-doubt rows, settled on the next send
            )
            self._threads[campaign_id] = thread
        thread.start()
        return True

    def _send(self, campaign_id: int, actor: str) -> None:
        settings = self.settings
        try:
            with connect(settings.database_url, migrate=False) as db:
                spec = get_campaign(db, campaign_id).spec
                send_checked(
                    db,
                    settings,
                    campaign_id,
                    actor=actor,
                    relay=RelayConfig.from_url(settings.smtp_url),
                    options=SendOptions.for_campaign(spec),
                )
        except VarselError as e:
            log.warning("Sending av kampanje %s stoppet: %s", campaign_id, e.message)
            with self._lock:
                self._outcomes[campaign_id] = for_console(e.message)
        except Exception as e:
            failed = lost(e, settings.database_url)
            if failed is not None:  # the store went away (a restart, a full disk): not a bug
                log.warning("Sending av kampanje %s stoppet: %s", campaign_id, failed.message)
                outcome = STORE_FAILED
            else:
                log.exception("Sending av kampanje %s feilet", campaign_id)
                outcome = N_("en intern feil stoppet sendingen; se loggen")
            with self._lock:
                self._outcomes[campaign_id] = outcome

    def join(self, timeout: float) -> None:
        """Wait for the running sends (tests, and an orderly shutdown)."""
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(timeout)


# Why a send stopped when its store failed under it (see db.lost): the reason is the log's.
STORE_FAILED = N_(
    "lageret sviktet under sendingen (årsaken står i loggen); det som ble sendt, er lagret. "
    "Send kampanjen igjen når lageret svarer."
)


# The library's messages that tell the command line's user what to run, and the console's
# words for the same thing (same values): the console has its own buttons.
_CONSOLE_WORDS = {
    "e-posttjeneren %(relay)s kan ikke brukes: %(reason)s (%(tries)s forsøk); "
    "leveransene som gjenstår, venter i køen til neste «campaign send»": N_(
        "e-posttjeneren %(relay)s kan ikke brukes: %(reason)s (%(tries)s forsøk); "
        "e-postene som gjenstår, venter i køen til kampanjen sendes igjen med «Send kampanjen»"
    ),
    WORKERS_ONLY: N_(
        "Denne kampanjen er gitt til arbeiderne («varsel worker») på tjeneren, og bare de sender "
        "den. Vil du sende den fra konsollen, trykk «Pause» og så «Send kampanjen». "
        "Ingenting er endret."
    ),
}


def for_console(message: str) -> str:
    """A library's message as the console says it (its own buttons, not commands)."""
    if isinstance(message, Text) and message.msgid in _CONSOLE_WORDS:
        return Text(_CONSOLE_WORDS[message.msgid], **message.params)
    return message


# -- progress -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """A campaign's e-mail deliveries now: counts, the rate over the last minute, time left."""

    campaign_id: int
    status: CampaignStatus
    counts: dict[str, int]
    total: int
    per_minute: int  # messages accepted by the relay in the last minute
    sender: str | None  # the process holding the campaign's send lease, if any
    # For a campaign handed to `varsel worker` (PostgreSQL): how many run for it now.
    workers: int | None = None

    @property
    def to_workers(self) -> bool:
        """Handed to the workers: they send it, never the console's own sender."""
        return self.workers is not None

    @property
    def remaining(self) -> int:
        c = self.counts
        return c["queued"] + c["deferred"] + c["claimed"]

    @property
    def done(self) -> int:
        return self.total - self.remaining

    @property
    def seconds_left(self) -> int | None:
        """At the last minute's rate; None when nothing is moving or nothing is left."""
        if not self.remaining or not self.per_minute or self.status is not CampaignStatus.SENDING:
            return None
        return int(self.remaining * 60 / self.per_minute)

    @property
    def live(self) -> bool:
        """Worth polling: a sender is at work."""
        return self.status is CampaignStatus.SENDING


def progress(db: Database, campaign_id: int) -> Progress:
    """Read a campaign's progress from the store."""
    campaign = get_campaign(db, campaign_id)
    by_state = counts(db, campaign_id)
    since = (utcnow() - timedelta(seconds=RATE_WINDOW_SECONDS)).strftime("%Y-%m-%dT%H:%M:%S.%f")[
        :-3
    ] + "Z"
    recent = db.scalar(
        "SELECT count(*) FROM deliveries WHERE campaign_id = ? AND channel = 'email' "
        "AND sent_at >= ?",
        (campaign_id, since),
    )
    holder = db.query_one(
        "SELECT sender_pid, sender_lease_until FROM campaigns WHERE id = ?", (campaign_id,)
    )
    now = utcnow().isoformat()
    sender = holder[0] if holder and holder[0] and holder[1] and holder[1] > now else None
    workers = workers_for(db, campaign_id) if holder and holder[0] == WORKERS else None
    return Progress(
        campaign_id,
        campaign.status,
        by_state,
        sum(by_state.values()),
        int(recent or 0),
        sender,
        workers,
    )
