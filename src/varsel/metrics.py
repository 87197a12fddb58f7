"""Prometheus metrics: each worker's own, and the store's view that the web app serves.

A worker counts what it does (outcomes, the relay's reply times, lease renewals) and serves
them on 127.0.0.1 when asked to. What all workers do together is read from the store at each
scrape and served by `varsel serve` at /metrics, behind a bearer token: deliveries by state
per campaign, the workers alive, their send rates and counters. So one scrape of the web app
sees the whole system, and a dead worker (whose own endpoint is gone) shows there too.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from varsel.db import Database

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from starlette.requests import Request
    from starlette.responses import Response

# The relay answers the final dot in milliseconds on a LAN and in seconds when it is busy.
REPLY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# A finished campaign's counts stay in the metrics this long after its last change.
RECENT_SECONDS = 86400


class WorkerMetrics:
    """What one worker process has done since it started."""

    def __init__(self, worker_id: str) -> None:
        self.registry = CollectorRegistry()
        info = Gauge(
            "varsel_worker_info", "This worker (always 1).", ["worker"], registry=self.registry
        )
        info.labels(worker_id).set(1)
        self.outcomes = Counter(
            "varsel_worker_deliveries",
            "Delivery attempts this worker finished, by campaign and outcome "
            "(sent, deferred, failed, in_doubt).",
            ["campaign", "outcome"],
            registry=self.registry,
        )
        self.reply = Histogram(
            "varsel_smtp_reply_seconds",
            "Seconds from writing the final dot of DATA to the relay's reply.",
            buckets=REPLY_BUCKETS,
            registry=self.registry,
        )
        self.renewals = Counter(
            "varsel_lease_renewals", "Lease renewals this worker made.", registry=self.registry
        )
        self.leases = Gauge(
            "varsel_worker_leases",
            "Deliveries this worker holds claimed (at its last renewal).",
            registry=self.registry,
        )
        self.send_rate = Gauge(
            "varsel_worker_send_rate",
            "Messages per second this worker sent, over its last second or more.",
            registry=self.registry,
        )

    def outcome(self, campaign_id: int, kind: str) -> None:
        self.outcomes.labels(str(campaign_id), kind).inc()

    def smtp_reply(self, seconds: float) -> None:
        self.reply.observe(seconds)

    def lease_renewed(self, held: int) -> None:
        self.renewals.inc()
        self.leases.set(held)

    def rate(self, value: float) -> None:
        self.send_rate.set(value)

    def serve(self, port: int, host: str = "127.0.0.1") -> Any:
        """Serve /metrics on host:port in a thread; returns the server (call .shutdown())."""
        server, _ = start_http_server(port, addr=host, registry=self.registry)
        return server

    def text(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)


class StoreCollector(Collector):
    """Reads the delivery counts and the workers' rows from the store at every scrape."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        from varsel import leases

        db = self.db
        deliveries = GaugeMetricFamily(
            "varsel_deliveries",
            "Deliveries by campaign and state (campaigns active or changed in the last day).",
            labels=["campaign", "state"],
        )
        # Campaigns' updated_at is ISO text: compared as text with the cut-off, on both stores.
        cutoff = leases.iso_at(_store_epoch(db) - RECENT_SECONDS)
        for campaign, state, n in db.query(
            "SELECT d.campaign_id, d.state, count(*) FROM deliveries d JOIN campaigns c "
            "ON c.id = d.campaign_id WHERE c.status IN ('sending', 'paused', 'ready') "
            "OR c.updated_at >= ? GROUP BY d.campaign_id, d.state ORDER BY 1, 2",
            (cutoff,),
        ):
            deliveries.add_metric([str(campaign), str(state)], float(n))
        yield deliveries
        if "workers" not in db.tables() or db.dialect != "postgresql":
            return
        rows = [w for w in leases.workers(db) if w.state == "running"]
        yield GaugeMetricFamily(
            "varsel_workers_alive", "Workers with a recent heartbeat.", value=len(rows)
        )
        rate = GaugeMetricFamily(
            "varsel_workers_send_rate", "Messages per second each worker sends.", labels=["worker"]
        )
        held = GaugeMetricFamily(
            "varsel_workers_leases", "Deliveries each worker holds claimed.", labels=["worker"]
        )
        done = CounterMetricFamily(
            "varsel_workers_deliveries",
            "Delivery attempts each worker finished since it started, by outcome.",
            labels=["worker", "outcome"],
        )
        renewals = CounterMetricFamily(
            "varsel_workers_lease_renewals", "Lease renewals of each worker.", labels=["worker"]
        )
        for w in rows:
            rate.add_metric([w.id], w.rate)
            held.add_metric([w.id], w.leases)
            renewals.add_metric([w.id], w.lease_renewals)
            for kind in ("sent", "deferred", "failed", "in_doubt"):
                done.add_metric([w.id, kind], getattr(w, kind))
        yield from (rate, held, done, renewals)


def _store_epoch(db: Database) -> float:
    if db.dialect == "postgresql":
        return float(db.scalar("SELECT extract(epoch FROM clock_timestamp())"))
    import time

    return time.time()


def store_text(db: Database) -> bytes:
    """The store's metrics in Prometheus' text format."""
    registry = CollectorRegistry()
    registry.register(StoreCollector(db))
    return generate_latest(registry)


async def metrics_view(request: Request) -> Response:
    """GET /metrics on the web app: the store's metrics, for a scraper with the bearer token."""
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.responses import PlainTextResponse, Response

    site = request.app.state.site
    token: str = site.settings.metrics_token
    if not token:
        raise HTTPException(404)  # off unless configured: the site is public
    given = request.headers.get("authorization", "").encode()
    if not hmac.compare_digest(given, f"Bearer {token}".encode()):
        return PlainTextResponse(
            "Unauthorized", status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )

    def scrape() -> bytes:
        with site.store.connection() as db:
            return store_text(db)

    return Response(await run_in_threadpool(scrape), media_type=CONTENT_TYPE_LATEST)
