"""`/api/v1/tags`: autocomplete and trending tags."""

from __future__ import annotations

import re

from flask import Blueprint, request

from memedroid.api import PREFIX, services
from memedroid.api.validation import query_number
from memedroid.errors import ValidationError

bp = Blueprint("tags", __name__, url_prefix=f"{PREFIX}/tags")

_PREFIX = re.compile(r"[a-z0-9_]{0,32}")


def _limit() -> int:
    return int(query_number("limit", 1, 50, default=10, integer=True))


@bp.get("")
def autocomplete() -> dict[str, object]:
    """Tags starting with `prefix`, with how many completed posts carry each."""
    prefix = request.args.get("prefix", "").strip().lower().lstrip("#")
    if not _PREFIX.fullmatch(prefix):
        raise ValidationError({"prefix": "must be up to 32 of a-z, 0-9 and _"})
    return {"items": services().feeds.tags(prefix, _limit())}


@bp.get("/trending")
def trending() -> dict[str, object]:
    """The tags with the most completed posts in the last 24 hours."""
    return {"items": services().feeds.trending(_limit())}
