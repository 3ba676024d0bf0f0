"""Request body parsing and field-level validation with messages a client developer can act on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import request
from werkzeug.exceptions import BadRequest as WerkzeugBadRequest

from memedroid.errors import BadRequest, UnsupportedMediaType, ValidationError

Check = Callable[[str], "str | None"]


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


def string_fields(data: dict[str, Any], **checks: Check) -> dict[str, str]:
    """Validate that each named field is a string passing its check; return them all.

    Every problem is reported at once, by field name, in one `ValidationError`.
    """
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    for name, check in checks.items():
        value = data.get(name)
        if value is None:
            errors[name] = "is required"
        elif not isinstance(value, str):
            errors[name] = "must be a string"
        elif (message := check(value)) is not None:
            errors[name] = message
        else:
            values[name] = value
    for name in data.keys() - checks.keys():
        errors[name] = "is not a known field"
    if errors:
        raise ValidationError(errors)
    return values


def length(low: int, high: int) -> Check:
    """A check for a string of `low` to `high` characters."""

    def check(value: str) -> str | None:
        if not low <= len(value) <= high:
            return f"must be {low} to {high} characters"
        return None

    return check
