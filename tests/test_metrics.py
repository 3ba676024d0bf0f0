"""`GET /metrics`: one scrape sums what every process of the real supervisor recorded."""

from __future__ import annotations

from pathlib import Path

import fixtures
import pytest
import requests
from helpers import wait_for
from prometheus_client.parser import text_string_to_metric_families
from system import System

pytestmark = pytest.mark.slow

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(system: System) -> Samples:
    response = requests.get(f"{system.url}/metrics", timeout=30)  # a new connection: any gunicorn worker
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_add_up_across_http_workers_and_the_pipeline(start_system, tmp_path: Path) -> None:
    system = start_system(WEB_CONCURRENCY="2", WORKERS="2", JANITOR_INTERVAL="0.5").wait_ready()
    before = scrape(system)
    auth = system.sign_up()
    image = fixtures.jpeg(tmp_path)
    bad = fixtures.truncated(fixtures.jpeg(tmp_path, "whole.jpg", 400, 300, seed="navy"), tmp_path, "half.jpg")
    good = system.upload(auth, image).json()
    broken = system.upload(auth, bad).json()
    assert system.wait_done(auth, good["id"])["status"] == "completed"
    assert system.wait_done(auth, broken["id"])["status"] == "failed"
    for _ in range(12):  # fresh connections, spread over both gunicorn workers
        assert requests.get(f"{system.url}/api/v1/posts", timeout=30).status_code == 200
    assert requests.get(f"{system.url}/api/v1/posts/{good['id']}", timeout=30).status_code == 200  # a view to flush
    assert requests.get(f"{system.url}/api/v1/nope", timeout=30).status_code == 404

    after = wait_for(
        lambda: (s := scrape(system)) and value(s, "memedroid_janitor_actions_total", action="views_flushed") >= 1 and s,
        timeout=30,
        what="the janitor to flush the view",
    )
    feed = {"endpoint": "/api/v1/posts", "method": "GET", "status": "200"}
    assert value(after, "memedroid_http_requests_total", **feed) - value(before, "memedroid_http_requests_total", **feed) == 12
    assert value(after, "memedroid_http_request_duration_seconds_count", **feed) >= 12
    unmatched = {"endpoint": "unmatched", "method": "GET", "status": "404"}
    assert value(after, "memedroid_http_requests_total", **unmatched) == 1  # one series for every unknown path
    upload = {"endpoint": "/api/v1/posts", "method": "POST", "status": "202"}
    assert value(after, "memedroid_http_requests_total", **upload) == 2
    assert value(after, "memedroid_upload_bytes_total", kind="jpeg") == image.stat().st_size + bad.stat().st_size

    # Recorded by the media workers and the finalizer, other processes than the one scraped.
    assert value(after, "memedroid_jobs_total", kind="jpeg", outcome="completed") == 1
    assert value(after, "memedroid_jobs_total", kind="jpeg", outcome="failed") == 1
    assert value(after, "memedroid_processing_duration_seconds_count", kind="jpeg", outcome="completed") == 1
    assert value(after, "memedroid_processing_duration_seconds_count", kind="jpeg", outcome="failed") == 1
    assert value(after, "memedroid_processing_duration_seconds_sum", kind="jpeg", outcome="completed") > 0
    assert value(after, "memedroid_cache_lookups_total", cache="feed", result="hit") >= 10
    assert value(after, "memedroid_cache_lookups_total", cache="feed", result="miss") >= 1
    assert value(after, "memedroid_job_backlog") == 0 and value(after, "memedroid_job_queue_depth") == 0
    for dependency in ("postgres", "redis", "storage"):
        assert value(after, "memedroid_dependency_up", dependency=dependency) == 1, dependency
