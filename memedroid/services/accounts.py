"""The accounts service: registration, authentication and login sessions."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from uuid import UUID

from memedroid.db import Database
from memedroid.errors import BadRequest, Forbidden, NotFound, Unauthorized
from memedroid.repositories import sessions, users
from memedroid.repositories.users import User, Viewer
from memedroid.services import cursors, passwords
from memedroid.settings import Settings

USERNAME = re.compile(r"[A-Za-z0-9_]{3,30}")
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")
BAD_CREDENTIALS = "invalid login or password"


def username_problem(value: str) -> str | None:
    if not USERNAME.fullmatch(value):
        return "must be 3 to 30 letters, digits or underscores"
    return None


# Names that speak for the service, which a member may not take (an operator may, with
# `memedroid create-user`): these, and whatever reads as them (case, 0 for o, 1 for l, rn for
# m...), and any name with the service's in it.
RESERVED = ("admin", "administrator", "moderator", "mod", "mods", "root", "support", "staff", "system", "official",
            "security", "help", "team", "memedroid")  # fmt: skip
_LOOKS_ALIKE = str.maketrans("0134578", "oleastb")


def skeleton(name: str) -> str:
    """What a name reads as: lower case, digits that pass for letters as those letters, `rn`
    and `vv` as `m` and `w`, `l` and `i` alike, no underscores."""
    folded = name.casefold().translate(_LOOKS_ALIKE).replace("rn", "m").replace("vv", "w")
    return folded.replace("l", "i").replace("_", "")


_RESERVED = frozenset(skeleton(name) for name in RESERVED)


def public_username_problem(value: str) -> str | None:
    """Why a member may not take `value` as their username (see `RESERVED`)."""
    if (found := username_problem(value)) is not None:
        return found
    read = skeleton(value)
    if read in _RESERVED or skeleton("memedroid") in read:
        return "is reserved: it would speak for the service"
    return None


def email_problem(value: str) -> str | None:
    if len(value) > 254 or not EMAIL.fullmatch(value):
        return "must be a valid email address"
    return None


def banned(until: datetime | None, reason: str | None) -> Forbidden:
    """What a banned account is told, at login and on every request with its tokens."""
    when = "" if until is None else f" until {until.isoformat(timespec='seconds')}"
    return Forbidden(f"this account is banned{when}: {reason}")


class Accounts:
    """Owns the account rules; each method is one transaction."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.rounds = settings.bcrypt_rounds
        self.session_seconds = settings.refresh_token_seconds

    def register(self, username: str, email: str, password: str) -> User:
        """Create an account; a taken username or email (in any case) is a 409 `Conflict`."""
        password_hash = passwords.hash_password(password, self.rounds)
        with self.db.transaction() as conn:
            return users.insert(conn, username, email, password_hash)

    def login(self, login: str, password: str) -> tuple[User, UUID]:
        """Check the credentials and open a session. Unknown user and wrong password fail the
        same way, after the same amount of work."""
        with self.db.transaction() as conn:
            user = users.find_by_login(conn, login)
        if not passwords.verify(password, user.password_hash if user else None, self.rounds) or user is None:
            raise Unauthorized(BAD_CREDENTIALS)
        if user.banned:
            raise banned(user.banned_until, user.ban_reason)
        with self.db.transaction() as conn:
            return user, sessions.open_session(conn, user.id, self.session_seconds)

    def viewer(self, session_id: str, user_id: int) -> Viewer | None:
        """Who calls with a token naming this session and `user_id`: None when the token must
        not stand (no such session, revoked, expired); a 403 naming the ban for a banned
        account."""
        with self.db.read() as conn:
            found = sessions.standing(conn, session_id, user_id)
        if found is not None and found.banned:
            raise banned(found.banned_until, found.ban_reason)
        if found is None or not found.open:
            return None
        return Viewer(user_id, found.role, found.show_nsfw, found.blocking)

    def set_show_nsfw(self, user_id: int, show: bool) -> User:
        """Opt in to NSFW posts in listings, or out; the account as its owner sees it."""
        with self.db.transaction() as conn:
            users.set_show_nsfw(conn, user_id, show)
            return users.get(conn, user_id)

    def block(self, blocker_id: int, username: str, blocked: bool) -> None:
        """Block or unblock an account by name (idempotent): the blocker no longer sees its
        posts or comments in any listing."""
        with self.db.transaction() as conn:
            target = users.find(conn, username)
            if target is None:
                raise NotFound(f"no user named {username!r}")
            if blocked and target.id == blocker_id:
                raise BadRequest("you cannot block yourself")
            users.set_block(conn, blocker_id, target.id, blocked)

    def blocks(self, blocker_id: int, cursor: str | None, limit: int) -> dict[str, Any]:
        """The accounts one blocks, in id order."""
        after = 0 if cursor is None else cursors.decode(cursor, cursors.after_id)
        with self.db.transaction() as conn:
            found = users.blocks(conn, blocker_id, after, limit + 1)
        return {"items": found[:limit], "next_cursor": cursors.next_cursor(found, limit, lambda row: row["id"])}

    def limit_key(self, login: str) -> str:
        """What login attempts for `login` are counted under: the account it names, whether
        by username or by email; the name itself when it names none."""
        with self.db.transaction() as conn:
            user = users.find_by_login(conn, login)
        return f"user:{user.id}" if user else f"login:{login.lower()}"

    def logout(self, session_id: str) -> None:
        with self.db.transaction() as conn:
            sessions.revoke(conn, session_id)

    def get(self, user_id: int) -> User:
        with self.db.transaction() as conn:
            return users.get(conn, user_id)

    def profile(self, username: str) -> users.Profile:
        with self.db.transaction() as conn:
            return users.profile(conn, username)
