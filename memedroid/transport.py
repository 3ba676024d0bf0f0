"""The pipeline's transport: what its processes share, built so that no process killed at any
instant can leave it wedged for the others.

`multiprocessing.Queue` cannot promise that: a reader blocked in `get()` holds the queue's
read lock and a writer's feeder thread holds the write lock while it sends, so a `kill -9`
at the wrong moment leaves a lock held forever and every other process waits on it.

Here every channel is a Unix `SOCK_SEQPACKET` socket pair made by the supervisor and passed
to the children it spawns (gunicorn's workers inherit it when they fork). A message is one
`send` and one `recv` system call: the kernel delivers it whole to exactly one reader or not
at all, and there is no lock in user space. A process killed mid-call has either sent (or
taken) its whole message or nothing. The supervisor holds both ends, so a channel outlives
any child that uses it; a message taken by a process that then dies is lost, which the
durable rule allows (the database row is the job, the janitor offers it again).

The channels never change the sockets' file flags (shared by every process holding them):
waits use `poll` and each call passes `MSG_DONTWAIT`.

`Slot` is the other shared thing: a few numbers in shared memory, written by one child and
read by the supervisor, with no lock either (each field is one aligned machine word).
"""

from __future__ import annotations

import array
import ctypes
import enum
import fcntl
import logging
import pickle
import select
import socket
import struct
import termios
import time
from dataclasses import dataclass
from multiprocessing.context import SpawnContext
from typing import Any

from memedroid.messages import Job, Result

log = logging.getLogger(__name__)

# The reader and the writer ends are apart so that nothing is ever sent back the other way.
_SEQPACKET = (socket.AF_UNIX, socket.SOCK_SEQPACKET)
_MAX_MESSAGE = 64 * 1024


class _Channel:
    """Messages of bytes from any number of writers to any number of readers."""

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair(*_SEQPACKET)

    def _send(self, message: bytes, timeout: float | None) -> bool:
        """Send `message` whole; False when the channel stays full for `timeout` seconds
        (0: do not wait; None: wait as long as it takes)."""
        if len(message) > _MAX_MESSAGE:
            raise ValueError(f"a message of {len(message)} bytes is larger than {_MAX_MESSAGE}")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                self._writer.send(message, socket.MSG_DONTWAIT)
                return True
            except BlockingIOError:
                if not _ready(self._writer, select.POLLOUT, deadline):
                    return False

    def _receive(self, timeout: float) -> bytes | None:
        """The next message, or None when none arrives within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self._reader.recv(_MAX_MESSAGE, socket.MSG_DONTWAIT)
            except BlockingIOError:  # nothing there, or another reader was quicker
                if not _ready(self._reader, select.POLLIN, deadline):
                    return None

    def waiting_bytes(self) -> int:
        """Bytes sent and not yet received (for a seqpacket socket, the whole queue)."""
        count = array.array("i", [0])
        fcntl.ioctl(self._reader.fileno(), termios.FIONREAD, count)
        return int(count[0])


def _ready(sock: socket.socket, event: int, deadline: float | None) -> bool:
    """Wait until `sock` may be ready for `event`; False once `deadline` has passed."""
    left = None if deadline is None else deadline - time.monotonic()
    if left is not None and left <= 0:
        return False
    poller = select.poll()
    poller.register(sock, event)
    poller.poll(None if left is None else max(1, int(left * 1000)))
    return True


class JobChannel(_Channel):
    """Jobs ("work on media X now") for the media workers, from HTTP workers, the janitor, the
    finalizer and workers handing a job back. Bounded: an offer beyond `capacity` waiting
    jobs (or beyond what the kernel's socket buffer holds) is refused, never waited for."""

    RECORD = struct.Struct("!q64s")  # media id, request id (at most 64 ASCII characters)

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def offer(self, jobs: list[Job]) -> list[int]:
        """Put jobs on the channel without waiting; return the ids of those that fit."""
        offered: list[int] = []
        for job in jobs:
            record = self.RECORD.pack(job.media_id, (job.request_id or "").encode("ascii", "replace")[:64])
            if self.qsize() >= self.capacity or not self._send(record, timeout=0):
                log.warning(
                    "job queue full; the sweep will enqueue later", extra={"event": "queue_full", "media_id": job.media_id}
                )
                break
            offered.append(job.media_id)
        return offered

    def take(self, timeout: float) -> Job | None:
        """The next job, or None after `timeout` seconds without one."""
        record = self._receive(timeout)
        if record is None:
            return None
        media_id, request_id = self.RECORD.unpack(record)
        return Job(media_id, request_id.rstrip(b"\0").decode("ascii") or None)

    def qsize(self) -> int:
        """Jobs waiting."""
        return self.waiting_bytes() // self.RECORD.size


class ResultChannel(_Channel):
    """What workers made of their jobs, for the finalizer."""

    def put(self, result: Result, timeout: float) -> bool:
        """Hand `result` over, waiting up to `timeout` seconds while the channel is full."""
        return self._send(pickle.dumps(result, pickle.HIGHEST_PROTOCOL), timeout)

    def take(self, timeout: float) -> Result | None:
        message = self._receive(timeout)
        return None if message is None else pickle.loads(message)

    def pending(self) -> bool:
        return self.waiting_bytes() > 0


class _SlotFields(ctypes.Structure):
    _fields_ = [
        ("media_id", ctypes.c_int64),  # the media the child is working on, 0 when idle
        ("lease", ctypes.c_char * 36),  # that job's lease token
        ("started", ctypes.c_double),  # when it started on it (monotonic clock)
        ("tool", ctypes.c_int64),  # process group of the external tool it runs, 0 when none
        ("beat", ctypes.c_double),  # the last time the child showed it was alive and looping
        ("took", ctypes.c_double),  # the last time it took a message from its channel
    ]


@dataclass(frozen=True)
class Held:
    """The job a child held (or holds)."""

    media_id: int
    lease_token: str
    started: float


class Slot:
    """One child's state in shared memory: written by the child, read by the supervisor.

    No lock guards it: each field is written by its child only, as one machine word, and a
    reader that sees a half-updated slot sees a job starting or ending a moment early."""

    def __init__(self, context: SpawnContext) -> None:
        self._fields: Any = context.RawValue(_SlotFields)

    # --- written by the child ---------------------------------------------------------------

    def busy(self, media_id: int, lease_token: str) -> None:
        """The child is about to work on (claim, or finalize) this lease."""
        fields = self._fields
        fields.started = 0.0
        fields.lease = lease_token.encode("ascii")
        fields.media_id = media_id
        fields.started = time.monotonic()

    def tool_started(self, pgid: int) -> None:
        """An external tool runs in process group `pgid` (0: it ended)."""
        self._fields.tool = pgid

    def idle(self) -> None:
        fields = self._fields
        fields.started = 0.0
        fields.media_id = 0
        fields.tool = 0

    def alive(self, took: bool = False) -> None:
        """Heartbeat; `took`: the child just took a message from its channel."""
        now = time.monotonic()
        self._fields.beat = now
        if took:
            self._fields.took = now

    # --- read by the supervisor -------------------------------------------------------------

    def held(self) -> Held | None:
        fields = self._fields
        media_id, started = int(fields.media_id), float(fields.started)
        if not media_id:
            return None
        return Held(media_id, fields.lease.decode("ascii"), started)

    @property
    def tool(self) -> int:
        return int(self._fields.tool)

    @property
    def beat(self) -> float:
        return float(self._fields.beat)

    @property
    def took(self) -> float:
        return float(self._fields.took)

    def reset(self) -> None:
        """Before a child (re)starts on this slot: idle, and alive as of now."""
        self.idle()
        self._fields.beat = self._fields.took = time.monotonic()


class Flag:
    """A yes/no in shared memory, raised by one process and read by another, with no lock."""

    def __init__(self, context: SpawnContext) -> None:
        self._value: Any = context.RawValue(ctypes.c_bool, False)

    def raise_(self) -> None:
        self._value.value = True

    def __bool__(self) -> bool:
        return bool(self._value.value)


class Stall(enum.IntEnum):
    """Why the pipeline is not making progress (NONE: it is)."""

    NONE = 0
    FINALIZER = 1
    WORKERS = 2

    @property
    def reason(self) -> str:
        return _STALL_REASONS[self]


_STALL_REASONS = {
    Stall.NONE: "",
    Stall.FINALIZER: "processed files are waiting but the finalizer is not finalizing them",
    Stall.WORKERS: "jobs are waiting but no idle worker takes them",
}


class PipelineHealth:
    """Whether the pipeline makes progress: judged by the supervisor, read by `/readyz`."""

    def __init__(self, context: SpawnContext) -> None:
        self._stall: Any = context.RawValue(ctypes.c_int32)

    @property
    def stall(self) -> Stall:
        return Stall(self._stall.value)

    @stall.setter
    def stall(self, stall: Stall) -> None:
        self._stall.value = int(stall)


@dataclass(frozen=True)
class Pipeline:
    """Everything the pipeline's processes share, made by the supervisor before its children
    (and handed to each of them at spawn)."""

    jobs: JobChannel
    results: ResultChannel
    health: PipelineHealth

    @classmethod
    def create(cls, context: SpawnContext, job_queue_size: int) -> Pipeline:
        return cls(JobChannel(job_queue_size), ResultChannel(), PipelineHealth(context))
