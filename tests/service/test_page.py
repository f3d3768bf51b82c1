"""The web page in real headless Chromium (Debian's, driven by Playwright) against the app run by
uvicorn on a real library of talking videos: search, click a hit, the player's time and the
highlighted transcript line, the token prompt, and an upload through the form that gets indexed."""

from __future__ import annotations

import shutil

import pytest

from duomo.library.analyze import IndexSettings
from duomo.service.app import ServiceSettings, create_app
from tests.helpers.serving import serve_in_thread

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (scripts/setup.sh apt-installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright (dev extra)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--autoplay-policy=no-user-gesture-required"])
        yield browser
        browser.close()


def app_for(db, tmp_path, **kw):
    return create_app(ServiceSettings(db_dir=db, index_settings=IndexSettings(segment_sec=2.0), index_workers=2, **kw))


def copy_library(library, tmp_path):
    """A copy of the session's library, so uploads here leave it as it was."""
    db = tmp_path / "db"
    shutil.copytree(library.db, db)
    return db


def search_and_open(page, query: str, video_name: str) -> dict:
    """Search, click the first hit of ``video_name``; returns that hit's start and text."""
    page.fill("#q", query)
    page.press("#q", "Enter")
    result = page.locator(".video-result", has=page.locator("h3", has_text=video_name)).first
    hit = result.locator(".hit").first
    hit.wait_for()
    start = float(hit.get_attribute("data-start"))
    text = hit.locator(".text").inner_text()
    hit.click()
    return {"start": start, "text": text, "video_id": hit.get_attribute("data-video")}


PLAYING_FROM_HIT = ("hit => { const v = document.querySelector('#player');"
                    " return v.src.includes('/api/videos/' + hit.video_id + '/media') && v.readyState >= 1"
                    " && Math.abs(v.currentTime - hit.start) < 1.0; }")


def test_search_click_plays_from_the_hit_with_its_line_highlighted(browser, talking_library, tmp_path):
    with serve_in_thread(app_for(talking_library.db, tmp_path)) as url:
        page = browser.new_page()
        page.goto(url + "/")
        hit = search_and_open(page, "wooden spoon", "kitchen.mp4")
        # the hit starts at the spoken "wooden" (the second sentence starts at 4 s)
        assert 4.0 <= hit["start"] <= 6.0 and "spoon" in hit["text"].lower()
        page.wait_for_function(PLAYING_FROM_HIT, arg=hit, timeout=20_000)
        current = page.evaluate("document.querySelector('#player').currentTime")
        assert abs(current - hit["start"]) < 1.0
        assert not page.evaluate("document.querySelector('#player').error")  # Chromium decodes the file
        matched = page.locator("#transcript li.matched")
        assert matched.count() == 1
        assert "spoon" in matched.inner_text().lower()
        assert "kettle" in page.locator("#transcript li").first.inner_text().lower()

        # a hit in another video switches the player and the transcript
        hit = search_and_open(page, "roses before sunset", "garden.mp4")
        page.wait_for_function(PLAYING_FROM_HIT, arg=hit, timeout=20_000)
        assert page.locator("#viewer-title").inner_text() == "garden.mp4"
        assert "roses" in page.locator("#transcript li.matched").inner_text().lower()
        page.close()


def test_more_like_this_lists_the_other_videos_and_plays_them(browser, talking_library, tmp_path):
    with serve_in_thread(app_for(talking_library.db, tmp_path)) as url:
        page = browser.new_page()
        page.goto(url + "/")
        page.locator("#video-list li", has_text="kitchen.mp4").click()
        page.locator("#viewer").wait_for(state="visible")
        page.select_option("#similar-by", "words")
        page.click("#similar-form button")
        result = page.locator(".video-result", has=page.locator("h3", has_text="garden.mp4"))
        result.wait_for()
        assert page.locator(".video-result").count() == 1  # the library's only other video
        assert page.locator("#status").inner_text() == "1 video(s) like kitchen.mp4"
        hit = result.locator(".hit").first
        assert hit.locator(".kind").inner_text() == "words"
        assert "tomatoes" in hit.locator(".text").inner_text().lower()  # what garden.mp4 says
        page.select_option("#similar-by", "both")
        page.click("#similar-form button")
        page.wait_for_function("document.querySelectorAll('.video-result .hit').length === 2")
        kinds = sorted(page.locator(".video-result .hit .kind").all_inner_texts())
        assert kinds == ["picture", "words"]
        hit = page.locator(".video-result .hit").first
        opened = {"video_id": hit.get_attribute("data-video"), "start": float(hit.get_attribute("data-start"))}
        hit.click()
        page.wait_for_function(PLAYING_FROM_HIT, arg=opened, timeout=20_000)
        assert page.locator("#viewer-title").inner_text() == "garden.mp4"
        page.close()


def test_token_is_asked_once_and_kept(browser, talking_library, tmp_path):
    with serve_in_thread(app_for(talking_library.db, tmp_path, token="s3cret")) as url:
        context = browser.new_context()
        page = context.new_page()
        page.goto(url + "/")
        page.locator("#token-form").wait_for(state="visible")
        page.fill("#token", "s3cret")
        page.click("#token-form button")
        page.locator("#video-list li").first.wait_for()
        assert page.locator("#video-list li").count() == 2
        hit = search_and_open(page, "tomatoes", "garden.mp4")
        # media and thumbnails carry the token in their URLs
        page.wait_for_function(PLAYING_FROM_HIT, arg=hit, timeout=20_000)
        assert "token=s3cret" in page.evaluate("document.querySelector('#player').src")
        assert page.evaluate("document.querySelector('.hit img').naturalWidth") > 0
        page.reload()  # kept in localStorage: no prompt the second time
        page.locator("#video-list li").first.wait_for()
        assert page.locator("#token-form").is_hidden()
        context.close()


def test_upload_through_the_form_gets_indexed_and_found(browser, talking_library, upload_video, tmp_path):
    db = copy_library(talking_library, tmp_path)
    with serve_in_thread(app_for(db, tmp_path)) as url:
        page = browser.new_page()
        page.goto(url + "/")
        page.locator("#video-list li").first.wait_for()
        page.set_input_files("#upload-file", str(upload_video))
        page.click("#upload-form button")
        page.wait_for_function("document.querySelector('#upload-status').dataset.state === 'done'"
                               " || document.querySelector('#upload-status').dataset.state === 'failed'",
                               timeout=240_000)
        status = page.locator("#upload-status")
        assert status.get_attribute("data-state") == "done", status.inner_text()
        assert page.evaluate("document.querySelector('#upload-progress').value") == 100
        page.locator("#video-list li", has_text="harbour_clip_final_.mp4").wait_for()
        hit = search_and_open(page, "yellow submarine", "harbour_clip_final_.mp4")
        assert "submarine" in hit["text"].lower()
        page.close()
    assert (db / "uploads" / "harbour_clip_final_.mp4").is_file()
