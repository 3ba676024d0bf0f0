"""A removed post's media leaves the public at once: its files go to quarantine (served by
nobody) while no visible post shows them, come back when it is restored, and are deleted when
the media is banned or the post purged; on the local disk and in a bucket alike."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path, PurePath

import fixtures
import pytest
from helpers import grant
from stores import both_stores
from system import System


def cli(system: System, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "memedroid", *args],
        env={**os.environ, **system.env, "LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def names(files: list[PurePath]) -> set[str]:
    return {file.name for file in files}


@pytest.mark.slow
@both_stores
def test_a_removed_posts_media_is_unreachable_at_once_and_comes_back_with_it(
    start_system: Callable[..., System], tmp_path: Path
) -> None:
    """Removed, a post's rendition and thumbnail answered 200 (immutable for a year) from the
    disk or the bucket, after a media ban too; the author could not take them down either."""
    system = start_system(WORKERS="1").wait_ready()
    alice, bob, mia = system.sign_up("alice"), system.sign_up("bob"), system.sign_up("mia")
    grant(system.database_url, "mia")
    mod = f"{system.url}/api/v1/mod"

    def published(auth: dict[str, str], seed: str) -> dict[str, object]:
        posted = system.upload(auth, fixtures.jpeg(tmp_path, f"{seed}.jpg", seed=seed)).json()
        post = system.wait_done(auth, posted["id"])
        assert post["status"] == "completed", post
        return post

    def served(post: dict[str, object]) -> list[int]:
        media = post["media"]
        assert isinstance(media, dict)
        return [system.get(media[key]).status_code for key in ("url", "thumbnail_url")]

    def act(path: str, **body: object) -> None:
        answer = system.http.post(f"{mod}/{path}", headers=mia, json={"reason": "test", **body}, timeout=30)
        assert answer.status_code == 204, answer.text

    red, blue = published(alice, "red"), published(bob, "blue")
    assert served(red) == [200, 200] and served(blue) == [200, 200]
    public = names(system.files("media"))

    # Removed: unreachable on the next request, in quarantine; restored: back.
    act(f"posts/{red['id']}/remove")
    assert 200 not in served(red) and served(blue) == [200, 200]
    quarantined = names(system.files("quarantine"))
    assert len(quarantined) == 2 and quarantined < public
    assert f"{red['media']['url']}" in cli(system, "quarantined-urls", "--since", "1h").split()  # type: ignore[index]
    act(f"posts/{red['id']}/restore")
    assert served(red) == [200, 200] and system.files("quarantine") == []

    # The author's delete of a removed post keeps it in quarantine, for the moderators; a purge deletes it.
    act(f"posts/{red['id']}/remove")
    assert system.http.delete(f"{system.url}/api/v1/posts/{red['id']}", headers=alice, timeout=30).status_code == 204
    assert 200 not in served(red) and names(system.files("quarantine")) == quarantined
    cli(system, "purge-removed", "--older-than", "0s")
    assert system.files("quarantine") == [] and 200 not in served(red)

    # A ban that hides an account's content hides its files; lifting it brings them back.
    answer = system.http.post(f"{mod}/users/bob/ban", headers=mia, json={"reason": "spam", "hide_content": True}, timeout=30)
    assert answer.status_code == 204, answer.text
    assert 200 not in served(blue) and len(system.files("quarantine")) == 2
    act("users/bob/unban")
    assert served(blue) == [200, 200] and system.files("quarantine") == []

    # The same bytes posted again while their files are in quarantine bring them back.
    green = published(alice, "green")
    act(f"posts/{green['id']}/remove")
    assert 200 not in served(green)
    again = system.upload(system.sign_up("carol"), tmp_path / "green.jpg").json()
    assert again["status"] == "completed" and served(again) == [200, 200] and system.files("quarantine") == []

    # A banned media's files are deleted everywhere at once, and its post cannot come back.
    act(f"posts/{blue['id']}/ban-media")
    assert 200 not in served(blue) and len(system.files("media")) == 2 and system.files("quarantine") == []  # green's
    answer = system.http.post(f"{mod}/posts/{blue['id']}/restore", headers=mia, json={"reason": "oops"}, timeout=30)
    assert answer.status_code == 409 and "banned" in answer.json()["detail"], answer.text
