"""Media storage behind one interface (`Storage`): raw uploads waiting for the pipeline, named
by the SHA-256 of their bytes; final files named by content hash (`media/ab/cd/abcd….jpg`);
and the local scratch folders workers process in. Two backends, chosen by STORAGE_URL: a local
(or shared) filesystem (`LocalStorage`, the default) and an S3-compatible object store
(`ObjectStorage`). The pipeline, the janitor and the services do not know which one runs."""

from __future__ import annotations

from memedroid.settings import Settings
from memedroid.storage.base import IMMUTABLE, MEDIA_TYPES, Storage, StoredUpload, UploadSink, free_bytes, storage_errors
from memedroid.storage.local import LocalStorage

__all__ = [
    "IMMUTABLE", "MEDIA_TYPES", "LocalStorage", "Storage", "StoredUpload", "UploadSink", "free_bytes", "open_storage",
    "storage_errors",
]  # fmt: skip


def open_storage(settings: Settings) -> Storage:
    """The storage STORAGE_URL names (nothing is connected until first used)."""
    if settings.storage_url.startswith("s3://"):
        from memedroid.storage.s3 import ObjectStorage  # boto3 loads only where it is used

        return ObjectStorage(settings)
    return LocalStorage(settings.storage_dir)
