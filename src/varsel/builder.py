"""Building and signing messages, in the sender's worker processes or in the sender itself.

A worker process imports this module and what it needs to build messages, and nothing of the
sender (asyncio, the store, the SMTP client): it starts in a fraction of the time and memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from varsel.dkim import Signer, load_key
from varsel.message import MessageFactory, MessageSpec, Recipient, UnitRef
from varsel.municipality import name as municipality_name
from varsel.verp import Verp

# One message to build, as plain values (cheaper to send to a worker than dataclasses):
# (delivery id, address, language, canonical code, unsubscribe token,
#  ((orgnr, name, municipality number), ...)).
Job = tuple[int, str, str, str, str, tuple[tuple[str, str, str | None], ...]]
# A built message, its Message-ID and its envelope sender (VERP; empty without a Verp).
Built = tuple[bytes, str, str]

_factory: MessageFactory | None = None
_verp: Verp | None = None


def init_worker(
    spec: MessageSpec, key_paths: list[tuple[str, str, str]], verp: Verp | None = None
) -> None:
    """A worker process's initializer: its one factory, built once."""
    global _factory, _verp  # noqa: PLW0603  # one factory per worker process
    _factory = make_factory(spec, key_paths)
    _verp = verp


def ready() -> None:
    """Nothing: a first task whose return says that a worker has started."""


def build_in_worker(jobs: list[Job]) -> list[Built]:
    """A worker process's task: build the messages of the given jobs."""
    assert _factory is not None  # noqa: S101  # set by init_worker
    return build_jobs(_factory, jobs, _verp)


def build_jobs(
    factory: MessageFactory, jobs: Sequence[Job], verp: Verp | None = None
) -> list[Built]:
    """Build the messages of the given jobs, each with its Message-ID and envelope sender."""
    recipients = []
    for delivery_id, address, language, code, token, units in jobs:
        refs = tuple(
            UnitRef(orgnr, name, municipality_name(mun) if mun else None)
            for orgnr, name, mun in units
        )
        recipients.append(Recipient(delivery_id, address, refs, language, code, token))
    built = factory.build_many(recipients)
    # The envelope senders are made here too: an HMAC each, off the sending process.
    senders = [verp.address(job[0]) for job in jobs] if verp is not None else [""] * len(jobs)
    return [
        (data, message_id, sender)
        for (data, message_id), sender in zip(built, senders, strict=True)
    ]


def make_factory(spec: MessageSpec, key_paths: list[tuple[str, str, str]]) -> MessageFactory:
    """A message factory with a signer for the given (path, domain, selector) keys."""
    signer = Signer([load_key(Path(p), d, s) for p, d, s in key_paths]) if key_paths else None
    return MessageFactory(spec, signer)
