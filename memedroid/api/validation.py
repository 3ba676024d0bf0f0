"""Request body parsing and field-level validation with messages a client developer can act on."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any, NoReturn

from flask import request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadRequest as WerkzeugBadRequest

from memedroid.errors import BadRequest, UnsupportedMediaType, ValidationError

Check = Callable[[str], "str | None"]


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, keys in the order written, times in ISO 8601 (as orjson writes them for
    the pages served as bytes), and a body nested too deeply to parse is a bad body (400),
    not a crash."""

    sort_keys = False

    @staticmethod
    def default(o: Any) -> Any:
        if isinstance(o, datetime):
            return o.isoformat()
        return DefaultJSONProvider.default(o)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("the JSON is nested too deeply") from None


def json_object() -> dict[str, Any]:
    """The request body as a JSON object, or a 415/400 saying what is wrong with it."""
    if not request.is_json:
        raise UnsupportedMediaType("expected a JSON body with Content-Type: application/json")
    try:
        data = request.get_json()
    except WerkzeugBadRequest:
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


def string_fields(data: dict[str, Any], optional: Collection[str] = (), **checks: Check) -> dict[str, str]:
    """Validate that each named field is a string passing its check (the `optional` ones may
    be left out); return those given.

    Every problem is reported at once, by field name, in one `ValidationError`.
    """
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    for name, check in checks.items():
        value = data.get(name)
        if value is None and name in optional:
            continue
        if value is None:
            errors[name] = "is required"
        elif not isinstance(value, str):
            errors[name] = "must be a string"
        elif (message := text_problem(value) or check(value)) is not None:
            errors[name] = message
        else:
            values[name] = value
    for name in data.keys() - checks.keys():
        errors[name] = "is not a known field"
    if errors:
        raise ValidationError(errors)
    return values


def flag(data: dict[str, Any], name: str, default: bool | None = None) -> bool:
    """A boolean field of a JSON body (`default` when it is left out; required without one),
    or a 400 naming it."""
    value = data.get(name, default)
    if not isinstance(value, bool):
        invalid(name, "must be true or false")
    return value


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as text: PostgreSQL takes no NUL, UTF-8 no lone surrogate
    (JSON's "\\ud800" decodes to one)."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text"
    return None


def reject_nul_in_url() -> None:
    """Before every request: a NUL in the path or the query can reach no valid resource. (The
    raw query string is read: a NUL can only come from `%00` or a NUL byte.)"""
    environ = request.environ
    query = environ.get("QUERY_STRING", "")
    if "\x00" in environ.get("PATH_INFO", "") or "%00" in query or "\x00" in query:
        raise BadRequest("the URL must not contain NUL characters (%00)")


def length(low: int, high: int) -> Check:
    """A check for a string of `low` to `high` characters."""

    def check(value: str) -> str | None:
        if not low <= len(value) <= high:
            return f"must be {low} to {high} characters"
        return None

    return check


def query(known: set[str]) -> dict[str, str]:
    """The query parameters (the first value of each), or a 400 naming those not `known`.
    A request without a query string (the first page of a feed) parses nothing."""
    if not request.environ.get("QUERY_STRING"):
        return {}
    params = request.args.to_dict()
    unknown = params.keys() - known
    if unknown:
        raise ValidationError({name: "is not a known parameter" for name in unknown})
    return params


def query_number(
    name: str, low: float, high: float, default: float, integer: bool = False, params: Mapping[str, str] | None = None
) -> float:
    """A numeric query parameter (of `params`, or the request's) within [low, high], or a 400 naming it."""
    raw = (request.args if params is None else params).get(name)
    if raw is None:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:  # also "¹", which str.isdigit() would let through
        value = low - 1
    if not low <= value <= high:  # also false for NaN
        invalid(name, f"must be {'an integer' if integer else 'a number'} from {low:g} to {high:g}")
    return value


def invalid(name: str, message: str) -> NoReturn:
    raise ValidationError({name: message})
