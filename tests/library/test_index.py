"""The library index on generated videos: segments and shots with exact times, thumbnails,
incremental runs (unchanged, changed, pruned), bad files, commits that survive a crash, and
"more like this"."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from duomo.library.analyze import IndexSettings
from duomo.library.index import index_paths
from duomo.library.search import LibrarySearcher
from duomo.store.library import LibraryError, LibraryStore
from duomo.video.encode import write_video

FPS = 10
SIZE = (96, 64)  # w, h

COLORS = {"red": (200, 40, 40), "blue": (40, 60, 210), "green": (40, 190, 60), "dark": (20, 20, 30)}


def scene_frames(color: str, num_frames: int, seed: int) -> list[np.ndarray]:
    """A textured background of ``color`` with a bright square moving across it."""
    rng = np.random.default_rng(seed)
    base = np.array(COLORS[color], dtype=np.int16)
    texture = rng.integers(-12, 13, size=(SIZE[1], SIZE[0], 1), dtype=np.int16)
    frames = []
    for i in range(num_frames):
        frame = np.clip(base + texture, 0, 255).astype(np.uint8)
        x = 5 + (i * 3) % (SIZE[0] - 20)
        frame[20:34, x:x + 14] = (240, 240, 240)
        frames.append(frame)
    return frames


def make_scene_video(path: Path, scenes: list[tuple[str, float]], seed: int = 0) -> Path:
    frames = []
    for n, (color, seconds) in enumerate(scenes):
        frames += scene_frames(color, int(round(seconds * FPS)), seed + n)
    return write_video(path, frames, FPS, codec="libx264", crf=18)


pytestmark = pytest.mark.slow  # each index run starts worker processes (a few seconds)

SETTINGS = dict(segment_sec=1.0, use_speech=False, use_ocr=False)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "videos"
    root.mkdir()
    make_scene_video(root / "red_blue.mp4", [("red", 2.0), ("blue", 2.0)], seed=1)
    make_scene_video(root / "green.mp4", [("green", 3.0)], seed=2)
    make_scene_video(root / "red.mp4", [("red", 3.0)], seed=3)
    (root / "notes.txt").write_text("not a video, not picked up from a folder")
    return root


def run_index(paths, db, **kw):
    return index_paths(paths, db, settings=IndexSettings(**SETTINGS), workers=2, **kw)


def row_counts(db: Path) -> dict[str, int]:
    store = LibraryStore(db)
    counts: dict[str, int] = {}
    for table in (store.text_table, store.visual_table):
        for video_id in table.to_arrow().column("video_id").to_pylist():
            counts[video_id] = counts.get(video_id, 0) + 1
    return counts


def test_index_segments_shots_and_thumbnails(corpus: Path, tmp_path: Path):
    db = tmp_path / "db"
    report = run_index([corpus], db)
    assert sorted(Path(p).name for p in report.indexed) == ["green.mp4", "red.mp4", "red_blue.mp4"]
    assert report.failed == [] and report.skipped == []
    store = LibraryStore(db)
    videos = {Path(v.path).name: v for v in store.videos()}
    red_blue = videos["red_blue.mp4"]
    assert red_blue.details["shots"] == [[0.0, 2.0], [2.0, 4.0]]
    assert [(s["start"], s["end"], s["shot"]) for s in red_blue.details["segments"]] == [
        (0.0, 1.0, 0), (1.0, 2.0, 0), (2.0, 3.0, 1), (3.0, 4.0, 1)]
    assert videos["green.mp4"].details["shots"] == [[0.0, 3.0]]
    assert red_blue.num_segments == 4 and red_blue.duration_sec == pytest.approx(4.0)
    for segment in red_blue.details["segments"]:
        thumb = store.thumbnail_path(segment["thumbnail"])
        assert thumb is not None and thumb.read_bytes()[:2] == b"\xff\xd8"  # a JPEG
    # one visual row per segment plus the video's mean
    assert row_counts(db)[red_blue.video_id] == 4 + 1


def test_second_run_skips_unchanged_reindexes_changed_and_prunes(corpus: Path, tmp_path: Path):
    db = tmp_path / "db"
    run_index([corpus], db)
    before = row_counts(db)
    again = run_index([corpus], db)
    assert again.indexed == [] and len(again.skipped) == 3
    assert row_counts(db) == before

    make_scene_video(corpus / "green.mp4", [("green", 1.0), ("red", 1.0)], seed=9)  # new content
    changed = run_index([corpus], db)
    assert [Path(p).name for p in changed.indexed] == ["green.mp4"] and len(changed.skipped) == 2
    store = LibraryStore(db)
    green = store.find_video(str(corpus / "green.mp4"))
    assert green.details["shots"] == [[0.0, 1.0], [1.0, 2.0]]
    counts = row_counts(db)
    assert counts[green.video_id] == 2 + 1  # the old rows are gone, no duplicates

    (corpus / "red.mp4").unlink()
    kept = run_index([corpus], db)
    assert kept.pruned == [] and len(LibraryStore(db).videos()) == 3  # without --prune it stays
    pruned = run_index([corpus], db, prune=True)
    assert [Path(p).name for p in pruned.pruned] == ["red.mp4"]
    assert sorted(Path(v.path).name for v in LibraryStore(db).videos()) == ["green.mp4", "red_blue.mp4"]


def test_bad_files_are_reported_with_their_reason(corpus: Path, tmp_path: Path):
    (corpus / "empty.mp4").write_bytes(b"")
    (corpus / "junk.mkv").write_bytes(b"this is not a video" * 100)
    report = run_index([corpus, tmp_path / "missing.mp4"], tmp_path / "db")
    assert len(report.indexed) == 3
    failed = {Path(path).name: reason for path, reason in report.failed}
    assert set(failed) == {"empty.mp4", "junk.mkv", "missing.mp4"}
    assert "empty.mp4" in failed["empty.mp4"] and "\n" not in failed["empty.mp4"]
    assert failed["missing.mp4"] == "no such file or folder"


def test_a_crash_before_commit_leaves_nothing_visible_and_nothing_doubled(corpus: Path, tmp_path: Path,
                                                                          monkeypatch):
    db = tmp_path / "db"
    calls = {"n": 0}
    real_commit = LibraryStore.commit

    def crash_on_second(self, record):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # as if killed after the rows were written
        return real_commit(self, record)

    monkeypatch.setattr(LibraryStore, "commit", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        run_index([corpus], db)
    store = LibraryStore(db)
    assert len(store.videos()) == 1
    # the half-written video's rows exist on disk but no search sees them
    rows = store.visual_table.to_arrow().to_pylist()
    assert len({r["video_id"] for r in rows}) == 2
    assert len({r["video_id"] for r in store.visible(rows)}) == 1
    monkeypatch.setattr(LibraryStore, "commit", real_commit)
    report = run_index([corpus], db)
    assert len(report.indexed) == 2 and len(report.skipped) == 1
    counts = row_counts(db)
    by_name = {Path(v.path).name: v for v in LibraryStore(db).videos()}
    assert counts[by_name["red_blue.mp4"].video_id] == 5
    assert counts[by_name["green.mp4"].video_id] == 4 and counts[by_name["red.mp4"].video_id] == 4


def test_similar_videos_and_segments(corpus: Path, tmp_path: Path):
    db = tmp_path / "db"
    run_index([corpus], db)
    searcher = LibrarySearcher(db)
    _, results = searcher.similar(str(corpus / "red.mp4"), k=2)
    assert [Path(r.path).name for r in results] == ["red_blue.mp4", "green.mp4"]
    assert results[0].score > results[1].score
    # the blue half of red_blue is nearest to no red video: the segment at 3 s looks like blue
    _, segments = searcher.similar(str(corpus / "red_blue.mp4"), k=2, at_sec=0.5)
    assert Path(segments[0].path).name == "red.mp4"
    # a file that is not in the library is described on the fly
    outside = make_scene_video(tmp_path / "outside.mp4", [("green", 2.0)], seed=5)
    _, results = searcher.similar(str(outside), k=1)
    assert Path(results[0].path).name == "green.mp4"
    with pytest.raises(LibraryError, match="not an indexed video"):
        searcher.similar("no-such-video", k=1)


def test_searching_pictures_by_words_needs_a_model(corpus: Path, tmp_path: Path):
    db = tmp_path / "db"
    run_index([corpus], db)
    with pytest.raises(LibraryError, match="--model"):
        LibrarySearcher(db).search("a red square", modality="visual")


def test_opening_a_folder_that_is_not_a_library(tmp_path: Path):
    with pytest.raises(LibraryError, match="not a Duomo library"):
        LibraryStore(tmp_path / "nothing")


def test_index_cli_reports_and_json(corpus: Path, tmp_path: Path):
    from tests.cli.test_cli import duomo

    db = tmp_path / "db"
    result = duomo("index", str(corpus), "--db", str(db), "--no-speech", "--no-ocr", "--segment-sec", "1", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["indexed"]) == 3 and report["failed"] == []
    result = duomo("index", str(corpus), "--db", str(db), "--no-speech", "--no-ocr")
    assert result.returncode == 0 and "indexed 0, unchanged 3, failed 0" in result.stdout
    result = duomo("similar", str(corpus / "red.mp4"), "--db", str(db), "-k", "1", "--json")
    assert json.loads(result.stdout)["results"][0]["path"].endswith("red_blue.mp4")
    result = duomo("search", "anything", "--db", str(tmp_path / "nowhere"))
    assert result.returncode == 2 and "not a Duomo library" in result.stderr and "Traceback" not in result.stderr


def test_killed_runs_then_a_full_run_give_the_clean_result(corpus: Path, tmp_path: Path):
    """SIGKILL ``duomo index`` at several moments, run it again to the end: the library equals
    one built in a single run (same videos, same row counts, nothing doubled)."""
    import signal
    import subprocess
    import sys
    import time

    clean = tmp_path / "clean"
    run_index([corpus], clean)
    db = tmp_path / "db"
    command = [sys.executable, "-m", "duomo.cli.main", "index", str(corpus), "--db", str(db), "--no-speech",
               "--no-ocr", "--segment-sec", "1", "--workers", "2"]
    thumbs = db / "thumbs"

    def analysing() -> bool:  # a worker is writing a video's thumbnails: mid-analysis
        return thumbs.is_dir() and any(".partial-" in p.name for p in thumbs.iterdir())

    def committing(before: int) -> bool:  # a video's thumbnails just moved in: its rows are being written
        return thumbs.is_dir() and sum(".partial-" not in p.name for p in thumbs.iterdir()) > before

    kills = 0
    # moments chosen by what the run is doing, not by the clock (the machine may be fast or busy)
    for moment in ("analysing", "committing", "analysing", "committing"):
        done_before = sum(".partial-" not in p.name for p in thumbs.iterdir()) if thumbs.is_dir() else 0
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            if analysing() if moment == "analysing" else committing(done_before):
                os.killpg(process.pid, signal.SIGKILL)  # the workers too
                kills += 1
                break
            time.sleep(0.01)
        process.wait()
        if db.exists() and (db / "library.json").exists():
            store = LibraryStore(db)
            rows = store.visual_table.to_arrow().to_pylist()
            visible = store.visible(rows)
            committed = {v.video_id: v.num_segments for v in store.videos()}
            # whatever is visible is whole: a committed video has all its segment rows, once
            for video_id, num_segments in committed.items():
                assert sum(1 for r in visible if r["video_id"] == video_id) == num_segments + 1
    assert kills >= 2  # the kills landed while runs were under way
    final = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert row_counts(db) == row_counts(clean)
    assert sorted(v.path for v in LibraryStore(db).videos()) == sorted(v.path for v in LibraryStore(clean).videos())


def test_a_second_index_run_waits_for_the_first(corpus: Path, tmp_path: Path):
    """While another run holds the library's writer lock, ``duomo index`` says it is waiting and
    writes nothing; once the lock is free it indexes everything, once."""
    import subprocess
    import sys
    import threading
    import time

    from duomo.store.library import writer_lock

    db = tmp_path / "db"
    command = [sys.executable, "-m", "duomo.cli.main", "index", str(corpus), "--db", str(db), "--no-speech",
               "--no-ocr", "--segment-sec", "1", "--workers", "2", "--json"]
    release = threading.Event()
    held = threading.Event()

    def hold() -> None:
        with writer_lock(db):
            held.set()
            release.wait(120)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    err_file = tmp_path / "stderr.txt"
    waiting = "another index run is writing this library; waiting for it to finish"
    with open(err_file, "w") as err:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        deadline = time.monotonic() + 60
        while waiting not in err_file.read_text() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert waiting in err_file.read_text()
        time.sleep(1.0)
        assert process.poll() is None  # still waiting, and nothing written
        assert not (db / "library.json").exists() and not (db / "lance").exists()
    finally:
        release.set()
        holder.join()
    out, _ = process.communicate(timeout=300)
    err = err_file.read_text()
    assert process.returncode == 0, err
    assert "Traceback" not in err and err.count(waiting) == 1
    assert len(json.loads(out)["indexed"]) == 3
    assert len(LibraryStore(db).videos()) == 3


def test_long_videos_are_analysed_in_chunks_with_the_same_result(corpus: Path, tmp_path: Path):
    """Chunks of 1 s (the cut of red_blue falls exactly on a chunk's first frame) give the same
    shots and segments as one pass."""
    whole = index_paths([corpus / "red_blue.mp4"], tmp_path / "whole",
                        settings=IndexSettings(**SETTINGS, chunk_sec=0), workers=2)
    chunked = index_paths([corpus / "red_blue.mp4"], tmp_path / "chunked",
                          settings=IndexSettings(**SETTINGS, chunk_sec=1.0), workers=2)
    assert whole.indexed == chunked.indexed
    a, b = LibraryStore(tmp_path / "whole").videos()[0], LibraryStore(tmp_path / "chunked").videos()[0]
    assert b.details["shots"] == a.details["shots"] == [[0.0, 2.0], [2.0, 4.0]]
    assert [(s["start"], s["end"], s["shot"]) for s in b.details["segments"]] == \
        [(s["start"], s["end"], s["shot"]) for s in a.details["segments"]]
    assert len({s["thumbnail"] for s in b.details["segments"]}) == 4
