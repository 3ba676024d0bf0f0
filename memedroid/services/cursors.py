"""Opaque page cursors: a short JSON list, base64url without padding. What a cursor holds is
its service's business; anything this API did not make is a 400 naming `cursor`."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

from memedroid.errors import ValidationError

T = TypeVar("T")
MAX_ID = 2**63 - 1
MAX_COUNT = 2**31 - 1


def encode(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, read: Callable[[list[Any]], T]) -> T:
    """`read(values)` of the list a cursor holds; `read` raises ValueError (or TypeError,
    IndexError) for values it does not take, and the client gets a 400."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list):
            raise ValueError
        return read(values)
    except (ValueError, TypeError, IndexError, OverflowError, binascii.Error, UnicodeDecodeError):
        invalid()


def invalid() -> NoReturn:
    raise ValidationError({"cursor": "is not a cursor this API returned for this listing"})


def integer(value: Any, low: int, high: int) -> int:
    """`value` when it is an integer (not a bool) in [low, high]; else ValueError."""
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError
    return value


def next_cursor(found: Sequence[T], limit: int, key: Callable[[T], int]) -> str | None:
    """The cursor of the page after one read `limit + 1` rows deep: the key of its last shown
    row, or None when no row is left beyond it."""
    return encode([key(found[limit - 1])]) if len(found) > limit else None


def after_id(values: list[Any]) -> int:
    """The reader of a cursor that holds one id, the last of its page (keyset on ascending id)."""
    (last,) = values
    return integer(last, 0, MAX_ID)
