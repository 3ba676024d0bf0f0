"""Media in an S3-compatible object store (AWS S3, MinIO, R2, Garage, Ceph RGW) through boto3:
STORAGE_URL=s3://bucket/prefix, with S3_ENDPOINT_URL and S3_REGION, and the credentials where
boto3 looks for them (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, a role).

Uploads stream to `raw/.upload-<uuid>` as they arrive (a multipart upload past one part) and
are copied to `raw/<sha256>` once hashed; finished files go to `media/<name>` with their type
and `Cache-Control: immutable`. A store that cannot be reached within seconds is an `OSError`
to the callers, as a full disk is: 503 at upload, a retried job in the pipeline."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from boto3.exceptions import Boto3Error
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from memedroid.settings import Settings
from memedroid.storage.base import IMMUTABLE, MEDIA_TYPES, Storage, StoredUpload, UploadSink, storage_errors

PART_BYTES = 8 * 1024 * 1024  # a multipart upload's parts (S3 wants at least 5 MiB but the last)
TIMEOUTS = Config(connect_timeout=3, read_timeout=20, retries={"max_attempts": 3, "mode": "standard"})


class StoreUnavailable(OSError):
    """The object store refused or did not answer."""


class ObjectSink(UploadSink):
    """An upload streamed to a temporary key: one PUT when it fits in a part, else a multipart
    upload whose parts go as they fill."""

    def __init__(self, store: ObjectStorage, key: str, limit: int) -> None:
        super().__init__(key, limit)
        self.store = store
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []

    def _write(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= PART_BYTES:
            self._part(bytes(self.buffer[:PART_BYTES]))
            del self.buffer[:PART_BYTES]

    def _part(self, chunk: bytes) -> None:
        call = self.store.call
        if self.upload_id is None:
            self.upload_id = call("create_multipart_upload", Key=self.ref)["UploadId"]
        number = len(self.parts) + 1
        sent = call("upload_part", Key=self.ref, UploadId=self.upload_id, PartNumber=number, Body=chunk)
        self.parts.append({"ETag": sent["ETag"], "PartNumber": number})

    def _finish(self) -> None:
        if self.upload_id is None:
            self.store.call("put_object", Key=self.ref, Body=bytes(self.buffer))
            return
        if self.buffer:
            self._part(bytes(self.buffer))
        self.store.call("complete_multipart_upload", Key=self.ref, UploadId=self.upload_id, MultipartUpload={"Parts": self.parts})
        self.upload_id = None  # an object now, no upload in progress

    def discard(self) -> None:
        with suppress(OSError):  # what is left, the janitor's sweep removes (and the bucket's rule, of parts)
            if self.upload_id is not None:
                self.store.call("abort_multipart_upload", Key=self.ref, UploadId=self.upload_id)
                self.upload_id = None
            self.store.call("delete_object", Key=self.ref)


class ObjectStorage(Storage):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.storage_dir / "tmp")
        url = urlsplit(settings.storage_url)
        self.bucket = url.netloc
        self.prefix = url.path.strip("/")
        self.endpoint = settings.s3_endpoint_url or None
        self.region = settings.s3_region
        self._client: Any = None
        self._pid = 0
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        """boto3's client for this process (made after fork, never shared across one)."""
        if self._client is None or self._pid != os.getpid():
            with self._lock:
                if self._client is None or self._pid != os.getpid():
                    self._client = boto3.client("s3", endpoint_url=self.endpoint, region_name=self.region, config=TIMEOUTS)
                    self._pid = os.getpid()
        return self._client

    def call(self, operation: str, **params: Any) -> Any:
        """One request on this bucket; a refusal or silence is a `StoreUnavailable`."""
        try:
            return getattr(self.client, operation)(Bucket=self.bucket, **params)
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable(f"object store: {operation} failed: {exc}") from exc

    def key(self, area: str, name: str = "") -> str:
        return "/".join(part for part in (self.prefix, area, name) if part) + ("/" if not name else "")

    def ensure(self) -> ObjectStorage:
        self.tmp.mkdir(parents=True, exist_ok=True)
        return self

    def writable(self) -> bool:
        try:
            self.call("head_bucket")
        except OSError:
            return False
        return self.tmp.is_dir() and os.access(self.tmp, os.W_OK | os.X_OK)

    def upload_sink(self, limit: int) -> ObjectSink:
        return ObjectSink(self, self.key("raw", f".upload-{uuid.uuid4().hex}"), limit)

    def keep_raw(self, upload: StoredUpload) -> None:
        with storage_errors():
            self.call(
                "copy_object", Key=self.key("raw", upload.sha256.hex()), CopySource={"Bucket": self.bucket, "Key": upload.ref}
            )
        upload.drop()

    def raw_exists(self, sha256_hex: str) -> bool:
        try:
            self.call("head_object", Key=self.key("raw", sha256_hex))
        except StoreUnavailable as exc:
            if _missing(exc):
                return False
            raise
        return True

    def drop_raw(self, sha256_hex: str) -> None:
        self.delete("raw", [sha256_hex])

    def place(self, source: Path, name: str) -> None:
        self._upload(source, "media", name, {})

    def fetch(self, area: str, name: str, folder: Path) -> Path:
        target = folder / Path(name).name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._transfer(self.client.download_file, self.bucket, self.key(area, name), str(target))
        except StoreUnavailable as exc:
            if _missing(exc):
                raise FileNotFoundError(f"no {area}/{name} in the bucket") from None
            raise
        return target

    def put(self, area: str, name: str, source: Path, sha256_hex: str) -> None:
        self._upload(source, area, name, {"Metadata": {"sha256": sha256_hex}})

    def stored_hash(self, area: str, name: str) -> str | None:
        try:
            head = self.call("head_object", Key=self.key(area, name))
        except StoreUnavailable as exc:
            if _missing(exc):
                return None
            raise
        found: str | None = head.get("Metadata", {}).get("sha256")
        return found

    def _upload(self, source: Path, area: str, name: str, extra: dict[str, Any]) -> None:
        """One file, with its type and, a final file, the immutable caching."""
        if area == "media":
            extra = {
                **extra,
                "ContentType": MEDIA_TYPES.get(source.suffix, "application/octet-stream"),
                "CacheControl": IMMUTABLE,
            }
        self._transfer(self.client.upload_file, str(source), self.bucket, self.key(area, name), ExtraArgs=extra)

    def delete(self, area: str, names: list[str]) -> None:
        for start in range(0, len(names), 1000):  # DeleteObjects takes 1,000 keys at a time
            batch = [{"Key": self.key(area, name)} for name in names[start : start + 1000]]
            self.call("delete_objects", Delete={"Objects": batch, "Quiet": True})

    def move(self, names: list[str], source: str, target: str) -> None:
        """A copy (type and caching with it) and the original deleted: a crash in between
        leaves both, and the next move of the same files finds the copy made."""
        for name in names:
            try:
                self.call("copy_object", Key=self.key(target, name), CopySource={"Bucket": self.bucket, "Key": self.key(source, name)})
            except StoreUnavailable as exc:
                if not _missing(exc):
                    raise
        self.delete(source, names)

    def old_files(self, area: str, seconds: float) -> Iterator[str]:
        """Ages by the store's own clock (its `Date` as it lists), as `LastModified` is: a node
        whose clock runs ahead must not take an upload stored a moment ago for an old one."""
        prefix = self.key(area)
        for page in self._pages(prefix):
            cutoff = _answered_at(page) - timedelta(seconds=seconds)
            for found in page.get("Contents", []):
                if found["LastModified"] < cutoff:
                    yield found["Key"][len(prefix) :]

    def area_bytes(self, area: str) -> int:
        return sum(found["Size"] for page in self._pages(self.key(area)) for found in page.get("Contents", []))

    def _pages(self, prefix: str) -> Iterator[dict[str, Any]]:
        token: dict[str, str] = {}
        while True:
            page = self.call("list_objects_v2", Prefix=prefix, **token)
            yield page
            if not page.get("IsTruncated"):
                return
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def _transfer(self, method: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        try:
            method(*args, **kwargs)
        except (Boto3Error, BotoCoreError, ClientError) as exc:
            raise StoreUnavailable(f"object store: transfer failed: {exc}") from exc


def _missing(exc: StoreUnavailable) -> bool:
    cause = exc.__cause__
    return isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


def _answered_at(response: dict[str, Any]) -> datetime:
    """When the store answered, by its clock: its `Date` header, to the second it had begun
    (this node's clock when a store sends none)."""
    date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    return parsedate_to_datetime(date) if date else datetime.now(UTC)
