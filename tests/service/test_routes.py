"""Service routes through a test client on libraries indexed from generated media: video list and
details, byte ranges (exact bytes, 416), thumbnails, the access token on every endpoint, paths
that try to leave the library, upload limits and non-video refusals, and (slow) search hits at the
spoken time and upload -> job -> searchable."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from duomo.library.analyze import IndexSettings
from duomo.library.index import index_paths
from duomo.service.app import Library, Resources, ServiceSettings, create_app
from duomo.service.uploads import sanitize_filename
from duomo.store.library import LibraryStore
from tests.helpers.videos import make_video


def client_for(db: Path, *, preload: bool = True, **kw) -> TestClient:
    """A test client of the app over ``db``; ``preload=False`` skips loading the text model (for
    tests that never embed a query)."""
    kw.setdefault("index_settings", IndexSettings(segment_sec=1.0, use_speech=False, use_ocr=False))
    settings = ServiceSettings(db_dir=db, index_workers=1, **kw)
    resources = None if preload else Resources(library=Library(db), predictors={})
    return TestClient(create_app(settings, resources))


@pytest.fixture(scope="module")
def empty_db(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("empty") / "db"
    index_paths([], db)  # creates an empty library
    return db


@pytest.fixture(scope="module")
def client(scene_library):
    with client_for(scene_library.db) as c:
        yield c


@pytest.fixture(scope="module")
def guarded(scene_library):
    with client_for(scene_library.db, token="tok-123", preload=False) as c:
        yield c


UNKNOWN_ID = "0123456789abcdef"


@pytest.mark.slow
def test_list_and_describe_videos(client, scene_library):
    listing = client.get("/api/videos").json()
    assert [v["name"] for v in listing] == ["blue.mp4", "red.mp4"]
    blue = listing[0]
    assert blue["video_id"] == scene_library.video_id("blue.mp4")
    assert blue["duration_sec"] == pytest.approx(3.0) and (blue["width"], blue["height"]) == (64, 48)
    assert blue["media_url"] == f"/api/videos/{blue['video_id']}/media"
    detail = client.get(f"/api/videos/{blue['video_id']}").json()
    assert detail["shots"] == [[0.0, 3.0]]
    assert [(s["start_sec"], s["end_sec"]) for s in detail["segments"]] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]
    assert detail["transcript"] == [] and detail["ocr"] == []
    thumb = client.get(detail["segments"][1]["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content[:2] == b"\xff\xd8"
    assert client.get("/api/videos/0123456789abcdef").status_code == 404
    info = client.get("/api/info").json()
    assert info["num_videos"] == 2 and info["models"] == []


@pytest.mark.slow
def test_media_byte_ranges(client, scene_library):
    video_id = scene_library.video_id("red.mp4")
    data = scene_library.videos["red.mp4"].read_bytes()
    size = len(data)
    url = f"/api/videos/{video_id}/media"
    full = client.get(url)
    assert full.status_code == 200 and full.content == data
    assert full.headers["accept-ranges"] == "bytes" and full.headers["content-type"] == "video/mp4"
    part = client.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{size}" and part.headers["content-length"] == "100"
    tail = client.get(url, headers={"Range": "bytes=-50"})
    assert tail.status_code == 206 and tail.content == data[-50:]
    rest = client.get(url, headers={"Range": f"bytes={size - 10}-"})
    assert rest.content == data[-10:] and rest.headers["content-range"] == f"bytes {size - 10}-{size - 1}/{size}"
    clipped = client.get(url, headers={"Range": f"bytes={size - 5}-{size + 1000}"})
    assert clipped.status_code == 206 and clipped.content == data[-5:]
    past = client.get(url, headers={"Range": f"bytes={size}-{size + 10}"})
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{size}"


@pytest.mark.slow
def test_similar_videos(client, scene_library):
    red = scene_library.video_id("red.mp4")
    found = client.get(f"/api/videos/{red}/similar", params={"k": 5}).json()
    assert [r["name"] for r in found["results"]] == ["blue.mp4"]  # never itself
    at = client.get(f"/api/videos/{red}/similar", params={"at_sec": 1.5}).json()
    assert "1.00-2.00" in at["matched"]
    assert client.get(f"/api/videos/{red}/similar", params={"by": "sound"}).status_code == 422
    # the scene videos say and show no words: by words is refused with the reason, by picture works
    words = client.get(f"/api/videos/{red}/similar", params={"by": "words"})
    assert words.status_code >= 400 and "says and shows no words" in words.json()["detail"]
    picture = client.get(f"/api/videos/{red}/similar", params={"by": "picture"}).json()
    assert [r["name"] for r in picture["results"]] == ["blue.mp4"]


def test_search_validation(empty_db):
    with client_for(empty_db, preload=False) as client:
        assert client.get("/api/search", params={"q": ""}).status_code == 422
        assert client.get("/api/search", params={"q": "x", "modality": "smell"}).status_code == 422
        blank = client.get("/api/search", params={"q": "   "})
        assert blank.status_code == 400 and blank.json()["detail"] == "the search query is empty"
        visual = client.get("/api/search", params={"q": "red", "modality": "visual"})
        assert visual.status_code == 400 and "--model" in visual.json()["detail"]  # one line, no traceback


@pytest.mark.slow
def test_every_endpoint_needs_the_token_when_set(guarded, scene_library):
    video_id = scene_library.video_id("red.mp4")
    thumb = LibraryStore(scene_library.db).video(video_id).details["segments"][0]["thumbnail"]
    urls = ["/api/videos", f"/api/videos/{video_id}", f"/api/videos/{video_id}/media", f"/api/thumbs/{thumb}",
            f"/api/videos/{video_id}/similar", "/api/search?q=red", "/api/info", "/api/jobs", "/api/jobs/abc",
            "/docs", "/redoc", "/openapi.json"]
    for url in urls:
        refused = guarded.get(url)
        assert refused.status_code == 401, url
        assert "access token" in refused.json()["detail"]
        assert guarded.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401, url
        assert guarded.get(url + ("&" if "?" in url else "?") + "token=wrong").status_code == 401, url
    for method, url in (("post", "/api/videos"), ("post", f"/api/videos/{video_id}/caption"),
                        ("post", f"/api/videos/{video_id}/answer")):
        assert guarded.request(method, url).status_code == 401, url
    bearer = {"Authorization": "Bearer tok-123"}
    for url in urls[:6] + ["/docs", "/openapi.json"]:
        assert guarded.get(url, headers=bearer).status_code == 200, url
    # <video> and <img> cannot send headers: the query parameter works too
    assert guarded.get(f"/api/videos/{video_id}/media?token=tok-123", headers={"Range": "bytes=0-3"}).status_code == 206
    assert guarded.get(f"/api/thumbs/{thumb}?token=tok-123").status_code == 200
    # the page shell holds no data and loads without it, so it can ask for the token
    page = guarded.get("/")
    assert page.status_code == 200 and "app.js" in page.text
    assert guarded.get("/static/app.js").status_code == 200


@pytest.mark.slow
def test_paths_never_leave_the_library(client, scene_library, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve")
    db = scene_library.db
    attempts = [
        "/api/thumbs/../library.json", "/api/thumbs/..%2Flibrary.json", "/api/thumbs/%2e%2e/%2e%2e/" + str(secret),
        f"/api/thumbs/{secret}", "/api/thumbs//etc/passwd", "/api/thumbs/" + "../" * 12 + "etc/passwd",
        f"/api/thumbs/..%2F..%2F{secret.name}", "/static/../library.json", "/static/%2e%2e/app.py",
        "/static/..%2F..%2Fapp.py",
        "/api/videos/..%2F..%2Fetc%2Fpasswd/media", f"/api/videos/{secret}/media", "/api/videos/%2Fetc%2Fpasswd/media",
        "/api/videos/' OR '1'='1/media", "/api/videos/x' OR video_id != '/media",
    ]
    for url in attempts:
        response = client.get(url)
        assert response.status_code in (404, 400, 422), (url, response.status_code)
        assert b"do not serve" not in response.content and b"root:" not in response.content
        assert b"visual_kind" not in response.content and b"create_app" not in response.content
    assert (db / "library.json").is_file()  # what the first attempts aimed at


def test_sanitize_filename():
    assert sanitize_filename("../../etc/passwd") == "passwd"
    assert sanitize_filename("C:\\clips\\My Holiday (1).mp4") == "My_Holiday_1_.mp4"
    assert sanitize_filename("/abs/path/clip.MP4") == "clip.MP4"
    assert sanitize_filename("..") == "upload.mp4"
    assert sanitize_filename(".hidden.mp4") == "hidden.mp4"
    assert sanitize_filename("naïve café.webm") == "na_ve_caf_.webm"
    assert sanitize_filename("") == "upload.mp4"
    long = sanitize_filename("a" * 300 + ".mkv")
    assert long.endswith(".mkv") and len(long) == 100


def test_upload_refusals(empty_db, tmp_path):
    import shutil

    db = tmp_path / "db"
    shutil.copytree(empty_db, db)
    clip = make_video(tmp_path / "clip.mp4", 10, 10, size=(32, 32), codec="libx264")
    with client_for(db, max_upload_bytes=clip.stat().st_size - 1, preload=False) as small:
        too_big = small.post("/api/videos", files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")})
        assert too_big.status_code == 413 and "limit" in too_big.json()["detail"]
        # a declared length far past the limit is refused before the body is read
        huge = small.post("/api/videos", files={"file": ("big.mp4", b"\0" * 300_000, "video/mp4")})
        assert huge.status_code == 413 and huge.json()["detail"].startswith("the upload is 0.29 MB, over the")
    (db / "uploads" / ".incoming-stale.part").write_bytes(b"left by a stopped server")
    with client_for(db, preload=False) as c:
        text = c.post("/api/videos", files={"file": ("notes.mp4", b"hello, not a video\n" * 50, "video/mp4")})
        assert text.status_code == 415
        assert text.json()["detail"].startswith("notes.mp4: not a video we can read")
        empty = c.post("/api/videos", files={"file": ("empty.mp4", b"", "video/mp4")})
        assert empty.status_code == 400 and "empty" in empty.json()["detail"]
        wrong_field = c.post("/api/videos", files={"video": ("clip.mp4", clip.read_bytes(), "video/mp4")})
        assert wrong_field.status_code == 400 and "'file'" in wrong_field.json()["detail"]
        not_multipart = c.post("/api/videos", content=clip.read_bytes(), headers={"content-type": "video/mp4"})
        assert not_multipart.status_code == 400
    # nothing refused was kept, not even a partial file
    assert not (db / "uploads").exists() or list((db / "uploads").iterdir()) == []


def test_predict_unknown_video_or_bad_question(empty_db):
    with client_for(empty_db, preload=False) as client:
        missing = client.post(f"/api/videos/{UNKNOWN_ID}/caption")
        assert missing.status_code == 404 and missing.json()["detail"] == f"{UNKNOWN_ID}: no such video in the library"
        assert client.post(f"/api/videos/{UNKNOWN_ID}/answer", json={"question": ""}).status_code == 422
        assert client.post(f"/api/videos/{UNKNOWN_ID}/answer", json={}).status_code == 422


@pytest.mark.slow
def test_predict_needs_a_loaded_model(client, scene_library):
    video_id = scene_library.video_id("red.mp4")
    refused = client.post(f"/api/videos/{video_id}/caption")
    assert refused.status_code == 409 and "--model" in refused.json()["detail"]
    assert client.post(f"/api/videos/{video_id}/answer", json={"question": "what colour?"}).status_code == 409
    assert client.post(f"/api/videos/{video_id}/classify").status_code == 409


def test_token_guard_on_an_empty_library(empty_db):
    urls = ["/api/videos", "/api/info", "/api/jobs", "/docs", "/redoc", "/openapi.json", f"/api/videos/{UNKNOWN_ID}",
            f"/api/videos/{UNKNOWN_ID}/media", f"/api/thumbs/{UNKNOWN_ID}/00000.jpg", "/api/jobs/abc",
            "/api/search?q=x"]
    with client_for(empty_db, token="tok-123", preload=False) as c:
        for url in urls:
            assert c.get(url).status_code == 401, url
            assert c.get(url, headers={"Authorization": "Basic tok-123"}).status_code == 401, url
            assert c.get(url, headers={"Authorization": "Bearer tok-1234"}).status_code == 401, url
        assert c.post("/api/videos", files={"file": ("a.mp4", b"x", "video/mp4")}).status_code == 401
        bearer = {"Authorization": "Bearer tok-123"}
        assert [c.get(url, headers=bearer).status_code for url in urls[:10]] == [200] * 6 + [404] * 4
        assert c.get("/api/videos?token=tok-123").json() == []
        # the docs page reached with ?token= fetches the schema with it, and offers an Authorize button
        assert "/openapi.json?token=tok-123" in c.get("/docs?token=tok-123").text
        schema = c.get("/openapi.json", headers=bearer).json()
        assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    with client_for(empty_db, preload=False) as open_client:  # no token set: nothing asks for one
        assert open_client.get("/api/videos").status_code == 200 and open_client.get("/docs").status_code == 200


def test_static_and_thumbnail_paths_stay_inside(empty_db):
    with client_for(empty_db, preload=False) as c:
        for url in ["/api/thumbs/../library.json", "/api/thumbs/..%2Flibrary.json", "/api/thumbs/%2e%2e/library.json",
                    f"/api/thumbs/{empty_db}/library.json", "/api/thumbs//etc/passwd",
                    "/api/thumbs/" + "..%2F" * 12 + "etc/passwd", "/static/../library.json", "/static/..%2Fapp.py",
                    "/static/%2e%2e/%2e%2e/pyproject.toml", f"/api/videos/..%2F..%2Flibrary.json/media"]:
            response = c.get(url)
            assert response.status_code in (400, 404), (url, response.status_code)
            assert b"visual_kind" not in response.content and b"root:" not in response.content
            assert b"create_app" not in response.content and b"[project]" not in response.content
        assert c.get("/static/app.js").status_code == 200


def wait_for_job(c: TestClient, job: dict, timeout_sec: float = 240.0) -> dict:
    deadline = time.monotonic() + timeout_sec
    while job["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.3)
        job = c.get(job["status_url"]).json()
    return job


@pytest.mark.slow
def test_upload_is_indexed_by_a_job_and_found(scene_library, tmp_path):
    import shutil

    db = tmp_path / "db"
    shutil.copytree(scene_library.db, db)
    clip = make_video(tmp_path / "x.mp4", 20, 10, size=(64, 48), pattern="square", codec="libx264")
    with client_for(db) as c:
        accepted = c.post("/api/videos", files={"file": ("../../escape me!.mp4", clip.read_bytes(), "video/mp4")})
        assert accepted.status_code == 202, accepted.text
        job = accepted.json()
        assert job["file"] == "escape_me_.mp4" and job["status"] in ("queued", "running")
        done = wait_for_job(c, job)
        assert done["status"] == "done", done
        assert done["progress"]["visual"] == [1, 1] and done["progress"]["write"] == [1, 1]
        saved = db / "uploads" / "escape_me_.mp4"
        assert saved.read_bytes() == clip.read_bytes()
        assert not (tmp_path / "escape me!.mp4").exists()
        names = [v["name"] for v in c.get("/api/videos").json()]
        assert sorted(names) == ["blue.mp4", "escape_me_.mp4", "red.mp4"]
        media = c.get(f"/api/videos/{done['video_id']}/media", headers={"Range": "bytes=0-15"})
        assert media.status_code == 206 and media.content == clip.read_bytes()[:16]
        # the same name again is kept beside the first, not over it
        again = c.post("/api/videos", files={"file": ("escape me!.mp4", clip.read_bytes(), "video/mp4")}).json()
        assert again["file"] == "escape_me_-1.mp4"
        assert wait_for_job(c, again)["status"] == "done"


@pytest.mark.slow
def test_search_finds_spoken_and_written_words_at_their_time(talking_library):
    with client_for(talking_library.db) as c:
        found = c.get("/api/search", params={"q": "wooden spoon", "k": 2}).json()["results"]
        assert found[0]["name"] == "kitchen.mp4"
        best = found[0]["hits"][0]
        assert best["modality"] == "speech" and "spoon" in best["text"].lower()
        assert 4.0 <= best["start_sec"] <= 6.0  # the sentence is spoken from 4 s, "wooden" a little later
        assert best["thumbnail_url"] and c.get(best["thumbnail_url"]).status_code == 200
        roses = c.get("/api/search", params={"q": "roses", "modality": "speech"}).json()["results"]
        assert roses[0]["name"] == "garden.mp4" and roses[0]["hits"][0]["start_sec"] >= 4.0
        written = c.get("/api/search", params={"q": "kitchen", "modality": "text"}).json()["results"]
        assert [r["name"] for r in written] == ["kitchen.mp4"]
        assert written[0]["hits"][0]["modality"] == "ocr" and written[0]["hits"][0]["start_sec"] == pytest.approx(1.0)
        detail = c.get(f"/api/videos/{talking_library.video_id('kitchen.mp4')}").json()
        starts = [line["start_sec"] for line in detail["transcript"]]
        assert len(starts) == 2 and starts[0] < 1.0 and 3.5 <= starts[1] <= 4.6  # spoken at 0.5 s and 4 s
        assert "kettle" in detail["transcript"][0]["text"].lower()
        assert detail["ocr"][0]["text"] == "KITCHEN" and detail["ocr"][0]["start_sec"] == pytest.approx(1.0)


@pytest.mark.slow
def test_uploads_a_stopped_server_had_not_indexed_are_indexed_when_it_starts(scene_library, tmp_path):
    """A saved upload whose job never finished (the server stopped) gets a job at the next start;
    once indexed, a later start leaves it alone."""
    import shutil

    db = tmp_path / "db"
    shutil.copytree(scene_library.db, db)
    (db / "uploads").mkdir(exist_ok=True)  # a server started on the library before made it
    assert list((db / "uploads").iterdir()) == []
    clip = make_video(db / "uploads" / "left.mp4", 20, 10, size=(64, 48), pattern="square", codec="libx264")
    with client_for(db) as c:
        (job,) = c.get("/api/jobs").json()
        assert job["file"] == "left.mp4"
        assert wait_for_job(c, job)["status"] == "done"
        assert "left.mp4" in [v["name"] for v in c.get("/api/videos").json()]
    with client_for(db) as again:
        assert again.get("/api/jobs").json() == []
    assert clip.is_file()
