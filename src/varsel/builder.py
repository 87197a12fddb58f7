"""Building and signing messages, in the sender's worker processes or in the sender itself.

A worker process imports this module and what it needs to build messages, and nothing of the
sender (asyncio, the store, the SMTP client): it starts in a fraction of the time and memory.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from varsel import claimed_units
from varsel.claimed_units import UnitToName, UnitToSend
from varsel.dkim import Signer, load_key
from varsel.message import MessageError, MessageFactory, MessageSpec, Recipient, UnitRef
from varsel.municipality import name as municipality_name
from varsel.verp import Verp

# One message to build, as plain values (cheaper to send to a worker than dataclasses):
# (delivery id, address, language, canonical code, unsubscribe token,
#  ((orgnr, name, municipality number), ...) or None when the worker is to read them).
Job = tuple[int, str, str, str, str, tuple[UnitToName, ...] | None]
# A built message, its Message-ID and its envelope sender (VERP; empty without a Verp).
Built = tuple[bytes, str, str]


@dataclass(frozen=True)
class Unbuildable:
    """A message the registry's data about its units keeps from being built; the rest can go.

    A name that cannot stand in a subject (an RFC 2047 encoded word, say) fails that one
    delivery, with the reason; a template that fails for everyone stops the send instead.
    """

    reason: str


@dataclass(frozen=True)
class Suppressed:
    """A message not to be built: every unit it would name is suppressed (read by the worker)."""


SUPPRESSED = Suppressed()

# What building one job gives: its message, why its units' data keeps it from being built, or
# that none of its units may be contacted.
Outcome = Built | Unbuildable | Suppressed
# Reads claimed deliveries' units from the store (claimed_units.read, bound to a connection).
ReadUnits = Callable[[list[int]], dict[int, list[UnitToSend]]]

# A stand-in for a unit whose own data is in question: a template that works with it is sound.
_PLAIN = UnitRef("000000000", "Virksomhet AS", None)

_factory: MessageFactory | None = None
_verp: Verp | None = None
_store: tuple[str, int] | None = None  # the SQLite file and campaign whose units a worker reads
_reader: sqlite3.Connection | None = None


def init_worker(
    spec: MessageSpec,
    key_paths: list[tuple[str, str, str]],
    verp: Verp | None = None,
    store: tuple[str, int] | None = None,
) -> None:
    """A worker process's initializer: its one factory, built once; the store it may read."""
    global _factory, _verp, _store  # noqa: PLW0603  # one factory per worker process
    _factory = make_factory(spec, key_paths)
    _verp = verp
    _store = store


def ready() -> None:
    """Nothing: a first task whose return says that a worker has started."""


def build_in_worker(jobs: list[Job]) -> list[Outcome]:
    """A worker process's task: build the messages of the given jobs."""
    assert _factory is not None  # noqa: S101  # set by init_worker
    return build_jobs(_factory, jobs, _verp, _read_here)


def _read_here(ids: list[int]) -> dict[int, list[UnitToSend]]:
    """A worker's read of claimed deliveries' units, on its own read-only connection."""
    global _reader  # noqa: PLW0603  # one connection per worker process, opened when first used
    if _store is None:
        raise RuntimeError("this build worker was given no store to read units from")
    path, campaign_id = _store
    if _reader is None:
        _reader = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)
        _reader.execute("PRAGMA busy_timeout = 30000")
    return claimed_units.read(_reader.execute, campaign_id, ids)


def build_jobs(
    factory: MessageFactory,
    jobs: Sequence[Job],
    verp: Verp | None = None,
    read: ReadUnits | None = None,
) -> list[Outcome]:
    """Build the messages of the given jobs, each with its Message-ID and envelope sender.

    Jobs whose units are None have them read first (with read); a job none of whose units may
    be contacted any more gives SUPPRESSED instead of a message.
    """
    unread = [job[0] for job in jobs if job[5] is None]
    if not unread:
        return _build(factory, jobs, verp)
    if read is None:
        raise RuntimeError("jobs without their units, and nothing to read them with")
    units = read(unread)
    ready: list[Job] = []
    out: list[Outcome | None] = []
    for delivery_id, address, language, code, token, given in jobs:
        named = given if given is not None else claimed_units.to_name(units[delivery_id])
        if named:
            ready.append((delivery_id, address, language, code, token, named))
            out.append(None)
        else:
            out.append(SUPPRESSED)
    built = iter(_build(factory, ready, verp))
    return [next(built) if o is None else o for o in out]


def _build(factory: MessageFactory, jobs: Sequence[Job], verp: Verp | None) -> list[Outcome]:
    recipients = []
    for delivery_id, address, language, code, token, units in jobs:
        assert units is not None  # noqa: S101  # read by build_jobs
        refs = tuple(
            UnitRef(orgnr, name, municipality_name(mun) if mun else None)
            for orgnr, name, mun in units
        )
        recipients.append(Recipient(delivery_id, address, refs, language, code, token))
    try:
        built: list[tuple[bytes, str] | Unbuildable] = list(factory.build_many(recipients))
    except MessageError:
        # One at a time, to tell a unit whose data cannot be used from a template error.
        built = [_build_one(factory, r) for r in recipients]
    # The envelope senders are made here too: an HMAC each, off the sending process.
    senders = [verp.address(job[0]) for job in jobs] if verp is not None else [""] * len(jobs)
    return [
        b if isinstance(b, Unbuildable) else (b[0], b[1], sender)
        for b, sender in zip(built, senders, strict=True)
    ]


def _build_one(factory: MessageFactory, recipient: Recipient) -> tuple[bytes, str] | Unbuildable:
    """One message; Unbuildable if it fails with its units' data and builds with plain units."""
    try:
        return factory.build_with_id(recipient)
    except MessageError as e:
        plain = tuple(_PLAIN for _ in recipient.units)
        # Raises the template's own error when the message fails without the units' data too.
        factory.build_with_id(dataclasses.replace(recipient, units=plain))
        # With the others' plain stand-ins, the units that fail on their own: those are named.
        named = [u.orgnr for u in recipient.units if not _builds(factory, recipient, u)]
        # Kept as the delivery's reason in the store, as a relay's reply is: not translated.
        orgnrs = ", ".join(named or [u.orgnr for u in recipient.units])
        return Unbuildable(f"org.nr. {orgnrs}: registerdata kan ikke stå i meldingen: {e.message}")


def _builds(factory: MessageFactory, recipient: Recipient, unit: UnitRef) -> bool:
    units = tuple(u if u is unit else _PLAIN for u in recipient.units)
    try:
        factory.build_with_id(dataclasses.replace(recipient, units=units))
    except MessageError:
        return False
    return True


def make_factory(spec: MessageSpec, key_paths: list[tuple[str, str, str]]) -> MessageFactory:
    """A message factory with a signer for the given (path, domain, selector) keys."""
    signer = Signer([load_key(Path(p), d, s) for p, d, s in key_paths]) if key_paths else None
    return MessageFactory(spec, signer)
