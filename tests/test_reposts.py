"""Repost detection: perceptual hashes computed by the real pipeline, searched in PostgreSQL
through the band indexes; fixtures generated here."""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any

import fixtures
import psycopg
import pytest
from system import System

from memedroid.db import Database
from memedroid.messages import Fingerprint
from memedroid.repositories import hashes
from memedroid.repositories.queries import queries
from memedroid.settings import Settings

pytestmark = pytest.mark.slow

COPIES = ("jpeg40", "half", "watermark", "crop5", "caption")


def published(system: System, auth: dict[str, str], *paths: Path) -> list[dict[str, Any]]:
    """Upload `paths` together and wait until each is processed."""
    ids = []
    for path in paths:
        response = system.upload(auth, path)
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    return [system.wait_done(auth, post_id) for post_id in ids]


def origin(post: dict[str, Any]) -> int | None:
    assert post["status"] == "completed", post
    return post["repost_of"]["post_id"] if post["repost_of"] else None


def test_altered_copies_of_an_image_a_clip_and_a_gif_are_flagged_with_their_original(start_system, tmp_path: Path) -> None:
    system = start_system(WORKERS="2").wait_ready()
    alice, bob = system.sign_up("alice"), system.sign_up("bob")
    picture = fixtures.meme(tmp_path, seed=1)
    video = fixtures.clip(tmp_path, "testsrc2", "clip.mp4")
    gif = fixtures.clip(tmp_path, "mandelbrot", "zoom.gif", seconds=1.5, size="96x72")
    originals = published(system, alice, picture, video, gif)
    assert [origin(post) for post in originals] == [None, None, None]

    copies = published(system, bob, fixtures.altered(picture, tmp_path, COPIES[0]))  # completed before the rest start
    copies += published(
        system, bob,
        *(fixtures.altered(picture, tmp_path, how) for how in COPIES[1:]),
        fixtures.reencoded(video, tmp_path, "smaller.mp4"),
        fixtures.reencoded(gif, tmp_path, "zoom.mp4", scale="iw:ih"),
        fixtures.meme(tmp_path, seed=2),
        fixtures.clip(tmp_path, "testsrc", "other.mp4"),
    )  # fmt: skip
    image, clip, animated = (post["id"] for post in originals)
    expected = [image] * len(COPIES) + [clip, animated, None, None]
    assert [origin(post) for post in copies] == expected
    for post in copies[: len(COPIES)]:
        assert post["repost_of"]["author"] == "alice" and 0 <= post["repost_of"]["distance"] <= 14

    again = published(system, bob, picture)[0]  # the same bytes: the instant path, distance 0
    assert again["repost_of"] == {"post_id": image, "author": "alice", "distance": 0}
    similar = system.http.get(f"{system.url}/api/v1/posts/{image}/similar").json()["items"]
    assert {item["id"] for item in similar} == {again["id"], *(post["id"] for post in copies[: len(COPIES)])}
    assert [(item["distance"], item["id"]) for item in similar] == sorted((item["distance"], item["id"]) for item in similar)
    assert all(item["repost_of"]["post_id"] == image for item in similar)
    feed = system.http.get(f"{system.url}/api/v1/posts", params={"limit": 100}).json()["items"]
    assert {item["id"]: origin(item) for item in feed}[copies[0]["id"]] == image

    assert system.http.delete(f"{system.url}/api/v1/posts/{image}", headers=alice).status_code == 204
    assert origin(system.post(bob, copies[1]["id"])) == copies[0]["id"]  # now the earliest copy still shown
    assert system.http.get(f"{system.url}/api/v1/posts/{image}/similar").status_code == 404


def test_reject_mode_fails_a_near_duplicate_and_refuses_the_same_bytes(start_system, tmp_path: Path) -> None:
    system = start_system(WORKERS="1", REPOSTS="reject").wait_ready()
    alice, bob = system.sign_up("alice"), system.sign_up("bob")
    picture = fixtures.meme(tmp_path, seed=3)
    [first] = published(system, alice, picture)
    [copy, other] = published(system, bob, fixtures.altered(picture, tmp_path, "half"), fixtures.meme(tmp_path, seed=4))
    assert (copy["status"], copy["error"]) == ("failed", f"a repost of post {first['id']}")
    assert (other["status"], other["repost_of"]) == ("completed", None)
    same = system.upload(bob, picture, name="again.png")
    assert same.status_code == 422 and same.json()["detail"] == f"a repost of post {first['id']}"


def test_allow_mode_shows_no_repost_of(start_system, tmp_path: Path) -> None:
    system = start_system(WORKERS="1", REPOSTS="allow").wait_ready()
    alice = system.sign_up()
    picture = fixtures.meme(tmp_path, seed=5)
    published(system, alice, picture)
    [copy] = published(system, alice, fixtures.altered(picture, tmp_path, "jpeg40"))
    assert copy["repost_of"] is None
    assert len(system.http.get(f"{system.url}/api/v1/posts/{copy['id']}/similar").json()["items"]) == 1


def test_rehash_hashes_what_was_processed_before_and_resumes_where_it_stopped(start_system, tmp_path: Path) -> None:
    system = start_system(WORKERS="2").wait_ready()
    alice = system.sign_up()
    picture = fixtures.meme(tmp_path, seed=6)
    video = fixtures.clip(tmp_path, "testsrc2", "clip.mp4")
    posts = published(system, alice, picture, video)
    posts += published(
        system, alice, fixtures.altered(picture, tmp_path, "crop5"), fixtures.reencoded(video, tmp_path, "small.mp4")
    )
    assert [origin(post) for post in posts] == [None, None, posts[0]["id"], posts[1]["id"]]
    system.stop()
    url = system.env["DATABASE_URL"]
    with psycopg.connect(url) as conn:  # as before repost detection existed
        conn.execute("DELETE FROM media_hashes")
        conn.execute("DELETE FROM similar_media")
    settings = Settings.from_env({**system.env, "DB_POOL_SIZE": "2"})

    class Stop(Exception):
        pass

    def stop_after_first_batch(done: Any) -> None:
        raise Stop

    from memedroid.pipeline import rehash
    from memedroid.storage import LocalStorage

    db = Database(settings)
    try:
        rehash.BATCH = 1
        with pytest.raises(Stop):
            rehash.rehash(settings, db, LocalStorage(settings.storage_dir), missing_only=True, progress=stop_after_first_batch)
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(DISTINCT media_id) FROM media_hashes").fetchone() == (1,)
        done = rehash.rehash(settings, db, LocalStorage(settings.storage_dir), missing_only=True)
    finally:
        rehash.BATCH = 100
        db.close()
    assert (done.hashed, done.linked, done.skipped) == (3, 2, [])  # the first one was not done again
    system = start_system(WORKERS="1").wait_ready()  # the same database and storage
    shown = [system.http.get(f"{system.url}/api/v1/posts/{post['id']}").json() for post in posts]
    assert [origin(post) for post in shown] == [None, None, posts[0]["id"], posts[1]["id"]]


def test_the_search_reads_the_band_indexes_only(settings: Settings) -> None:
    rng = random.Random(1)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO media (sha256, status, source_type, source_bytes) "
            "SELECT sha256(n::text::bytea), 'pending', 'png', 1 FROM generate_series(1, 20000) AS n"
        )
        with conn.cursor().copy("COPY media_hashes (media_id, frame, trimmed, phash, dhash) FROM STDIN") as copy:
            for media_id in range(1, 20001):
                copy.write_row([media_id, 0, False, rng.getrandbits(64) - 2**63, rng.getrandbits(64) - 2**63])
        conn.execute("VACUUM ANALYZE media_hashes")
        probe = conn.execute("SELECT phash, dhash FROM media_hashes WHERE media_id = 77").fetchone()
        params = {"phash": probe[0], "dhash": probe[1], "max_phash": 14, "max_dhash": 16, "page_size": 50}
        plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN {queries.hashes.list_near.sql}", params))
        assert "Seq Scan" not in plan, plan
        for band in range(4):
            assert f"Index Only Scan using media_hashes_band{band}_idx" in plan, plan
        with psycopg.connect(settings.database_url, row_factory=psycopg.rows.dict_row) as reader:
            found = hashes.near(reader, [Fingerprint(0, False, *probe)], hashes.Radius(14, 16))
        assert found == {77: 0}


def test_a_hash_within_the_radius_is_found_however_its_differences_fall_in_the_bands(settings: Settings) -> None:
    """Stored hashes differ from their own query in 14 bits (a match) or 15 (none), spread over
    the four 16-bit bands in every possible way: the band search must agree with the distance."""
    rng = random.Random(3)
    spreads = [spread for spread in itertools.product(range(16), repeat=4) if sum(spread) in (14, 15)]
    queried = [rng.getrandbits(64) for _ in spreads]
    stored = [query ^ _flipped(spread, rng) for query, spread in zip(queried, spreads, strict=True)]
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO media (sha256, status, source_type, source_bytes) "
            "SELECT sha256(n::text::bytea), 'pending', 'png', 1 FROM generate_series(1, %s) AS n",
            (len(spreads),),
        )
        with conn.cursor().copy("COPY media_hashes (media_id, frame, trimmed, phash, dhash) FROM STDIN") as copy:
            for media_id, value in enumerate(stored, start=1):
                copy.write_row([media_id, 0, False, _signed(value), 0])
    with psycopg.connect(settings.database_url, row_factory=psycopg.rows.dict_row) as conn:
        for media_id, (query, spread) in enumerate(zip(queried, spreads, strict=True), start=1):
            found = hashes.near(conn, [Fingerprint(0, False, _signed(query), 0)], hashes.Radius(14, 0))
            assert found.get(media_id) == (14 if sum(spread) == 14 else None), spread


def _flipped(spread: tuple[int, ...], rng: random.Random) -> int:
    """A mask flipping spread[n] random bits of band n (band 0 the highest 16 bits)."""
    mask = 0
    for band, count in enumerate(spread):
        for bit in rng.sample(range(16), count):
            mask |= 1 << (16 * (3 - band) + bit)
    return mask


def _signed(value: int) -> int:
    return value - 2**64 if value >= 2**63 else value
