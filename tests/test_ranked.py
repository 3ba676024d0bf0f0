"""Ranked feeds: hot (Lemmy's formula, stored, recomputed by the janitor in batches) and top
(likes within a window), their walks, their indexes and their cache."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable

import psycopg
import pytest
from flask.testing import FlaskClient
from helpers import EVERYONE, assert_problem, bearer, rerank, seed, signed_up, walk

from memedroid.api.app import create_app
from memedroid.repositories.queries import queries
from memedroid.services.feeds import WINDOWS
from memedroid.settings import Settings

# (hours old, likes), oldest first (as ids go): past the week (rank 0 whatever the likes),
# older with many likes, fresh and liked, fresh and not.
FIXTURE = [(400, 7), (169, 100000), (150, 90000), (100, 10), (48, 5000), (30, 3), (24, 1000), (10, 200), (6, 2), (3, 50)]
FIXTURE += [(1, 5), (0.5, 0)]


def reference_hot(likes: int, hours: float) -> float:
    """The issue's formula, in Python."""
    return math.log(max(2, likes + 2)) / (hours + 2) ** 1.8 if 0 <= hours < 168 else 0.0


def current_ranks(settings: Settings) -> dict[int, float]:
    """post id -> hot rank in the current generation."""
    with psycopg.connect(settings.database_url) as conn:
        return dict(
            conn.execute("SELECT r.post_id, r.hot FROM post_ranks r, hot_ranking h WHERE r.slot = h.generation % 2").fetchall()
        )


def test_hot_order_and_ranks_match_the_reference_formula(client: FlaskClient, settings: Settings) -> None:
    ids = seed(settings.database_url, hours=[h for h, _ in FIXTURE], likes=[n for _, n in FIXTURE])
    rerank(settings)
    with psycopg.connect(settings.database_url) as conn:
        ages = dict(
            conn.execute(
                "SELECT p.id, extract(epoch FROM h.ranked_at - p.created_at)::float8 / 3600 FROM posts p, hot_ranking h"
            ).fetchall()
        )
    likes = dict(zip(ids, [n for _, n in FIXTURE], strict=True))
    expected = {post_id: reference_hot(likes[post_id], ages[post_id]) for post_id in ids}
    stored = current_ranks(settings)
    for post_id in ids:
        assert stored[post_id] == pytest.approx(expected[post_id], rel=1e-12, abs=1e-15), post_id
    assert [stored[post_id] for post_id in ids[:2]] == [0.0, 0.0]
    order = sorted(ids, key=lambda post_id: (expected[post_id], post_id), reverse=True)
    assert walk(client, "&sort=hot", limit=4) == order
    assert order[-2:] == [ids[1], ids[0]]  # rank 0: after every ranked post, newest first


def test_a_post_from_the_future_ranks_zero(settings: Settings) -> None:
    [post_id] = seed(settings.database_url, hours=[-1], likes=[500])
    rerank(settings)
    assert current_ranks(settings)[post_id] == 0.0


def test_recompute_touches_only_the_recent_set_and_aged_posts_fall_out(settings: Settings) -> None:
    seed(settings.database_url, 300)  # a month old: rank 0, never looked at again
    recent = seed(settings.database_url, hours=[1 + n for n in range(20)], author="bob")
    assert (rerank(settings)["hot_ranked"], rerank(settings)["hot_ranked"]) == (20, 20)
    with psycopg.connect(settings.database_url) as conn:
        conn.execute("UPDATE posts SET created_at = now() - interval '8 days' WHERE id = %s", (recent[0],))
    first = rerank(settings)  # still ranked in the current generation: ranked once more, to 0
    assert (first["hot_ranked"], first.get("hot_fallen", 0)) == (20, 0)
    second = rerank(settings)  # 0 in the current generation: skipped, and 0 in the other slot now
    assert (second["hot_ranked"], second["hot_fallen"]) == (19, 1)
    third = rerank(settings)
    assert (third["hot_ranked"], third.get("hot_fallen", 0)) == (19, 0)
    with psycopg.connect(settings.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM post_ranks WHERE hot > 0").fetchone()[0] == 19 * 2


def test_a_walk_through_hot_repeats_and_skips_nothing_while_likes_arrive_and_ranks_are_recomputed(
    client: FlaskClient, settings: Settings
) -> None:
    rng = random.Random(12)
    ids = seed(
        settings.database_url,
        hours=[rng.uniform(0, 160) for _ in range(260)],
        likes=[int(rng.paretovariate(1.2)) - 1 for _ in range(260)],
    )
    rerank(settings)
    before = sorted(current_ranks(settings).items(), key=lambda item: (item[1], item[0]), reverse=True)
    fans = [bearer(signed_up(client, f"fan{n}")["access_token"]) for n in range(5)]
    pages = [0]

    def meanwhile() -> None:
        pages[0] += 1
        for auth in fans:  # likes pile onto posts deep in the ranking: enough to move them up
            for post_id in rng.sample(ids, 5):
                assert client.put(f"/api/v1/posts/{post_id}/like", headers=auth).status_code == 204
        with psycopg.connect(settings.database_url) as conn:
            conn.execute("UPDATE posts SET like_count = like_count + 5000 WHERE id = ANY(%s)", (rng.sample(ids, 10),))
        if pages[0] == 5:
            assert rerank(settings)["hot_ranked"] > 0

    seen = walk(client, "&sort=hot", limit=20, between_pages=meanwhile)
    assert pages[0] >= 10
    assert len(seen) == len(set(seen)) == len(ids)
    assert seen == [post_id for post_id, _ in before]  # the order the walk started in, whole
    assert current_ranks(settings) != dict(before)  # ...which is not today's any more


def test_a_walk_whose_ranking_was_rewritten_resumes_after_its_post(client: FlaskClient, settings: Settings) -> None:
    ids = seed(settings.database_url, hours=[30 - n for n in range(30)])
    rerank(settings)
    page = client.get("/api/v1/posts?sort=hot&limit=10").get_json()
    rerank(settings)
    rerank(settings)  # the walk's generation is gone now
    rest = walk(client, "&sort=hot", limit=10, cursor=page["next_cursor"])
    assert [item["id"] for item in page["items"]] + rest == ids[::-1]  # no likes: newest is hottest


def test_top_windows_and_ties(client: FlaskClient, settings: Settings) -> None:
    # (hours old, likes), oldest first; a tie on likes, broken newest first.
    posts = [(24 * 500, 7), (24 * 200, 50000), (24 * 20, 5000), (30, 500), (3, 5), (2, 50), (1, 5)]
    ids = seed(settings.database_url, hours=[h for h, _ in posts], likes=[n for _, n in posts])
    g, f, e, d, c, b, a = ids
    assert walk(client, "&sort=top", limit=2) == [b, a, c]  # a day by default
    assert walk(client, "&sort=top&window=day", limit=2) == [b, a, c]
    assert walk(client, "&sort=top&window=week", limit=2) == [d, b, a, c]
    assert walk(client, "&sort=top&window=month", limit=2) == [e, d, b, a, c]
    assert walk(client, "&sort=top&window=year", limit=2) == [f, e, d, b, a, c]
    assert walk(client, "&sort=top&window=all", limit=2) == [f, e, d, b, g, a, c]


def test_ranked_feeds_by_tag_and_author(client: FlaskClient, settings: Settings) -> None:
    cats = seed(settings.database_url, author="alice", tags=("cats",), hours=[1, 2, 3], likes=[0, 100, 10])
    dogs = seed(settings.database_url, author="bob", tags=("dogs",), hours=[1, 2], likes=[30, 0])
    both = seed(settings.database_url, author="carol", tags=("cats", "dogs"), hours=[5], likes=[1000])
    rerank(settings)
    hot = current_ranks(settings)

    def by_hot(posts: list[int]) -> list[int]:
        return sorted(posts, key=lambda post_id: (hot[post_id], post_id), reverse=True)

    assert walk(client, "&sort=hot&tag=cats", limit=2) == by_hot(cats + both)
    assert walk(client, "&sort=hot&tag=dogs", limit=2) == by_hot(dogs + both)
    assert walk(client, "&sort=hot&author=alice", limit=2) == by_hot(cats)
    assert walk(client, "&sort=top&tag=cats", limit=2) == [both[0], cats[1], cats[2], cats[0]]
    assert walk(client, "&sort=top&author=bob", limit=1) == dogs
    assert_problem(client.get("/api/v1/posts?sort=hot&author=nobody"), 404)


def test_a_completed_post_is_ranked_at_once_and_a_like_reaches_a_cached_top_page(client: FlaskClient, settings: Settings) -> None:
    [pending] = seed(settings.database_url, status="pending", hours=[1])
    assert current_ranks(settings)[pending] == 0.0
    with psycopg.connect(settings.database_url) as conn:
        conn.execute("UPDATE media SET status = 'completed' FROM posts p WHERE p.media_id = media.id AND p.id = %s", (pending,))
        [media_id] = conn.execute("SELECT media_id FROM posts WHERE id = %s", (pending,)).fetchone()
        queries.ranks.rank_completed_posts(conn, media_id=media_id)
        assert conn.execute("SELECT min(hot) FROM post_ranks WHERE post_id = %s", (pending,)).fetchone()[0] > 0
    [other] = seed(settings.database_url, hours=[2], likes=[1])
    assert walk(client, "&sort=top") == [other, pending]  # cached now
    auth = [bearer(signed_up(client, f"fan{n}")["access_token"]) for n in range(2)]
    for fan in auth:
        assert client.put(f"/api/v1/posts/{pending}/like", headers=fan).status_code == 204
    assert walk(client, "&sort=top") == [pending, other]
    assert walk(client, "&sort=hot") == [pending, other]  # fresh posts: ranked when they completed


@pytest.mark.parametrize(
    "query",
    [
        "sort=best",
        "sort=",
        "window=week",
        "sort=hot&window=week",
        "sort=top&window=decade",
        "sort=hot&cursor=WyIyMDIwLTAxLTAxIiwxXQ",  # a cursor of `new`
        "sort=top&cursor=WyJob3QiLDEsMC41LDFd",  # a cursor of `hot`
        "sort=hot&cursor=WyJob3QiLDEsLTEsMV0",  # a negative rank
        "sort=hot&cursor=WyJob3QiLDEsMC41XQ",  # one value short
        "sort=top&cursor=WyJ0b3AiLHRydWUsMV0",  # likes: true
    ],
)
def test_bad_ranked_parameters_are_400(client: FlaskClient, query: str) -> None:
    assert_problem(client.get(f"/api/v1/posts?{query}"), 400)


def test_every_ranked_query_is_one_statement_whatever_the_page_size(settings: Settings, statements: Callable[[], int]) -> None:
    seed(settings.database_url, tags=("cats",), hours=[n / 2 for n in range(120)])
    client = create_app(settings.replace(redis_url="")).test_client()  # every page from PostgreSQL
    for sort in ("hot", *(f"top&window={window}" for window in WINDOWS)):
        for scope in ("", "&tag=cats", "&author=alice"):
            counts = set()
            for limit in (5, 100):
                before = statements()
                assert client.get(f"/api/v1/posts?sort={sort}{scope}&limit={limit}").status_code == 200
                counts.add(statements() - before)
            assert counts == {1}, (sort, scope)


def test_ranked_queries_use_indexes(settings: Settings) -> None:
    rng = random.Random(3)
    seed(settings.database_url, 20_000, tags=("cats",))
    seed(settings.database_url, author="bob", tags=("dogs",), hours=[rng.uniform(0, 200) for _ in range(2000)])
    hot = {"generation": 0, "before_rank": float("inf"), "before_id": 2**63 - 1}
    top = {"before_likes": 2**31 - 1, "before_id": 2**63 - 1}
    plans = {
        "list_hot": hot,
        "list_hot_by_tag": {**hot, "tag": "dogs"},
        "list_hot_by_author": {**hot, "author": "bob"},
    }
    big = ("posts", "media", "post_tags", "post_ranks", "post_tag_ranks")

    def scans(plan: str) -> bool:
        return any(f"Seq Scan on {table} " in plan for table in big)

    with psycopg.connect(settings.database_url) as conn:
        conn.execute("ANALYZE")
        for name, params in plans.items():
            sql = getattr(queries.feed, name).sql
            plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN {sql}", {**params, "page_size": 20, **EVERYONE}))
            assert not scans(plan), (name, plan)
            assert "Index" in plan and "Sort" not in plan.split("SubPlan")[0], (name, plan)
        # Every window of every top query: the likes' index range, or the window's and then the likes.
        for days in WINDOWS.values():
            since = conn.execute("SELECT now() - make_interval(days => %s)", (days,)).fetchone()[0] if days else "-infinity"
            for name, params in (
                ("list_top", {}),
                ("list_top_by_tag", {"tag": "dogs"}),
                ("list_top_by_author", {"author": "bob"}),
            ):
                args = {**top, "since": since, "page_size": 20, **EVERYONE, **params}
                plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN {getattr(queries.feed, name).sql}", args))
                assert not scans(plan) and "Index" in plan, (name, days, plan)
        # The recompute walks the ranked posts (hot > 0) through the index, by an index scan
        # ("using") or a bitmap ("on") as the sampled statistics fall; how it joins a batch of
        # 1,000 to the rest is the planner's call by table size (bench/feed.py).
        for name in ("rerank_batch", "zero_fallen"):
            sql = getattr(queries.ranks, name).sql
            args = {"generation": 1, "ranked_at": "now", "after_rank": float("inf"), "after_id": 2**63 - 1, "batch_size": 1000}
            plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN {sql}", args))
            assert re.search(r"(using|on) post_ranks_hot_idx ", plan), (name, plan)
