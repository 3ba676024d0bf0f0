"""What a media worker and the finalizer have in common: a spawned process of the pipeline
with its settings, the pipeline's channels, its slot, a small pool, the job queue and storage."""

from __future__ import annotations

from memedroid.db import Database
from memedroid.services.jobs import JobQueue
from memedroid.settings import Settings
from memedroid.storage import open_storage
from memedroid.transport import Pipeline, Slot


class PipelineProcess:
    def __init__(self, settings: Settings, pipeline: Pipeline, slot: Slot) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.slot = slot
        self.db = Database(settings.replace(db_pool_size=2))
        self.jobs = JobQueue(self.db, pipeline.jobs)
        self.storage = open_storage(settings).ensure()
        self.stopping = False
