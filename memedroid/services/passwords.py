"""Password rules, hashing with bcrypt, and a verification that takes as long for unknown users.

A new password must not be one of the most common ones (NIST SP 800-63B, 5.1.1.2): the 30,000
passwords of zxcvbn's list (from breach corpora), compared without case, nor name the service.
"""

from __future__ import annotations

import functools

import bcrypt

MIN_CHARACTERS = 8
MAX_BYTES = 72  # bcrypt reads 72 bytes at most; bcrypt 5 raises beyond
SERVICE = "memedroid"


def problem(password: str) -> str | None:
    """Why `password` cannot be chosen, or None when it can."""
    if (found := _shape_problem(password)) is not None:
        return found
    folded = password.casefold()
    if folded in _common() or SERVICE in folded:
        return "is too easy to guess (one of the most common passwords, or the service's name): choose another"
    return None


@functools.cache
def _common() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # about 3 MB of lists: loaded when first needed

    return frozenset(FREQUENCY_LISTS["passwords"])


def _shape_problem(password: str) -> str | None:
    """Why `password` can be no password at all (its length, its bytes)."""
    if len(password) < MIN_CHARACTERS:
        return f"must be at least {MIN_CHARACTERS} characters"
    size = len(password.encode("utf-8"))
    if size > MAX_BYTES:
        return f"must be at most {MAX_BYTES} bytes in UTF-8 (this one is {size})"
    if "\x00" in password:
        return "must not contain NUL characters"
    return None


def hash_password(password: str, rounds: int) -> str:
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds)).decode("ascii")


def verify(password: str, password_hash: str | None, rounds: int) -> bool:
    """True when `password` matches. With no hash (unknown user) a dummy hash of the same cost
    is checked, so that both failures take the same time and reveal nothing."""
    usable = _shape_problem(password) is None  # an account made before a rule may still sign in
    candidate = password.encode("utf-8") if usable else b"-" * MIN_CHARACTERS
    expected = (password_hash if password_hash is not None else _dummy_hash(rounds)).encode("ascii")
    try:
        matches = bcrypt.checkpw(candidate, expected)
    except ValueError:  # a corrupt stored hash: never a match
        return False
    return matches and usable and password_hash is not None


@functools.lru_cache(maxsize=4)
def _dummy_hash(rounds: int) -> str:
    return hash_password("not-a-real-password", rounds)
