"""Prometheus metrics: a worker's own endpoint, the store's view, and the web app's /metrics."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from helpers import campaign_toml
from varsel.campaign import create_campaign
from varsel.config import Settings
from varsel.db import Database
from varsel.metrics import WorkerMetrics, store_text
from varsel.registry import import_dump
from varsel.web import create_app

CAMPAIGN = campaign_toml()


@pytest.fixture
def campaign_id(db: Database, brreg: Path, tmp_path: Path) -> int:
    import_dump(db, brreg / "enheter-sample.json")
    path = tmp_path / "c.toml"
    path.write_text(CAMPAIGN, "utf-8")
    settings = Settings.load(environ={}, dkim_key_dir=str(tmp_path / "keys"))
    return create_campaign(db, settings, path).campaign.id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_worker_serves_its_counters_and_reply_times_on_loopback() -> None:
    metrics = WorkerMetrics("vert:1:ab")
    metrics.outcome(7, "sent")
    metrics.outcome(7, "sent")
    metrics.outcome(7, "deferred")
    metrics.smtp_reply(0.003)
    metrics.lease_renewed(12)
    port = free_port()
    server = metrics.serve(port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    lines = text.splitlines()
    assert 'varsel_worker_deliveries_total{campaign="7",outcome="sent"} 2.0' in lines
    assert 'varsel_worker_deliveries_total{campaign="7",outcome="deferred"} 1.0' in lines
    assert 'varsel_smtp_reply_seconds_bucket{le="0.005"} 1.0' in lines
    assert 'varsel_smtp_reply_seconds_bucket{le="0.0025"} 0.0' in lines
    assert "varsel_lease_renewals_total 1.0" in lines
    assert "varsel_worker_leases 12.0" in lines
    assert 'varsel_worker_info{worker="vert:1:ab"} 1.0' in lines


def test_the_store_view_counts_deliveries_by_campaign_and_state(
    db: Database, campaign_id: int
) -> None:
    lines = store_text(db).decode().splitlines()
    assert f'varsel_deliveries{{campaign="{campaign_id}",state="queued"}} 6.0' in lines


@pytest.mark.postgres
def test_the_store_view_shows_the_workers_alive(pg_url: str) -> None:
    from varsel import leases
    from varsel.db import connect

    with connect(pg_url) as db:
        leases.register(db, "vert:1:ab", 4, None)
        leases.heartbeat(db, "vert:1:ab", None, leases.Counters(sent=5, rate=2.5), 3, 4)
        leases.register(db, "vert:2:cd", 4, None)
        leases.deregister(db, "vert:2:cd", leases.Counters(), 0)
        lines = store_text(db).decode().splitlines()
    assert "varsel_workers_alive 1.0" in lines
    assert 'varsel_workers_send_rate{worker="vert:1:ab"} 2.5' in lines
    assert 'varsel_workers_deliveries_total{outcome="sent",worker="vert:1:ab"} 5.0' in lines
    assert 'varsel_workers_leases{worker="vert:1:ab"} 3.0' in lines


def test_the_web_app_serves_metrics_only_with_the_token(
    db_url: str, campaign_id: int, tmp_path: Path
) -> None:
    def app(token: str) -> TestClient:
        settings = Settings.load(
            environ={},
            database_url=db_url,
            dkim_key_dir=str(tmp_path / "keys"),
            secret_key="test secret",  # noqa: S106 -- a key for this test only
            metrics_token=token,
        )
        return TestClient(create_app(settings))

    with app("") as client:
        assert client.get("/metrics").status_code == 404
    with app("hemmelig") as client:
        refused = client.get("/metrics", headers={"Authorization": "Bearer feil"})
        answer = client.get("/metrics", headers={"Authorization": "Bearer hemmelig"})
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    assert f'varsel_deliveries{{campaign="{campaign_id}",state="queued"}} 6.0' in answer.text
