"""Where a system under test keeps its files, seen from outside it: a folder on the local disk,
or a prefix of a bucket on a real S3 protocol server (moto's). The suites that store files run
on both (`both_stores`); what they see here is listed with boto3, not with the product's code."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import boto3
import pytest

from memedroid.settings import ENV, Settings

PREFIX = "site-a"

# Run a test on each store: the local disk and a bucket (the test takes `store`, or a fixture
# that does, such as `start_system`).
both_stores = pytest.mark.parametrize("store", ["local", "s3"], indirect=True)


@dataclass(frozen=True)
class Store:
    """The settings that put a system's raw uploads and final files in one place."""

    changes: dict[str, str] = field(default_factory=dict)  # Settings fields (none: the local disk)

    @classmethod
    def bucket(cls, endpoint: str, bucket: str) -> Store:
        """A prefix of `bucket` whose final files anyone may read (as a CDN in front would)."""
        public = {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/{PREFIX}/media/*",
        }
        s3(endpoint).put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [public]}))
        media_url = f"{endpoint}/{bucket}/{PREFIX}/media"
        return cls({"storage_url": f"s3://{bucket}/{PREFIX}", "s3_endpoint_url": endpoint, "media_url": media_url})

    @property
    def env(self) -> dict[str, str]:
        return {ENV[name]: value for name, value in self.changes.items()}

    def settings(self, settings: Settings) -> Settings:
        return settings.replace(**self.changes)


def env_of(settings: Settings) -> dict[str, str]:
    """The storage settings of an in-process component, as a started system's environment."""
    return {ENV[name]: str(getattr(settings, name)) for name in ("storage_dir", "storage_url", "s3_endpoint_url")}


@contextmanager
def s3_server() -> Iterator[str]:
    """A real S3 protocol server (moto's, in this process, on a free port) for as long as the
    block runs: its address. Made-up credentials, inherited by every supervisor started."""
    from helpers import free_port
    from moto.server import ThreadedMotoServer

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # moto takes any: boto3 only needs some
        os.environ.setdefault(name, "memedroid-test")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def bucket_keys(endpoint: str, bucket: str) -> dict[str, dict[str, Any]]:
    """Every object of the bucket, by key."""
    return {found["Key"]: found for found in s3(endpoint).list_objects_v2(Bucket=bucket).get("Contents", [])}


def in_bucket(storage_url: str) -> tuple[str, str] | None:
    """The bucket and prefix an `s3://` STORAGE_URL names (None: a folder)."""
    if not storage_url.startswith("s3://"):
        return None
    bucket, _, prefix = storage_url[5:].partition("/")
    return bucket, prefix


def stored_files(env: dict[str, str], area: str) -> list[PurePath]:
    """The files of a storage area (`raw`, `media`; `tmp` is always the local scratch) of a
    system started with `env`: paths on the disk, or keys in the bucket."""
    where = in_bucket(env.get("STORAGE_URL", ""))
    if area == "tmp" or where is None:
        root = Path(env["STORAGE_DIR"]) / area
        return sorted(p for p in root.rglob("*") if p.is_file())
    bucket, prefix = where
    pages = s3(env["S3_ENDPOINT_URL"]).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/{area}/")
    return sorted(PurePath(found["Key"]) for page in pages for found in page.get("Contents", []))


def put_file(env: dict[str, str], area: str, name: str, data: bytes) -> None:
    """Leave a file in a system's store, as a crash or another program would."""
    where = in_bucket(env.get("STORAGE_URL", ""))
    if where is None:
        path = Path(env["STORAGE_DIR"]) / area / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    bucket, prefix = where
    s3(env["S3_ENDPOINT_URL"]).put_object(Bucket=bucket, Key=f"{prefix}/{area}/{name}", Body=data)


def name_in_area(path: PurePath, area: str) -> str:
    """The name the database knows a listed file by, e.g. `ab/cd/abcd….jpg` in `media`."""
    return str(path).rpartition(f"/{area}/")[2]


def read_file(env: dict[str, str], path: PurePath) -> bytes:
    """The bytes of a file `stored_files` listed."""
    if isinstance(path, Path):
        return path.read_bytes()
    bucket, _prefix = in_bucket(env["STORAGE_URL"]) or ("", "")
    return bytes(s3(env["S3_ENDPOINT_URL"]).get_object(Bucket=bucket, Key=str(path))["Body"].read())
