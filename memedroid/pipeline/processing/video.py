"""Video and animations with FFmpeg: probe first, then H.264/AAC MP4 with faststart.

Every FFmpeg and ffprobe run reads local files only (`-protocol_whitelist file`), with the
input format forced from the sniffed type (so a playlist or `concat:` trick is never parsed),
no stdin, in its own process group, killed with its group at the job's deadline. A header
may lie about the duration: the encoder stops one second past the limit, and the output's real
duration is what gets checked.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from memedroid.messages import Fingerprint
from memedroid.pipeline.processing import (
    TOO_MUCH_MEMORY,
    Budget,
    Interrupted,
    JobTimeout,
    Limits,
    MediaError,
    Processed,
    fingerprint,
    readable,
)
from memedroid.sniff import SourceType

VIDEO_CODECS = {
    "h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "mpeg2video", "mpeg1video", "mjpeg", "prores",
    "h263", "theora", "msmpeg4v2", "msmpeg4v3", "wmv2", "gif",
}  # fmt: skip
AUDIO_CODECS = {
    "aac", "mp3", "opus", "vorbis", "ac3", "eac3", "flac", "alac", "mp2",
    "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s32le", "pcm_f32le", "pcm_u8",
}  # fmt: skip
FORMATS = {"mov": "mov", "matroska": "matroska", "avi": "avi", "gif": "gif"}
MAX_SOURCE_SIDE = 8192
FFMPEG = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-protocol_whitelist", "file"]
CRF = "23"
TRUNCATION_RATIO = 0.9  # an output this much shorter than its source means the source is cut
PRESET = "veryfast"
BUSY_SHARE = 0.5  # of one core, over its run: a tool that got this much CPU and did not finish was given a chance
OUT_OF_MEMORY = re.compile(r"Cannot allocate memory|malloc of size \d+ failed")  # FFmpeg stopped by the memory ceiling
# The system refused FFmpeg a write: the disk's fault, never the file's (FFmpeg 5.1 says so,
# "Error writing trailer of …: No space left on device", and still exits 0).
WRITE_FAILED = re.compile(r"No space left on device|Disk quota exceeded|Read-only file system|Input/output error")


@dataclass(frozen=True)
class Probe:
    width: int
    height: int
    duration: float
    video_codec: str
    pix_fmt: str
    rotation: int
    audio_codec: str | None
    audio_channels: int


def process(source: SourceType, raw: Path, work: Path, budget: Budget) -> Processed:
    limits = budget.limits
    probe = probe_file(raw, source.coder, budget)
    passthrough = (
        source.name in ("mp4", "mov")
        and probe.video_codec == "h264"
        and probe.pix_fmt == "yuv420p"
        and max(probe.width, probe.height) <= limits.max_video_side
        and probe.width % 2 == 0
        and probe.height % 2 == 0
        and probe.rotation == 0
        and probe.audio_codec in (None, "aac")
    )
    if passthrough:
        codecs = ["-c", "copy"]
    else:
        downmix = ["-ac", "2"] if probe.audio_channels > 2 else []
        audio = ["-c:a", "aac", "-b:a", "128k", *downmix] if probe.audio_codec else ["-an"]
        codecs = [*_h264(limits.max_video_side), *audio]
    return _encode("video", source.coder, raw, ["-map", "0:v:0", "-map", "0:a:0?", *codecs], work, budget, probe, passthrough)


def animated(clip: Path, work: Path, budget: Budget) -> Processed:
    """An animated GIF as a silent H.264 MP4 (clients loop it) plus a poster."""
    probe = probe_file(clip, "gif", budget)
    options = ["-map", "0:v:0", *_h264(budget.limits.max_video_side), "-an"]
    return _encode("animated", "gif", clip, options, work, budget, probe)


def _h264(max_side: int) -> list[str]:
    return ["-c:v", "libx264", "-preset", PRESET, "-crf", CRF, "-pix_fmt", "yuv420p", "-vf", _fit(max_side, even=True)]


def _fit(side: int, even: bool = False) -> str:
    """Scale down (never up) to fit a `side`×`side` box, keeping the aspect ratio."""
    scale = f"scale=w='min(iw,{side})':h='min(ih,{side})':force_original_aspect_ratio=decrease"
    return scale + (":force_divisible_by=2" if even else "")


def _encode(
    kind: str, demuxer: str, source: Path, options: list[str], work: Path, budget: Budget, probe: Probe,
    passthrough: bool = False,
) -> Processed:  # fmt: skip
    """Write the MP4 (at most a second past the duration limit, whatever the header claims) and
    the frames to fingerprint, check its real duration and that all of the source made it, and
    take a poster frame from it. (A poster taken in the same pass costs more: every frame then
    goes to a second scaler; the fingerprint frames are selected before theirs.)"""
    limits = budget.limits
    output, thumbnail = work / "rendition.mp4", work / "thumbnail.jpg"
    turned = probe.rotation in (90, 270)
    frames = _Frames(probe.height if turned else probe.width, probe.width if turned else probe.height, probe.duration)
    raw = _run(
        [*FFMPEG, "-f", FORMATS[demuxer], "-i", str(source), *options,
         "-map_metadata", "-1", "-map_chapters", "-1", "-sn", "-dn", "-t", str(limits.max_video_seconds + 1),
         "-movflags", "+faststart", "-f", "mp4", "-y", str(output), *frames.output],
        budget, source,
    )  # fmt: skip
    result = _read_back(output, budget)
    if result.duration < probe.duration * TRUNCATION_RATIO - 0.5:
        raise MediaError(f"the file is truncated: only {result.duration:.1f} s of {probe.duration:.1f} s could be read")
    _run(
        [*FFMPEG, "-ss", f"{min(1.0, result.duration / 3):.3f}", "-f", "mov", "-i", str(output),
         "-frames:v", "1", "-vf", _fit(limits.thumbnail_side), "-q:v", "3", "-f", "image2", "-y", str(thumbnail)],
        budget, output,
    )  # fmt: skip
    if not thumbnail.exists() or thumbnail.stat().st_size == 0:
        raise MediaError("could not extract a thumbnail frame")
    return Processed(
        kind, "video/mp4", result.width, result.height, output, thumbnail,
        duration_s=round(result.duration, 3), variants={"passthrough": passthrough},
        fingerprints=frames.fingerprints(raw),
    )  # fmt: skip


def _read_back(output: Path, budget: Budget) -> Probe:
    """What FFmpeg wrote, read back: if our own rendition cannot be read, something went wrong
    in the writing (the disk, the tool), not in the source, so it is another attempt's job and
    no verdict on the file."""
    try:
        return probe_file(output, "mov", budget)
    except MediaError as exc:
        raise Interrupted(f"the rendition could not be read back ({exc})") from None


def fingerprints(clip: Path, width: int, height: int, duration: float, budget: Budget) -> list[Fingerprint]:
    """An MP4 rendition's fingerprints (for `memedroid rehash`): one FFmpeg run."""
    frames = _Frames(width, height, duration)
    return frames.fingerprints(_run([*FFMPEG, "-f", "mov", "-i", str(clip), *frames.output], budget, clip))


@dataclass(frozen=True)
class _Frames:
    """The frames a clip is hashed at, fingerprint.CLIP_FRAMES of its duration, as an extra
    FFmpeg output that writes them to standard output as grey pixels. Added to the encoding
    run, it costs a select filter on frames already decoded (bench/README.md measures it)."""

    width: int
    height: int
    duration: float

    @property
    def size(self) -> tuple[int, int]:
        return fingerprint.fit(self.width, self.height)

    @property
    def output(self) -> list[str]:
        size = self.size
        times = [f"{self.duration * at:.3f}" for at in fingerprint.CLIP_FRAMES]
        first_at = "+".join(f"gte(t,{at})*lt(prev_t,{at})" for at in times)  # the first frame at or after each time
        return ["-map", "0:v:0", "-vf", f"select='{first_at}',scale={size[0]}:{size[1]},format=gray",
                "-fps_mode", "passthrough", "-an", "-f", "rawvideo", "pipe:1"]  # fmt: skip

    def fingerprints(self, raw: bytes) -> list[Fingerprint]:
        width, height = self.size
        count = len(raw) // (width * height)
        grey = np.frombuffer(raw, dtype=np.uint8)[: count * width * height].reshape(count, height, width)
        return [found for n in range(count) for found in fingerprint.of_pixels(grey[n], frame=n)]


def probe_file(path: Path, demuxer: str, budget: Budget) -> Probe:
    """Streams and duration via ffprobe, checked against the allow-lists and limits."""
    limits = budget.limits
    out = _run(
        ["ffprobe", "-v", "error", "-protocol_whitelist", "file", "-f", FORMATS[demuxer],
         "-show_format", "-show_streams", "-of", "json", str(path)],
        budget, path,
    )  # fmt: skip
    try:
        info: dict[str, Any] = json.loads(out or b"{}")
    except json.JSONDecodeError:
        raise MediaError("not a valid video: unreadable stream information") from None
    streams = info.get("streams") or []
    videos = [s for s in streams if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")]
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    if not videos:
        if audios:
            raise MediaError("the file has no video stream: audio-only files are not accepted")
        raise MediaError("not a valid video: no video stream found")
    video = videos[0]
    codec = str(video.get("codec_name", "unknown"))
    if codec not in VIDEO_CODECS:
        raise MediaError(f"unsupported video codec: {codec}")
    audio_codec = str(audios[0].get("codec_name", "unknown")) if audios else None
    if audio_codec is not None and audio_codec not in AUDIO_CODECS:
        raise MediaError(f"unsupported audio codec: {audio_codec}")
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    if not (0 < width <= MAX_SOURCE_SIDE and 0 < height <= MAX_SOURCE_SIDE):
        raise MediaError(f"unsupported video size {width}x{height} (at most {MAX_SOURCE_SIDE} px per side)")
    duration = _duration(info.get("format", {}), video)
    if duration > limits.max_video_seconds:
        raise MediaError(f"video longer than {limits.max_video_seconds} s ({duration:.0f} s)")
    _check_work(width, height, duration, video, demuxer, limits)
    channels = int(audios[0].get("channels") or 0) if audios else 0
    return Probe(width, height, duration, codec, str(video.get("pix_fmt", "")), _rotation(video), audio_codec, channels)


def _check_work(width: int, height: int, duration: float, video: dict[str, Any], demuxer: str, limits: Limits) -> None:
    """Refuse, before anything decodes, a video whose frames are too many or hold too many
    pixels in all: within every other limit, 170 s of 5792×5792 at 60 fps cost a worker three
    timeouts (15 minutes). (A GIF's frames are bounded by its header check; its frame rate is
    whatever its delays say.)"""
    rate = _number(video.get("avg_frame_rate")) or _number(video.get("r_frame_rate"))
    if demuxer != "gif" and rate > limits.max_video_fps:
        raise MediaError(f"the video has too many frames per second: {rate:.0f} (at most {limits.max_video_fps})")
    frames = max(_number(video.get("nb_frames")), rate * duration)
    pixels = width * height * frames
    if pixels > limits.max_video_pixels:
        raise MediaError(
            f"the video is too much to process: {frames:.0f} frames of {width}×{height} pixels "
            f"(at most {_count(limits.max_video_pixels)} pixels in all)"
        )


def _count(n: float) -> str:
    return f"{n / 1e9:g} billion" if n >= 1e9 else f"{n / 1e6:g} million"


def _duration(fmt: dict[str, Any], video: dict[str, Any]) -> float:
    """The longest of what the headers claim and what the frame count says (an MP4's sample
    table holds every frame, whatever its duration fields were made to claim)."""
    claimed = max(_number(fmt.get("duration")), _number(video.get("duration")))
    rate = _number(video.get("avg_frame_rate"))
    counted = _number(video.get("nb_frames")) / rate if rate else 0.0
    if claimed <= 0:
        raise MediaError("not a valid video: its duration cannot be read")
    return max(claimed, counted)


def _number(value: Any) -> float:
    """A positive number from ffprobe's output ("2.040000", "7500", "25/1"); 0 for anything else."""
    try:
        return max(0.0, float(Fraction(str(value)))) if value else 0.0
    except (ValueError, ZeroDivisionError, OverflowError):
        return 0.0


def _rotation(video: dict[str, Any]) -> int:
    for side_data in video.get("side_data_list") or []:
        if "rotation" in side_data:
            return int(float(side_data["rotation"])) % 360
    return int(float((video.get("tags") or {}).get("rotate", 0))) % 360


def _cpu_seconds(pid: int) -> float:
    """CPU time a running process (all its threads) has used, from /proc (0 when unknown)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def _run(args: list[str], budget: Budget, subject: Path) -> bytes:
    """Run a tool in its own process group; kill the whole group at the deadline (or when
    the worker is interrupted). The tool inherits the worker's memory ceiling. A failure is a
    `MediaError` with the tool's last words; a tool killed by a signal is `Interrupted`; a write
    the system refused is an `OSError` (the disk's fault). A tool that reaches the deadline
    having had the CPU for most of its time is a verdict on the file (another attempt would
    only time out again); one starved of CPU is a `JobTimeout`, tried again."""
    started = time.monotonic()
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, process_group=0)
    budget.tool_started(process.pid)
    try:
        out, err = process.communicate(timeout=budget.remaining())
    except subprocess.TimeoutExpired:
        elapsed = time.monotonic() - started
        if _cpu_seconds(process.pid) >= BUSY_SHARE * elapsed:  # it had the CPU, and the file was still too much
            raise MediaError(f"the file takes too long to process: stopped after {elapsed:.0f} s of work") from None
        raise JobTimeout(f"{args[0]} ran past the job timeout") from None
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
        budget.tool_started(0)
    if process.returncode < 0:
        raise Interrupted(f"{args[0]} stopped unexpectedly ({signal.Signals(-process.returncode).name})")
    said = err.decode("utf-8", "replace")
    last = readable(next((line for line in reversed(said.splitlines()) if line.strip()), ""), str(subject), str(subject.parent))
    if WRITE_FAILED.search(said):  # whatever the exit status
        raise OSError(errno.ENOSPC if "No space" in said else errno.EIO, f"{args[0]} could not write its output: {last}")
    if process.returncode != 0:
        if OUT_OF_MEMORY.search(said):
            raise MediaError(TOO_MUCH_MEMORY)
        what = "video" if args[0] == "ffprobe" else "media"
        raise MediaError(f"not a valid {what}: {last}")
    return out
