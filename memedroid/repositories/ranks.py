"""The ranks repository: hot ranks in two slots, so that a walk keeps its generation's order
(see `sql/migrations/0005_ranked_feeds.sql` and `sql/queries/ranks.sql`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from memedroid.db import Connection
from memedroid.repositories.queries import queries


@dataclass(frozen=True)
class Rerank:
    """A recompute under way: generation + 1 is being written, as of `ranked_at`."""

    generation: int
    ranked_at: datetime


def start(conn: Connection, interval_seconds: float) -> Rerank | None:
    """Begin the next generation when the current one is `interval_seconds` old, else None."""
    row = queries.ranks.start_rerank(conn, interval_seconds=interval_seconds)
    return None if row is None else Rerank(**row)


def rank_batch(conn: Connection, rerank: Rerank, after: tuple[float, int], size: int) -> tuple[int, tuple[float, int] | None]:
    """Rank up to `size` more posts below `after` (rank, id); how many were ranked, and where
    the batch ended (None: nothing left)."""
    row = queries.ranks.rerank_batch(
        conn, generation=rerank.generation, ranked_at=rerank.ranked_at, after_rank=after[0], after_id=after[1], batch_size=size
    )
    end = None if row["last_id"] is None else (row["last_rank"], row["last_id"])
    return int(row["ranked"]), end


def zero_fallen(conn: Connection, rerank: Rerank) -> int:
    """Posts that aged out of the current generation leave the new one too; how many."""
    return int(queries.ranks.zero_fallen(conn, generation=rerank.generation))


def finish(conn: Connection, rerank: Rerank) -> None:
    queries.ranks.finish_rerank(conn, generation=rerank.generation, ranked_at=rerank.ranked_at)


def rank_completed(conn: Connection, media_id: int) -> None:
    """Give the posts of `media_id`, which just completed, their first rank."""
    queries.ranks.rank_completed_posts(conn, media_id=media_id)
