"""How a campaign is sent, read from its definition: options, message spec, signing keys.

The sender runs with these; the linter and its previews, the console's editor and the document
e-mail build their messages from the same message spec and keys.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from varsel.campaign import Campaign, CampaignSpec
from varsel.config import Settings
from varsel.errors import Text, UserError
from varsel.message import MessageSpec

# Seconds of sending at the campaign's rate that a sender claims at a time (SendOptions.claim_size).
CLAIM_SECONDS = 2.0


class SendError(UserError):
    """The campaign cannot be sent now."""


@dataclass(frozen=True)
class SendOptions:
    """How a send runs; defaults come from the campaign's [limits]."""

    connections: int = 4
    rate_per_second: float = 50.0
    per_domain_concurrency: int = 2
    per_domain_per_minute: int = 600
    retry_base_seconds: float = 60.0
    retry_max_seconds: float = 3600.0
    deadline_hours: float = 48.0
    batch: int = 400
    build_processes: int | None = None  # None: per core for large sends (1 unsigned); 0: none
    respect_window: bool = True
    linger_seconds: float | None = None  # stop when the next retry is further away than this
    # Connecting to the relay: tries in a row before the run stops (the relay cannot be used),
    # the first wait between them (doubling).
    relay_tries: int = 5
    relay_retry_seconds: float = 0.5
    # False sends unsigned messages: for benchmarks and tests only (the CLI does not offer it),
    # since receivers check DKIM and a real campaign must always be signed.
    sign: bool = True

    @property
    def claim_size(self) -> int:
        """Deliveries a sender claims at a time: about CLAIM_SECONDS of sending at the rate,
        at most `batch`, and enough to keep every connection busy.

        A claim is a sender's until it is sent or its lease runs out: claims much larger than
        the rate can send would leave other workers idle, and a dead worker's deliveries
        waiting for its lease (measured: two of three workers took a 40/s campaign's 776).
        """
        by_rate = math.ceil(self.rate_per_second * CLAIM_SECONDS)
        return max(2 * self.connections, min(self.batch, by_rate))

    @classmethod
    def for_campaign(cls, spec: CampaignSpec, **overrides: Any) -> SendOptions:
        limits = spec.limits
        base = cls(
            connections=limits.connections,
            rate_per_second=limits.rate_per_second,
            per_domain_concurrency=limits.per_domain_concurrency,
            per_domain_per_minute=limits.per_domain_per_minute,
            deadline_hours=limits.retry_hours,
        )
        return cls(**{**base.__dict__, **{k: v for k, v in overrides.items() if v is not None}})


def message_spec(campaign: Campaign) -> MessageSpec:
    """The per-campaign half of every message."""
    spec = campaign.spec
    return MessageSpec(
        campaign_id=campaign.id,
        from_address=spec.from_address,
        from_name=spec.from_name,
        reply_to=spec.reply_to,
        organisation=spec.organisation,
        subjects={k: t.subject for k, t in spec.templates.items()},
        text_templates={k: t.text for k, t in spec.templates.items()},
        html_templates={k: t.html for k, t in spec.templates.items()},
        document_title=spec.document_title,
        document_url=spec.document_url,
        verify_url=spec.verify_url,
        unsubscribe_url=spec.unsubscribe_url,
        unsubscribe_mailto=f"avmelding@{spec.sender_domain}",
        allow_links=spec.allow_links,
        allowed_link_domains=spec.allowed_link_domains,
        fields=dict(spec.fields),
        feedback_id=f"c{campaign.id}:varsel:{spec.sender_domain}",
    )


def key_paths(settings: Settings, spec: CampaignSpec) -> list[tuple[str, str, str]]:
    """(path, domain, selector) of the campaign's DKIM keys; RSA first, then Ed25519."""
    from varsel.keys import key_path

    domain, selector = spec.sender_domain, spec.dkim_selector
    paths = [(str(key_path(settings, domain, selector)), domain, selector)]
    if spec.dkim_ed25519:
        ed = f"{selector}e"
        paths.append((str(key_path(settings, domain, ed)), domain, ed))
    for path, key_domain, key_selector in paths:
        if not os.path.exists(path):
            raise SendError(
                Text(
                    "DKIM-nøkkelen %(path)s finnes ikke; lag den med «varsel keys generate "
                    "--domain %(domain)s --selector %(selector)s%(algorithm)s» og publiser "
                    "DNS-posten",
                    path=path,
                    domain=key_domain,
                    selector=key_selector,
                    # The second key is Ed25519; keys generate makes RSA unless told.
                    algorithm="" if key_selector == selector else " --algorithm ed25519",
                )
            )
    return paths
