"""The moderation service: roles, removing and restoring posts and comments, bans, reports and
their queue, and the moderation log every action writes to in the same transaction.

A removal takes effect everywhere at once through the listings' `listed` column and the
O(1) cache version bump: Redis's pages at once, each worker's local tier within
FEED_LOCAL_SECONDS. A ban revokes the account's sessions in its transaction; with
`hide_content` it removes the account's posts and comments too, which lifting the ban (by a
moderator, or the janitor once it runs out) restores.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from memedroid.cache import FeedCache
from memedroid.db import Connection, Database
from memedroid.errors import Conflict, Forbidden, NotFound, ValidationError
from memedroid.messages import Fingerprint
from memedroid.repositories import comments, hashes, media, moderation, posts, reports, sessions
from memedroid.repositories.counters import Counted, Counters
from memedroid.repositories.moderation import MODERATORS, Account
from memedroid.repositories.reports import Group
from memedroid.repositories.users import Viewer
from memedroid.services import cursors, quarantine
from memedroid.services.comments import Comments
from memedroid.services.feeds import name_reposts
from memedroid.settings import Settings
from memedroid.storage import Storage, open_storage

log = logging.getLogger(__name__)

Target = tuple[str, int]  # ("post" | "comment", its id)
RESOLUTIONS = ("dismiss", "remove", "mark_nsfw", "ban_author", "ban_media")
NOTES_SHOWN = 3  # notes of a queue entry, the latest (`notes` pages the others)
ENDED = "the ban ran out"


@dataclass(frozen=True)
class Ban:
    reason: str = ""  # a resolution's note gives it
    until: datetime | None = None  # None: for good
    hide_content: bool = False  # remove the account's posts and comments while it lasts


@dataclass(frozen=True)
class Moderation:
    db: Database
    cache: FeedCache
    threads: Comments  # comment counts and thread pages
    storage: Storage  # a removed post's files leave the public area (services/quarantine.py)
    media_url: str
    reposts: bool  # show `repost_of` on the posts in the queue

    @classmethod
    def build(cls, db: Database, settings: Settings) -> Moderation:
        """One with caches of its own (the command line's, the janitor's)."""
        cache = FeedCache.from_settings(settings)
        threads = Comments(db, cache, Counters(cache.cache))
        return cls(db, cache, threads, open_storage(settings), settings.media_url, settings.shows_reposts)

    def grant_role(self, username: str, role: str, admin: Viewer | None = None) -> dict[str, Any]:
        """Give `username` a role (logged; None is the command line). An admin may not change
        their own (409): there would be nobody to undo it."""
        moderator_id = None if admin is None else admin.id
        with self.db.transaction() as conn:
            if admin is not None and _account(conn, username).id == admin.id:
                raise Conflict("you may not change your own role")
            account = moderation.set_role(conn, username, role)
            if account is None:
                raise NotFound(f"no user named {username!r}")
            moderation.log(conn, moderator_id, f"grant_{role}", ("user", account["id"]))
        log.info("role granted", extra={"event": "role_granted", "user_id": account["id"], "role": role})
        return account

    def change(self, target: Target, actor: Viewer, reason: str, remove: bool) -> None:
        """Remove a post or a comment for everyone but its author and moderators, or restore
        it: 404 when there is none, 409 when it is that way already, 403 beyond `actor`'s
        powers (`_may`)."""
        with self.db.transaction() as conn:
            counted = _change(conn, target, actor, reason, remove)
        self._changed(counted, feeds=target[0] == "post")

    def mark_nsfw(self, post_id: int, actor: Viewer, reason: str, nsfw: bool) -> None:
        """Mark a post NSFW (listed only for readers who opted in), or not: 404 when there is
        none, 409 when it is so already, 403 beyond `actor`'s powers."""
        with self.db.transaction() as conn:
            _mark_nsfw(conn, post_id, actor, reason, nsfw)
        self.cache.invalidate()

    def ban_media(self, post_id: int, actor: Viewer, reason: str) -> None:
        """Put a post's media on the banned list (its bytes, and its pictures for the near
        ones) and remove every post that shows it: 404 for no post, 409 when it is banned,
        403 beyond `actor`'s powers."""
        with self.db.transaction() as conn:
            _ban_media(conn, post_id, actor, reason)
        self._changed({}, feeds=True)

    def ban_file(self, sha256: bytes, fingerprints: list[Fingerprint], reason: str) -> int:
        """Put a file on the banned list (the command line's), and remove the posts showing
        these bytes if any; 409 when its bytes are on it."""
        with self.db.transaction() as conn:
            banned_id = hashes.ban(conn, sha256, fingerprints, reason)
            if banned_id is None:
                raise Conflict("this file is banned already")
            if (media_id := hashes.media_of(conn, sha256)) is not None:
                _remove_banned(conn, media_id, reason)
            moderation.log(conn, None, "ban_media", ("media", banned_id), reason)
        self._changed({}, feeds=True)
        return banned_id

    def ban(self, username: str, actor: Viewer | None, ban: Ban) -> None:
        """Ban an account: its sessions end at once, and with `hide_content` its posts and
        comments leave every listing."""
        with self.db.transaction() as conn:
            counted = _ban(conn, _account(conn, username), actor, ban)
        self._changed(counted, feeds=ban.hide_content)

    def unban(self, username: str, actor: Viewer, reason: str) -> None:
        """Lift a ban in force, and restore what it hid (403 for another moderator's ban, but
        to an admin)."""
        with self.db.transaction() as conn:
            account = _account(conn, username)
            if not account.banned:
                raise Conflict(f"{account.username} is not banned")
            _may(conn, actor, ("user", account.id), undoes="ban_user")
            counted = _lift(conn, account.id, actor.id, reason)
        self._changed(counted, feeds=True)

    def lift_ended_bans(self) -> int:
        """Lift the bans that ran out (the janitor's round); how many."""
        counted: dict[int, Counted] = {}
        with self.db.transaction() as conn:
            ended = moderation.ended_bans(conn)
            for user_id in ended:
                counted |= _lift(conn, user_id, None, ENDED)
        if ended:
            self._changed(counted, feeds=True)
        return len(ended)

    def report(self, reporter_id: int, target: Target, reason: str, note: str) -> dict[str, Any]:
        """File a report on a post or comment anyone can see; 409 for a second open one."""
        kind, target_id = target
        with self.db.transaction() as conn:
            if kind == "post" and posts.status(conn, target_id) != "completed":
                raise NotFound(f"no post {target_id}")
            if kind == "comment" and (
                not (comment := comments.get(conn, target_id)).shown or posts.status(conn, comment.post_id) != "completed"
            ):
                raise NotFound(f"comment {target_id} was deleted or removed, or its post is not listed")
            report_id = reports.file(conn, reporter_id, target, reason, note)
            if report_id is None:
                raise Conflict(f"you have an open report on {kind} {target_id} already")
        return {"id": report_id, "target": {"type": kind, "id": target_id}, "reason": reason, "note": note}

    def queue(self, resolved: bool, cursor: str | None, limit: int) -> dict[str, Any]:
        """The reports grouped by target, oldest first, each with the target as moderators see
        it (null when it is gone)."""
        after = 0 if cursor is None else cursors.decode(cursor, cursors.after_id)
        with self.db.transaction() as conn:
            found = reports.groups(conn, resolved, after, limit + 1, NOTES_SHOWN)
            page = found[:limit]
            posted = posts.by_ids(conn, [g.target_id for g in page if g.target_type == "post"])
            commented = comments.by_ids(conn, [g.target_id for g in page if g.target_type == "comment"])

        def content(group: Group) -> dict[str, Any] | None:
            if group.target_type == "post":
                post = posted.get(group.target_id)
                if post is None:
                    return None
                item = post.to_json(self.media_url, self.reposts)
                name_reposts(None, [item], Viewer(role="moderator"))
                return item
            comment = commented.get(group.target_id)
            return None if comment is None else comment.to_json(insider=True)

        items = [{**_group(group), "content": content(group)} for group in page]
        return {"items": items, "next_cursor": cursors.next_cursor(found, limit, lambda group: group.first_id)}

    def notes(self, target: Target, resolved: bool, cursor: str | None, limit: int) -> dict[str, Any]:
        """The notes of a target's open (or resolved) reports, newest first: those the queue
        does not show."""
        before = cursors.MAX_ID if cursor is None else cursors.decode(cursor, cursors.after_id)
        with self.db.transaction() as conn:
            found = reports.notes(conn, target, resolved, before, limit + 1)
        return {"items": found[:limit], "next_cursor": cursors.next_cursor(found, limit, lambda row: row["id"])}

    def resolve(self, target: Target, actor: Viewer, action: str, note: str, ban: Ban = Ban()) -> None:
        """Resolve every open report on a target with one action, in one transaction:
        `dismiss` them, `remove` the target, `mark_nsfw` or `ban_media` (a post), or
        `ban_author` (for `ban`'s time, content kept unless it says); 404 when none is open.
        The note is the action's reason."""
        kind, target_id = target
        counted: dict[int, Counted] = {}
        assert actor.id is not None  # a signed-in moderator
        with self.db.transaction() as conn:
            if not reports.resolve(conn, target, actor.id, action):
                raise NotFound(f"no open reports on {kind} {target_id}")
            moderation.log(conn, actor.id, f"resolve_{action}", target, note)
            reason = note or f"reported {kind}"
            if action == "remove":
                counted = _change(conn, target, actor, reason, remove=True)
            elif action == "mark_nsfw":
                if kind != "post":
                    raise ValidationError({"action": "only posts are marked NSFW"})
                _mark_nsfw(conn, target_id, actor, reason, nsfw=True)
            elif action == "ban_media":
                if kind != "post":
                    raise ValidationError({"action": "only a post's media is banned"})
                _ban_media(conn, target_id, actor, reason)
            elif action == "ban_author":
                author = _account(conn, _author(conn, target))
                counted = _ban(conn, author, actor, dataclasses.replace(ban, reason=reason))
        self._changed(counted, feeds=action != "dismiss")

    def log_page(self, cursor: str | None, limit: int, moderators: bool) -> dict[str, Any]:
        """The moderation log, newest first; the moderator's name only for `moderators`."""
        before = cursors.MAX_ID if cursor is None else cursors.decode(cursor, _log_cursor)
        with self.db.transaction() as conn:
            rows = moderation.entries(conn, before, limit + 1, public=not moderators)
        items = [_entry(row, moderators) for row in rows[:limit]]
        return {"items": items, "next_cursor": cursors.next_cursor(rows, limit, lambda row: row["id"])}

    def _changed(self, counted: dict[int, Counted], feeds: bool) -> None:
        """After content came or went: the posts' comment counts mirrored and their threads
        dropped; with `feeds` (posts came or went), their files moved and every cached page
        dropped."""
        for post_id, count in counted.items():
            self.threads.changed(post_id, count)
        if feeds:
            quarantine.settle(self.db, self.storage)
            self.cache.invalidate()


def _may(conn: Connection, actor: Viewer | None, target: Target, undoes: str | None = None) -> None:
    """What only an admin may do (403 for a moderator): act on what a moderator or an admin
    wrote (or on their account), and undo another moderator's action (`undoes`, the action
    undone; one the command line did counts as another's). The command line (None) may do
    anything."""
    if actor is None or actor.role == "admin":
        return
    if moderation.author_role(conn, target) in MODERATORS:
        raise Forbidden(f"only an admin may act on a moderator's or an admin's {target[0]}")
    if undoes is not None:
        done, by = moderation.did(conn, undoes, target)
        if done and by != actor.id:
            raise Forbidden("only an admin may undo another moderator's action")


def _change(conn: Connection, target: Target, actor: Viewer | None, reason: str, remove: bool) -> dict[int, Counted]:
    """Remove or restore a post or a comment (404, 409, 403), logged; a comment's new count."""
    kind, target_id = target
    action = f"{'remove' if remove else 'restore'}_{kind}"
    counted: dict[int, Counted] = {}
    if kind == "post" and posts.status(conn, target_id) is None:
        raise NotFound(f"no post {target_id}")
    _may(conn, actor, target, undoes=None if remove else f"remove_{kind}")
    moderator_id = None if actor is None else actor.id
    if kind == "post":
        if not remove and hashes.media_banned(conn, target_id):
            raise Conflict(f"the media of post {target_id} is banned: it cannot be restored")
        done = posts.remove(conn, target_id, reason) if remove else posts.restore(conn, target_id)
    else:
        post_id = comments.get(conn, target_id).post_id
        count = comments.remove(conn, target_id, reason) if remove else comments.restore(conn, target_id)
        counted, done = ({} if count is None else {post_id: count}), count is not None
    if not done:
        raise Conflict(f"{kind} {target_id} is {'removed already' if remove else 'not removed'}")
    moderation.log(conn, moderator_id, action, target, reason)
    log.info("content moderated", extra={"event": action, f"{kind}_id": target_id, "moderator_id": moderator_id})
    return counted


def _mark_nsfw(conn: Connection, post_id: int, actor: Viewer, reason: str, nsfw: bool) -> None:
    """Mark a post NSFW or not (404, 409, 403), logged."""
    if posts.status(conn, post_id) is None:
        raise NotFound(f"no post {post_id}")
    _may(conn, actor, ("post", post_id), undoes=None if nsfw else "mark_nsfw")
    if not posts.set_nsfw(conn, post_id, nsfw):
        raise Conflict(f"post {post_id} is {'marked NSFW already' if nsfw else 'not marked NSFW'}")
    moderation.log(conn, actor.id, "mark_nsfw" if nsfw else "unmark_nsfw", ("post", post_id), reason)


def _ban_media(conn: Connection, post_id: int, actor: Viewer, reason: str) -> None:
    """Ban a post's media and remove the posts showing it (404, 409, 403), logged."""
    post = posts.get(conn, post_id)
    _may(conn, actor, ("post", post_id))
    if not post.completed:
        raise Conflict(f"post {post_id} has no processed media to ban")
    banned_id = hashes.ban_media(conn, post.media_id, reason)
    if banned_id is None:
        raise Conflict(f"the media of post {post_id} is banned already")
    _remove_banned(conn, post.media_id, reason)
    moderation.log(conn, actor.id, "ban_media", ("media", banned_id), reason)


def _remove_banned(conn: Connection, media_id: int, reason: str) -> None:
    """Remove the posts showing a banned media, and have its files deleted (they go even when
    every post of it was removed already)."""
    posts.remove_showing(conn, media_id, f"{hashes.BANNED}: {reason}")
    media.unsettle(conn, media_id)


def _ban(conn: Connection, account: Account, actor: Viewer | None, ban: Ban) -> dict[int, Counted]:
    """Ban an account (409 for a moderator, or one banned already), logged; the comment
    counts that changed."""
    if account.role in MODERATORS:
        raise Conflict(f"{account.username} is a {account.role}: grant them the role 'user' first")
    if account.banned:
        raise Conflict(f"{account.username} is banned already")
    moderation.ban(conn, account.id, ban.reason, ban.until)
    sessions.revoke_all(conn, account.id)
    counted = {}
    if ban.hide_content:
        posts.remove_authored(conn, account.id, ban.reason)
        counted = comments.remove_authored(conn, account.id, ban.reason)
    moderator_id = None if actor is None else actor.id
    moderation.log(conn, moderator_id, "ban_user", ("user", account.id), ban.reason)
    log.info("user banned", extra={"event": "user_banned", "user_id": account.id, "moderator_id": moderator_id})
    return counted


def _author(conn: Connection, target: Target) -> str:
    kind, target_id = target
    return (posts.get(conn, target_id) if kind == "post" else comments.get(conn, target_id)).author_username


def _account(conn: Connection, username: str) -> Account:
    account = moderation.account(conn, username)
    if account is None:
        raise NotFound(f"no user named {username!r}")
    return account


def _lift(conn: Connection, user_id: int, moderator_id: int | None, reason: str) -> dict[int, Counted]:
    """Lift an account's ban and restore what it hid; the comment counts that changed."""
    moderation.unban(conn, user_id)
    posts.restore_authored(conn, user_id)
    counted = comments.restore_authored(conn, user_id)
    moderation.log(conn, moderator_id, "unban_user", ("user", user_id), reason)
    log.info("ban lifted", extra={"event": "user_unbanned", "user_id": user_id, "moderator_id": moderator_id})
    return counted


def _log_cursor(values: list[Any]) -> int:
    (before,) = values
    return cursors.integer(before, 1, cursors.MAX_ID)


def _group(group: Group) -> dict[str, Any]:
    resolution = None
    if group.resolved_at is not None:
        resolution = {"action": group.resolution, "at": group.resolved_at, "by": group.resolved_by}
    return {
        "target": {"type": group.target_type, "id": group.target_id},
        "report_count": group.report_count,
        "reasons": group.reasons,
        "note_count": group.note_count,
        "notes": group.notes,
        "first_reported_at": group.first_reported_at,
        "last_reported_at": group.last_reported_at,
        "resolution": resolution,
    }


def _entry(row: dict[str, Any], moderators: bool) -> dict[str, Any]:
    entry = {
        "id": row["id"],
        "action": row["action"],
        "target": {"type": row["target_type"], "id": row["target_id"]},
        "reason": row["reason"],
        "created_at": row["created_at"],
    }
    return {**entry, "moderator": row["moderator"]} if moderators else entry
