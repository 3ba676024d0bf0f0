"""Prometheus metrics, correct across every process of one supervisor.

`bin/memedroid-supervisor` points `PROMETHEUS_MULTIPROC_DIR` at a folder of its own before
anything imports prometheus_client (see `cli.share_metrics_folder`), so the gunicorn workers,
the media workers, the finalizer and the janitor all write their samples there and any
gunicorn worker can serve the sum at `GET /metrics`. Without that variable (tests that build
the app in-process, one-off CLI commands) metrics live in the process's memory.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, Metric, generate_latest, values
from prometheus_client.metrics_core import CounterMetricFamily
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from memedroid.logs import Degradation

CONTENT_TYPE = CONTENT_TYPE_LATEST


class SampleFile(MmapedDict):
    """prometheus_client's file of one process's samples, a memory map, with its disk blocks
    allocated before they are mapped. Its own files are sparse: the first write to a page the
    disk has no room for kills the process with SIGBUS (a full disk under VAR_DIR made every
    process of a node die at boot, or crash-loop, each time it counted a request). When the
    disk has no room, the samples stay in the process's memory (not shared; `/metrics` lacks
    them, the process lives) and a sample that does not fit is dropped: metrics never take a
    process down."""

    def __init__(self, filename: str, read_mode: bool = False) -> None:
        if not read_mode:
            try:
                _allocate(filename, INITIAL_SAMPLE_BYTES)
            except OSError as exc:
                _sharing.failed(exc)
                filename = _in_memory(INITIAL_SAMPLE_BYTES)
        super().__init__(filename, read_mode)  # type: ignore[no-untyped-call]

    def _init_value(self, key: str) -> None:
        needed, capacity = self._used + len(key.encode()) + 32, self._capacity  # an entry: its key, padding and 20 bytes
        while capacity < needed:
            capacity *= 2
        if capacity > self._capacity:
            os.posix_fallocate(self._f.fileno(), 0, capacity)  # before prometheus_client maps the new pages
        super()._init_value(key)  # type: ignore[no-untyped-call]

    def read_value(self, key: str) -> tuple[float, float]:
        try:
            return super().read_value(key)  # type: ignore[no-any-return, no-untyped-call]
        except OSError as exc:
            _sharing.failed(exc)
            return 0.0, 0.0

    def write_value(self, key: str, value: float, timestamp: float) -> None:
        try:
            super().write_value(key, value, timestamp)  # type: ignore[no-untyped-call]
        except OSError as exc:
            _sharing.failed(exc)


INITIAL_SAMPLE_BYTES = 1 << 16  # prometheus_client's own first size of a file


def _allocate(filename: str, size: int) -> None:
    """Make `filename` at least `size` bytes, every block on the disk; leave nothing on failure
    (an empty file is one the collector cannot read)."""
    with open(filename, "ab") as file:
        if os.fstat(file.fileno()).st_size < size:
            try:
                os.posix_fallocate(file.fileno(), 0, size)
            except OSError:
                if os.fstat(file.fileno()).st_size == 0:
                    os.unlink(filename)
                raise


def _in_memory(size: int) -> str:
    """A file of `size` bytes in memory (memfd), by a name prometheus_client can open."""
    fd = os.memfd_create("memedroid-samples")
    os.posix_fallocate(fd, 0, size)
    return f"/proc/self/fd/{fd}"


_sharing = Degradation(
    logging.getLogger(__name__), ("metrics_degraded", "metrics of this process are not shared: no room for them")
)


# Shared metrics ask for the process id on every write (to notice a fork): by default a
# getpid() system call each time. Read it once per process, and again after a fork.
_pid = functools.cache(os.getpid)
os.register_at_fork(after_in_child=_pid.cache_clear)
if "PROMETHEUS_MULTIPROC_DIR" in os.environ:  # every metric below (and every child of one) writes to its file
    values.MmapedDict = SampleFile  # type: ignore[attr-defined]
    values.ValueClass = values.MultiProcessValue(process_identifier=_pid)  # type: ignore[no-untyped-call]

REQUEST_LABELS = ["endpoint", "method", "status"]
REQUEST_SECONDS_NAME = "memedroid_http_request_duration_seconds"
REQUEST_SECONDS = Histogram(
    REQUEST_SECONDS_NAME,
    "Time to answer an HTTP request, by route template, method and status.",
    REQUEST_LABELS,
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
# memedroid_http_requests_total is not counted separately: it is the histogram's count, read
# when scraped (RequestCounts), so that a request costs one observation.
REQUESTS_HELP = "HTTP requests answered, by route template, method and status."
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # any other: "other"
UPLOAD_BYTES = Counter("memedroid_upload_bytes_total", "Bytes of accepted uploads, by source type.", ["kind"])
JOBS = Counter(
    "memedroid_jobs_total",
    "Media jobs finalized, by source type and what became of them "
    "(completed, failed, pending = retried, discarded = a late result after the lease moved on).",
    ["kind", "outcome"],
)
PROCESSING_SECONDS = Histogram(
    "memedroid_processing_duration_seconds",
    "Time a worker spent on one job, by source type and the worker's verdict.",
    ["kind", "outcome"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320),
)
JANITOR_ACTIONS = Counter("memedroid_janitor_actions_total", "What the janitor did, by action.", ["action"])
CACHE_LOOKUPS = Counter("memedroid_cache_lookups_total", "Redis cache lookups, by cache and result.", ["cache", "result"])
# Read when scraped, by whichever process answers: the most recent reading is the truth.
QUEUE_DEPTH = Gauge("memedroid_job_queue_depth", "Jobs waiting on the in-memory queue.", multiprocess_mode="mostrecent")
BACKLOG = Gauge(
    "memedroid_job_backlog",
    "Durable backlog: media rows pending or processing in PostgreSQL.",
    multiprocess_mode="mostrecent",
)
DEPENDENCY_UP = Gauge(
    "memedroid_dependency_up",
    "1 when a dependency answered the last health probe, 0 when it did not.",
    ["dependency"],
    multiprocess_mode="mostrecent",
)


_request_series: dict[tuple[str, str, int], Histogram] = {}


def observe_request(endpoint: str, method: str, status: int, seconds: float) -> None:
    """Record one answered request (its series is looked up once per route, method and status;
    a method a client made up is "other", so that nobody can mint series)."""
    key = (endpoint, method if method in METHODS else "other", status)  # a made-up method grows nothing
    series = _request_series.get(key)
    if series is None:
        series = _request_series[key] = REQUEST_SECONDS.labels(key[0], key[1], str(status))
    series.observe(seconds)


class RequestCounts:
    """Every metric of `source`, plus `memedroid_http_requests_total` from the request
    histogram's counts."""

    def __init__(self, source: Collector) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        counts = CounterMetricFamily("memedroid_http_requests", REQUESTS_HELP, labels=REQUEST_LABELS)
        for family in self.source.collect():
            yield family
            if family.name == REQUEST_SECONDS_NAME:
                for sample in family.samples:
                    if sample.name.endswith("_count"):
                        counts.add_metric([sample.labels[label] for label in REQUEST_LABELS], sample.value)
        yield counts


def exposition() -> bytes:
    """The text format of every metric: summed over the supervisor's processes when shared."""
    shared = "PROMETHEUS_MULTIPROC_DIR" in os.environ
    source: Collector = MultiProcessCollector(None) if shared else REGISTRY  # type: ignore[no-untyped-call]
    return generate_latest(RequestCounts(source))
