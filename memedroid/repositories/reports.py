"""The reports repository: reports on posts and comments, and the queue that groups them
(see `sql/queries/reports.sql`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from memedroid.db import Connection
from memedroid.repositories.queries import queries

REASONS = ("spam", "nsfw", "harassment", "illegal", "copyright", "other")  # as reports.reason's CHECK


@dataclass(frozen=True)
class Group:
    """The reports on one target: all the open ones, or those one resolution resolved."""

    target_type: str
    target_id: int
    first_id: int  # its oldest report: where the queue's next page starts
    report_count: int
    reasons: list[str]
    note_count: int
    notes: list[str]  # the latest few, newest first
    first_reported_at: datetime
    last_reported_at: datetime
    resolved_at: datetime | None
    resolution: str | None
    resolved_by: str | None


def file(conn: Connection, reporter_id: int, target: tuple[str, int], reason: str, note: str) -> int | None:
    """File a report on `target` (its type and id); its id, or None when the reporter has
    one open on it already."""
    found: int | None = queries.reports.insert_report(
        conn, reporter_id=reporter_id, target_type=target[0], target_id=target[1], reason=reason, note=note
    )
    return found


def groups(conn: Connection, resolved: bool, after_id: int, limit: int, notes_shown: int) -> list[Group]:
    """The queue, oldest first, from after the group whose first report is `after_id`, each
    with its latest `notes_shown` notes."""
    rows = queries.reports.list_report_groups(
        conn, resolved=resolved, after_id=after_id, page_size=limit, notes_shown=notes_shown
    )
    return [Group(**row) for row in rows]


def notes(conn: Connection, target: tuple[str, int], resolved: bool, before_id: int, limit: int) -> list[dict[str, Any]]:
    """The notes of `target`'s open (or resolved) reports (`id`, `reason`, `note`, `created_at`),
    newest first, before the report `before_id`."""
    found = queries.reports.list_report_notes(
        conn, target_type=target[0], target_id=target[1], resolved=resolved, before_id=before_id, page_size=limit
    )
    return list(found)


def resolve(conn: Connection, target: tuple[str, int], moderator_id: int, resolution: str) -> int:
    """Resolve every open report on `target`; how many there were."""
    return int(
        queries.reports.resolve_reports(
            conn, target_type=target[0], target_id=target[1], moderator_id=moderator_id, resolution=resolution
        )
    )
