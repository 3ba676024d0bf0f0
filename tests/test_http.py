"""HTTP conventions: problem details, request ids, health probes."""

from __future__ import annotations

import inspect
import json
import logging
import time

import pytest
from flask import Flask
from flask.testing import FlaskClient
from helpers import assert_problem, free_port, only_our_handler
from prometheus_client.parser import text_string_to_metric_families

from memedroid import logs
from memedroid.api.app import create_app
from memedroid.settings import Settings


def test_unknown_route_and_wrong_method_are_problems(client: FlaskClient) -> None:
    assert_problem(client.get("/api/v1/nope"), 404)
    response = client.get("/api/v1/auth/login")
    assert_problem(response, 405)
    assert "POST" in response.headers["Allow"]


@pytest.mark.parametrize("url", ["/api/v1/users/al%00ice", "/api/v1/posts?author=al%00ice", "/api/v1/tags?prefix=%00"])
def test_a_nul_in_the_url_is_a_400(client: FlaskClient, url: str) -> None:
    assert "NUL" in assert_problem(client.get(url), 400)["detail"]


def test_oversized_body_is_413(client: FlaskClient, settings: Settings) -> None:
    body = "x" * (settings.max_request_bytes + 1)
    assert_problem(client.post("/api/v1/auth/login", data=body, content_type="application/json"), 413)


def test_unexpected_exception_is_a_bare_500(app: Flask, capfd: pytest.CaptureFixture[str]) -> None:
    def explode() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    app.add_url_rule("/boom", view_func=explode)
    logs.configure("INFO", role="test")
    response = app.test_client().get("/boom")
    body = assert_problem(response, 500)
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "secret internals" not in text and "RuntimeError" not in text
    # ...but the traceback is in the log, with the request id.
    records = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith("{")]
    error = next(r for r in records if r.get("event") == "unhandled_exception")
    assert "secret internals" in error["exc_info"] and error["request_id"] == body["request_id"]


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [("abc-123.DEF_x", True), ("bad id with spaces", False), ("x" * 65, False), ("<script>", False)],
)
def test_request_id_is_echoed_when_sane(client: FlaskClient, sent: str, echoed: bool) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": sent})
    returned = response.headers["X-Request-ID"]
    assert (returned == sent) is echoed
    assert 1 <= len(returned) <= 64


def test_request_id_on_every_log_line_of_the_request(app: Flask, capfd: pytest.CaptureFixture[str]) -> None:
    logs.configure("INFO", role="test")
    response = app.test_client().post(
        "/api/v1/auth/login", json={"login": "nobody", "password": "hunter2hunter2"}, headers={"X-Request-ID": "trace-me-42"}
    )
    assert response.status_code == 401
    assert response.headers["X-Request-ID"] == "trace-me-42"
    out = capfd.readouterr().out
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    access = [r for r in records if r.get("event") == "request"]
    assert access and all(r["request_id"] == "trace-me-42" for r in access)
    assert {"method": "POST", "path": "/api/v1/auth/login", "status": 401}.items() <= access[-1].items()
    assert access[-1]["duration_ms"] >= 0
    assert "hunter2hunter2" not in out  # passwords are never logged


def test_the_access_line_has_the_same_fields_as_ever(
    app: Flask, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What operators' log pipelines parse: every field, with its type."""
    logs.configure("INFO", role="http")
    only_our_handler(monkeypatch)
    assert app.test_client().get("/healthz", headers={"X-Request-ID": "fields-1"}).status_code == 200
    lines = [json.loads(line) for line in capfd.readouterr().out.splitlines() if '"event":"request"' in line]
    assert len(lines) == 1
    line = lines[0]
    assert set(line) == {
        "level", "logger", "message", "event", "method", "path", "status", "duration_ms", "user_id", "request_id",
        "role", "time",
    }  # fmt: skip
    assert {"level": "INFO", "logger": "memedroid.access", "message": "request", "event": "request", "method": "GET",
            "path": "/healthz", "status": 200, "user_id": None, "request_id": "fields-1", "role": "http"}.items() <= line.items()  # fmt: skip
    assert isinstance(line["duration_ms"], float) and line["time"].endswith("+00:00")


def test_the_access_line_reads_the_same_whichever_way_it_is_written(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`logs.Line` writes directly while the root's JSON handler is the only way out, and
    through `logging` otherwise: the two lines are the same."""
    logs.configure("INFO", role="http")
    records: list[logging.LogRecord] = []
    spy = logging.Handler()
    spy.emit = records.append  # type: ignore[method-assign]
    line = logs.Line("memedroid.access", "request")
    fields = {"event": "request", "method": "GET", "path": "/p/é", "status": 200, "duration_ms": 1.5, "user_id": 7}
    token = logs.request_id_var.set("either-way")
    try:
        only_our_handler(monkeypatch)
        line.info(**fields)
        only_our_handler(monkeypatch, spy)
        line.info(**fields)
    finally:
        logs.request_id_var.reset(token)
    assert len(records) == 1  # the first line made no LogRecord
    direct, through_logging = [json.loads(text) for text in capfd.readouterr().out.splitlines() if "either-way" in text]
    assert direct.pop("time") <= through_logging.pop("time")
    assert direct == through_logging and direct["path"] == "/p/é" and direct["role"] == "http"
    line.logger.setLevel(logging.WARNING)
    try:
        line.info(**fields)
    finally:
        line.logger.setLevel(logging.NOTSET)
    assert capfd.readouterr().out == ""  # the level holds either way


def test_request_metrics_count_every_answer_by_route(client: FlaskClient) -> None:
    """One observation per request: the request counter is read from the latency histogram."""

    def scrape() -> dict[tuple[str, str, str, str], float]:
        text = client.get("/metrics").get_data(as_text=True)
        assert "# TYPE memedroid_http_requests_total counter" in text
        return {
            (sample.name, sample.labels.get("endpoint", ""), sample.labels.get("method", ""), sample.labels.get("status", "")): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }  # fmt: skip

    before = scrape()
    for _ in range(3):
        client.get("/healthz")
    client.open("/healthz", method="BREW")  # a method a client made up is "other": nobody can mint series
    after = scrape()
    for name in ("memedroid_http_requests_total", "memedroid_http_request_duration_seconds_count"):
        key = (name, "/healthz", "GET", "200")
        assert after[key] - before.get(key, 0) == 3
    made_up = ("memedroid_http_requests_total", "unmatched", "other", "405")
    assert after[made_up] - before.get(made_up, 0) == 1


def test_no_view_or_hook_is_a_coroutine(app: Flask) -> None:
    """The app skips Flask's per-call coroutine check (`Api.ensure_sync`): that holds while no
    view or hook is async."""
    hooks = [
        hook
        for registry in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs)
        for functions in registry.values()
        for hook in functions
    ]
    assert hooks and not any(inspect.iscoroutinefunction(f) for f in [*hooks, *app.view_functions.values()])


def test_health_and_readiness(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json() == {"status": "ready"}


def test_readyz_is_503_when_the_database_is_unreachable(settings: Settings) -> None:
    dead = settings.replace(database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/nothing", db_timeout=1.0)
    app = create_app(dead)
    try:
        client = app.test_client()
        assert client.get("/healthz").status_code == 200
        started = time.monotonic()
        response = client.get("/readyz")
        assert_problem(response, 503)
        assert response.headers["Retry-After"].isdigit()
        assert time.monotonic() - started < 5
        # Any database-backed request is a 503 too, never a 500.
        assert_problem(client.post("/api/v1/auth/login", json={"login": "a", "password": "b"}), 503)
    finally:
        app.extensions["memedroid"].close()
