"""What a hostile client tries through the public interface, and the precise answer it gets:
crafted cursors."""

from __future__ import annotations

import base64
import json

from flask.testing import FlaskClient
from helpers import assert_problem, seed
from hypothesis import HealthCheck, given, settings as hypothesis_settings
from hypothesis import strategies as st

from memedroid.settings import Settings

LISTINGS = ("", "&tag=cats", "&author=alice")


def _cursor(values: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def test_crafted_cursors_are_400_on_every_feed(client: FlaskClient, settings: Settings) -> None:
    """Values Python reads and PostgreSQL does not (a week date, an offset past ±15:59, a comma
    for the fraction) and numbers no float holds (a rank of 10^400) used to be 500s with
    tracebacks."""
    seed(settings.database_url, 3, tags=("cats",))
    crafted = {
        "new": [
            ["2024-W01-1", 5],
            ["2024-01-01T00:00:00+23:59", 5],
            ["2024-01-01T00:00:00,5+00:00", 5],
            ["2024-01-01", 5],
            [int("9" * 400), 5],
        ],
        "hot": [["hot", 1, int("1" + "0" * 400), 5], ["hot", 1, 1e308, 5], ["hot", 1, -1, 5], ["hot", 2**70, 0.5, 5]],
        "top": [["top", int("9" * 30), 5], ["top", 1, 2**64]],
    }
    for listing in LISTINGS:
        for sort, cursors in crafted.items():
            for values in cursors:
                response = client.get(f"/api/v1/posts?sort={sort}&cursor={_cursor(values)}{listing}")
                body = assert_problem(response, 400)
                assert body["errors"] == [{"field": "cursor", "message": "is not a cursor this API returned for this listing"}]
    walked = client.get("/api/v1/posts?sort=new&limit=1").get_json()["next_cursor"]  # one the API did issue
    assert client.get(f"/api/v1/posts?sort=new&limit=1&cursor={walked}").status_code == 200


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4),
    max_leaves=8,
)


@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(json_values, max_size=5), sort=st.sampled_from(["new", "hot", "top"]), listing=st.sampled_from(LISTINGS))
def test_no_cursor_is_a_500(client: FlaskClient, values: list[object], sort: str, listing: str) -> None:
    response = client.get(f"/api/v1/posts?sort={sort}&cursor={_cursor(values)}{listing}")
    assert response.status_code in (200, 400, 404), response.get_data(as_text=True)
