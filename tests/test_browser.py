"""The web client in a real Chromium against the real supervisor (HTTP, workers, finalizer),
at a phone's viewport and a desktop's: what a person does, from signing up to a moderator
removing what they reported."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import fixtures
import psycopg
import pytest
from browser import VIEWPORTS, Browse, browse_fixture, chromium  # noqa: F401 (chromium: a fixture)
from helpers import PASSWORD, grant, wait_for
from PIL import Image, ImageChops
from playwright.sync_api import Page, expect
from system import System

pytestmark = pytest.mark.slow

ZALGO = "".join(map(chr, (*range(0x0300, 0x0315), *range(0x0342, 0x0353)))) * 4  # combining marks, stacked
XSS = ('<img src=x onerror="window.__xss=1">', '"><script>window.__xss=2</script>', "<svg onload=window.__xss=3>")


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def browse(request: pytest.FixtureRequest, chromium, viewport: str) -> Iterator[Browse]:  # noqa: F811
    yield from browse_fixture(request, chromium, viewport)


@pytest.fixture
def browse_desktop(request: pytest.FixtureRequest, chromium) -> Iterator[Browse]:  # noqa: F811
    yield from browse_fixture(request, chromium, "desktop")


def sign_in(page: Page, username: str) -> None:
    page.goto("/signin")
    page.get_by_label("Username or email").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#account").get_by_role("link", name=f"@{username}")).to_be_visible()


def post_file(page: Page, path: Path, caption: str, tags: str = "") -> None:
    """Fill the upload form and send it; the status line then follows the post."""
    page.goto("/upload")
    page.locator("#file").set_input_files(path)
    page.get_by_label("Caption").fill(caption)
    page.get_by_label("Tags").fill(tags)
    page.get_by_role("button", name="Post it").click()


def watch_progress(page: Page) -> None:
    """Record every value the upload's progress bar shows."""
    page.evaluate(
        """() => { window.__progress = [];
        new MutationObserver(() => window.__progress.push(document.querySelector("progress").value))
          .observe(document.querySelector("progress"), { attributes: true }); }"""
    )


def status_of(page: Page) -> str:
    return str(page.locator(".upload .status").get_attribute("data-status"))


def seed_posts(system: System, folder: Path, count: int, username: str = "bob") -> tuple[dict[str, str], list[int]]:
    """`count` completed posts by `username` through the API: the same bytes, so all but the
    first complete at once (and are flagged as its reposts)."""
    auth = system.sign_up(username)
    image = fixtures.jpeg(folder, "seed.jpg", 300, 200, seed="green")
    ids = [system.upload(auth, image, caption=f"{username} {i}").json()["id"] for i in range(count)]
    assert system.wait_done(auth, ids[0])["status"] == "completed"
    return auth, ids


def test_a_member_posts_scrolls_likes_comments_reports_and_a_moderator_removes(
    start_system, browse: Browse, tmp_path: Path, database_url: str
) -> None:
    system = start_system(WORKERS="1").wait_ready()
    _, bobs = seed_posts(system, tmp_path, 20)
    page = browse(system.url)
    page.on("dialog", lambda dialog: dialog.accept())

    # Register (which signs in).
    page.goto("/")
    page.get_by_role("link", name="Join").click()
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Email").fill("alice@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#account").get_by_role("link", name="@alice")).to_be_visible()

    # Post a JPEG at a phone's upload speed: the bar moves, then the status reaches completed.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    throttle = {"offline": False, "latency": 20, "downloadThroughput": -1}
    cdp.send("Network.emulateNetworkConditions", {**throttle, "uploadThroughput": 500_000})
    post_file(page, fixtures.noisy_jpeg(tmp_path), "my first meme", "cats, funny")
    watch_progress(page)
    expect(page.locator(".upload .status")).to_have_attribute("data-status", "completed", timeout=90_000)
    cdp.send("Network.emulateNetworkConditions", {**throttle, "uploadThroughput": -1})
    expect(page.locator(".upload .status")).to_have_text("Done: your meme is up. See it")
    progress = page.evaluate("window.__progress")
    assert progress[-1] == 100 and any(0 < value < 100 for value in progress), progress
    browse.shot(page, "upload")

    # And an animated GIF.
    post_file(page, fixtures.animated_gif(tmp_path), "it moves")
    expect(page.locator(".upload .status")).to_have_attribute("data-status", "completed", timeout=90_000)

    # The feed (newest first) scrolls past two pages of ten, with no layout shift.
    page.get_by_role("link", name="MemeDroid").click()
    page.get_by_role("link", name="New", exact=True).click()
    expect(page.locator("article.card").first).to_contain_text("it moves")
    expect(page.locator("article.card video").first).to_be_visible()
    browse.shot(page, "feed")
    for _ in range(30):
        if page.get_by_text("You've seen it all.").is_visible():
            break
        page.mouse.wheel(0, 4000)
        page.wait_for_timeout(200)
    expect(page.locator("article.card")).to_have_count(22)
    assert page.evaluate("window.__cls") < 0.05

    # Like the GIF; the server keeps it.
    page.evaluate("scrollTo(0, 0)")
    like = page.locator("article.card").first.locator("button.like")
    like.click()
    expect(like).to_have_attribute("aria-pressed", "true")
    expect(like).to_contain_text("1")
    page.reload()
    expect(page.locator("article.card").first.locator("button.like")).to_have_attribute("aria-pressed", "true")

    # Comment on it and reply to the comment.
    page.locator("article.card").first.get_by_role("link", name="0 comments").click()
    page.get_by_label("Add a comment").fill("first!")
    page.get_by_role("button", name="Comment", exact=True).click()
    comment = page.locator(".thread > .comment").first
    expect(comment).to_contain_text("first!")
    comment.get_by_role("button", name="Reply").click()
    page.get_by_label("Reply to @alice").fill("replying to myself")
    page.locator("form.composer").get_by_role("button", name="Reply").click()
    page.reload()
    expect(page.locator(".thread > .comment .replies .comment")).to_contain_text("replying to myself")
    browse.shot(page, "post")

    # Report one of bob's posts.
    page.goto(f"/p/{bobs[3]}")
    page.get_by_role("button", name="Report").click()
    page.get_by_label("Spam").check()
    page.get_by_role("button", name="Send report").click()
    expect(page.locator("#notice")).to_contain_text("moderators will look at it")

    # Sign out: the signed-out view.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    page.goto(f"/p/{bobs[3]}")
    expect(page.get_by_text("to comment.")).to_be_visible()

    # A moderator removes the reported post from the queue; it is gone for everyone else.
    system.sign_up("carol")
    grant(database_url, "carol")
    moderator = browse(system.url)
    moderator.on("dialog", lambda dialog: dialog.accept("spam, as reported"))
    sign_in(moderator, "carol")
    moderator.get_by_role("link", name="Reports").click()
    group = moderator.locator(f'[data-target="post-{bobs[3]}"]')
    expect(group).to_contain_text("1 report")
    expect(group).not_to_contain_text("null")
    browse.shot(moderator, "moderation")
    group.get_by_role("button", name="Remove post").click()
    expect(group).to_contain_text("Resolved")
    page.goto(f"/p/{bobs[3]}")
    expect(page.get_by_role("alert")).to_contain_text("isn't here")
    page.goto("/new")
    expect(page.locator("article.card").first).to_be_visible()
    assert page.locator(f'[data-post="{bobs[3]}"]').count() == 0


def test_user_text_never_runs_as_script(start_system, browse_desktop: Browse, tmp_path: Path, database_url: str) -> None:
    """Everything a person can write, written as markup, shows as text and runs nothing."""
    system = start_system(WORKERS="1").wait_ready()
    auth, (post_id, removed_id) = seed_posts(system, tmp_path, 2, "mallory")
    http, url = system.http, system.url
    with psycopg.connect(database_url) as conn:  # captions as markup
        for i, post in enumerate((post_id, removed_id)):
            conn.execute("UPDATE posts SET caption = %s WHERE id = %s", (XSS[i], post))
    parent = http.post(f"{url}/api/v1/posts/{post_id}/comments", json={"body": XSS[1]}, headers=auth).json()
    http.post(f"{url}/api/v1/posts/{post_id}/comments", json={"body": XSS[2], "parent_id": parent["id"]}, headers=auth)
    reporter = system.sign_up("rita")
    for post in (post_id, removed_id):
        report = {"reason": "other", "note": XSS[0]}
        assert http.post(f"{url}/api/v1/posts/{post}/reports", json=report, headers=reporter).status_code == 201
    moderator = system.sign_up("mia")
    grant(database_url, "mia")
    removal = http.post(f"{url}/api/v1/mod/posts/{removed_id}/remove", json={"reason": XSS[2]}, headers=moderator)
    assert removal.status_code == 204, removal.text

    page = browse_desktop(url)
    sign_in(page, "mallory")
    checks = {"/new": XSS[0], f"/p/{post_id}": XSS[1], f"/p/{removed_id}": XSS[2]}
    for path, shown in checks.items():
        page.goto(path)
        expect(page.get_by_text(shown).first).to_be_visible()
    sign_in(page, "mia")
    page.goto("/mod")
    expect(page.get_by_text(XSS[0]).first).to_be_visible()
    assert page.evaluate("window.__xss") is None
    assert page.evaluate("window.__violations") == []


def test_refusals_and_failures_are_said_in_words(start_system, browse_desktop: Browse, tmp_path: Path) -> None:
    system = start_system(WORKERS="1", MAX_UPLOAD_BYTES="200000").wait_ready()
    system.sign_up("alice")
    page = browse_desktop(system.url)
    sign_in(page, "alice")
    cases = [
        (fixtures.write(tmp_path, "notes.jpg", b"just some text, not a picture\n" * 20), "can't be posted"),
        (fixtures.noisy_jpeg(tmp_path), "too big"),
        (fixtures.truncated(fixtures.mp4_h264_aac(tmp_path), tmp_path, "cut.mp4"), "Processing failed:"),
    ]
    for path, said in cases:
        post_file(page, path, "")
        expect(page.locator(".upload .status")).to_contain_text(said, timeout=60_000)
        assert status_of(page) in ("error", "failed")
        assert "{" not in page.locator(".upload .status").inner_text()  # words, not JSON


def test_nsfw_is_blurred_until_tapped_and_animations_play_on_screen_only(start_system, browse: Browse, tmp_path: Path) -> None:
    system = start_system(WORKERS="1").wait_ready()
    auth = system.sign_up("alice")
    gif = system.upload(auth, fixtures.animated_gif(tmp_path), caption="moving").json()
    spicy = system.upload(auth, fixtures.jpeg(tmp_path, "spicy.jpg", 300, 200), caption="spicy", nsfw="true").json()
    for post in (gif, spicy):
        assert system.wait_done(auth, post["id"])["status"] == "completed"
    page = browse(system.url)
    sign_in(page, "alice")
    page.goto("/new")
    expect(page.locator("article.card")).to_have_count(1)  # not opted in: no NSFW
    video = page.locator("article.card video")
    wait_for(lambda: not video.evaluate("v => v.paused"), 10, "the on-screen video to play")
    assert video.evaluate("v => v.muted && v.loop && v.playsInline")

    page.goto("/settings")
    page.get_by_label("Show posts marked not safe for work").check()
    expect(page.locator("#notice")).to_contain_text("blurred")
    page.goto("/new")
    frame = page.locator(f'[data-post="{spicy["id"]}"] .frame')
    expect(frame).to_have_class(re.compile(r"\bnsfw\b"))
    expect(frame.locator("img")).to_be_hidden()
    frame.get_by_role("button", name="NSFW: tap to show").click()
    expect(frame.locator("img")).to_be_visible()

    calm = browse(system.url, reduced_motion="reduce")
    calm.goto("/new")
    still = calm.locator(f'[data-post="{gif["id"]}"] video')
    expect(still).to_be_visible()
    calm.wait_for_timeout(1000)
    assert still.evaluate("v => v.paused && v.controls")


def test_empty_offline_and_keyboard_only(start_system, browse: Browse, tmp_path: Path) -> None:
    system = start_system(WORKERS="1").wait_ready()
    page = browse(system.url)
    page.goto("/")
    expect(page.get_by_text("Nothing here yet")).to_be_visible()

    # Every control on the main pages has a name a screen reader can say.
    system.sign_up("alice")
    for path in ("/", "/signin", "/register"):
        page.goto(path)
        page.wait_for_selector("main > *")
        unnamed = page.evaluate(
            """() => [...document.querySelectorAll("main input, main textarea, main select, main button, main a")]
              .filter((c) => c.type !== "file" && !(c.labels?.length || c.getAttribute("aria-label") || c.textContent.trim()))
              .map((c) => c.outerHTML)"""
        )
        assert unnamed == [], (path, unnamed)

    # Sign in with the keyboard alone.
    page.goto("/signin")
    page.keyboard.press("Tab")  # the skip link first
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "login":
            break
    page.keyboard.type("alice")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("#account").get_by_role("link", name="@alice")).to_be_visible()

    # Offline: a page that cannot load says so, and loads once the network is back.
    page.context.set_offline(True)
    page.get_by_role("link", name="New", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("Can't reach MemeDroid")
    page.context.set_offline(False)
    page.get_by_role("button", name="Try again").click()
    expect(page.get_by_text("Nothing here yet")).to_be_visible()


def test_an_anonymous_feed_starts_from_the_page_the_html_carries(start_system, browse: Browse, tmp_path: Path) -> None:
    system = start_system(WORKERS="1").wait_ready()
    seed_posts(system, tmp_path, 12)
    page = browse(system.url)
    asked: list[str] = []
    page.on("request", lambda request: "/api/v1/posts" in request.url and asked.append(request.url))
    page.goto("/new")
    expect(page.locator("#first-page")).to_have_count(0)  # the client took its data
    page.locator(".end").scroll_into_view_if_needed()
    expect(page.locator("article.card")).to_have_count(12)
    assert len(asked) == 1 and "cursor=" in asked[0]  # the first page came with the HTML
    page.get_by_role("link", name="Hot").click()  # moving on asks the API as usual
    page.get_by_role("link", name="New", exact=True).click()
    expect(page.locator("article.card").first).to_be_visible()
    assert any("sort=new" in url and "cursor=" not in url for url in asked)


def same_picture(one: bytes, other: bytes) -> bool:
    """Two screenshots of the same size whose pixels differ by no more than a rasterizer's
    rounding (a rounded corner's antialiasing may differ by one level between two draws)."""
    first, second = (Image.open(io.BytesIO(picture)).convert("RGB") for picture in (one, other))
    return first.size == second.size and max(high for _, high in ImageChops.difference(first, second).getextrema()) <= 16


def test_hostile_addresses_and_text_leave_the_page_whole(start_system, browse: Browse, tmp_path: Path, database_url: str) -> None:
    """A malformed percent-encoding left a blank page (an uncaught URIError); `?next=` with
    another site's address left the member on the sign-in form; a right-to-left override ran
    on past its own text; stacked combining marks drew over the card's header; a long note
    widened the moderators' page."""
    system = start_system(WORKERS="1").wait_ready()
    page = browse(system.url)
    page.goto("/t/%E0%A4%A")
    expect(page.get_by_text("There is no page here")).to_be_visible()

    alice = system.sign_up("alice")
    for elsewhere in ("https://evil.example/", "//evil.example/", "/\\evil.example/"):
        member = browse(system.url)
        member.goto(f"/signin?next={quote(elsewhere, safe='')}")
        member.get_by_label("Username or email").fill("alice")
        member.get_by_label("Password").fill(PASSWORD)
        member.get_by_role("button", name="Sign in").click()
        expect(member).to_have_url(f"{system.url}/")

    image = fixtures.jpeg(tmp_path, "plain.jpg", 300, 200, seed="purple")
    captions = {"plain": "hello", "marks": "h" + ZALGO + "ello", "override": "\u202eolleh"}
    ids = {name: system.upload(alice, image, caption=caption).json()["id"] for name, caption in captions.items()}
    assert system.wait_done(alice, ids["plain"])["status"] == "completed"
    page.goto("/new")
    header = page.locator(f'[data-post="{ids["marks"]}"] > header')
    expect(header).to_be_visible()
    page.evaluate("document.querySelector('header.top').style.position = 'static'")  # the sticky bar, out of the pictures
    page.wait_for_function("[...document.images].every((image) => image.complete)")  # nothing moves between the pictures
    drawn = header.screenshot(animations="disabled")
    page.locator(f'[data-post="{ids["marks"]}"] .caption').evaluate("c => (c.style.visibility = 'hidden')")
    assert same_picture(header.screenshot(animations="disabled"), drawn)  # the caption's marks drew nothing over the header
    caption = page.locator(f'[data-post="{ids["override"]}"] .caption')
    assert caption.evaluate("c => getComputedStyle(c).unicodeBidi") == "plaintext"
    page.goto(f"/p/{ids['override']}")
    expect(page).to_have_title("\u2068\u202eolleh\u2069 · MemeDroid")

    system.sign_up("mia")
    grant(database_url, "mia")
    reported = system.http.post(
        f"{system.url}/api/v1/posts/{ids['plain']}/reports",
        headers=alice,
        json={"reason": "spam", "note": "x" * 1000},
        timeout=30,
    )
    assert reported.status_code == 201, reported.text
    moderator = browse(system.url)
    sign_in(moderator, "mia")
    moderator.goto("/mod")
    expect(moderator.locator(".notes li").first).to_be_visible()
    assert moderator.evaluate("document.documentElement.scrollWidth <= innerWidth")
