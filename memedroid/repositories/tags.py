"""The tags repository: autocomplete and trending tags with their completed posts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from memedroid.db import Connection
from memedroid.repositories.queries import queries


@dataclass(frozen=True)
class TagCount:
    name: str
    post_count: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def by_prefix(conn: Connection, prefix: str, limit: int) -> list[TagCount]:
    """Tags starting with `prefix` (taken literally), that completed posts carry."""
    pattern = prefix.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "%"
    return [TagCount(**row) for row in queries.tags.list_tags_by_prefix(conn, pattern=pattern, max_count=limit)]


def trending(conn: Connection, hours: int, limit: int) -> list[TagCount]:
    """The tags with the most completed posts in the last `hours`."""
    return [TagCount(**row) for row in queries.tags.list_trending_tags(conn, hours=hours, max_count=limit)]
