"""``duomo similar --by``: videos alike in what they say (speech, on-screen text) against alike in
what they show, on generated clips whose pictures and words disagree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from duomo.library.analyze import IndexSettings
from duomo.library.index import index_paths
from duomo.library.search import LibrarySearcher
from duomo.store.library import LibraryError, LibraryStore
from duomo.video.encode import write_video
from tests.helpers.talking import SAMPLE_RATE, speech_track
from tests.library.test_index import FPS, scene_frames

pytestmark = pytest.mark.slow  # speech synthesis, Whisper and MiniLM

SECONDS = 4.0
CLIPS = {  # name: (background, sentence)
    "red_kitchen": ("red", "We cook pasta in the kitchen every evening."),
    "blue_kitchen": ("blue", "In the kitchen we cook dinner and bake bread."),
    "red_market": ("red", "The stock market fell sharply on Monday morning."),
}


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("similar")
    videos = root / "videos"
    videos.mkdir()
    for seed, (name, (color, sentence)) in enumerate(CLIPS.items()):
        audio, _ = speech_track([(0.3, sentence)], SECONDS)
        write_video(videos / f"{name}.mp4", scene_frames(color, int(SECONDS * FPS), seed), FPS, crf=18,
                    audio=audio, sample_rate=SAMPLE_RATE)
    db = root / "db"
    report = index_paths([videos], db, settings=IndexSettings(segment_sec=1.0, use_ocr=False), workers=2)
    assert len(report.indexed) == 3 and not report.failed
    return videos, db


def names(results) -> list[str]:
    return [Path(r.path).stem for r in results]


def test_pictures_and_words_rank_differently(library):
    videos, db = library
    searcher = LibrarySearcher(db)
    query = str(videos / "red_kitchen.mp4")
    _, by_picture = searcher.similar(query, k=2, by="picture")
    assert names(by_picture) == ["red_market", "blue_kitchen"]
    _, by_words = searcher.similar(query, k=2, by="words")
    assert names(by_words) == ["blue_kitchen", "red_market"]
    assert by_words[0].score > by_words[1].score
    assert by_words[0].hits[0].modality == "words" and "kitchen" in by_words[0].hits[0].text.lower()
    _, both = searcher.similar(query, k=2)
    assert sorted(names(both)) == ["blue_kitchen", "red_market"]
    # each result shows why: its picture hit and its words hit
    assert all(sorted(h.modality for h in r.hits) == ["video", "words"] for r in both)


def test_without_words_a_video_is_compared_by_picture(library, tmp_path):
    videos, db = library
    searcher = LibrarySearcher(db)
    # a file outside the library: its pictures are described on the fly, its words are unknown
    import shutil

    outside = tmp_path / "outside.mp4"
    shutil.copy(videos / "red_kitchen.mp4", outside)
    with pytest.raises(LibraryError, match="index it first"):
        searcher.similar(str(outside), by="words")
    _, both = searcher.similar(str(outside), k=3)
    assert names(both)[0] == "red_kitchen" and all(len(r.hits) == 1 for r in both)
    with pytest.raises(LibraryError, match="--at compares segments by picture"):
        searcher.similar(str(videos / "red_kitchen.mp4"), at_sec=1.0, by="words")
    # a library indexed before words rows existed: "both" falls back to pictures, "words" says why not
    old = tmp_path / "old"
    shutil.copytree(db, old)
    LibraryStore(old).words_table.delete("true")
    searcher = LibrarySearcher(old)
    _, both = searcher.similar(str(videos / "red_kitchen.mp4"), k=2)
    assert names(both) == ["red_market", "blue_kitchen"] and both[0].hits[0].modality == "video"
    with pytest.raises(LibraryError, match="says and shows no words"):
        searcher.similar(str(videos / "red_kitchen.mp4"), by="words")


def test_similar_by_words_from_the_command_line(library):
    from tests.cli.test_cli import duomo

    videos, db = library
    result = duomo("similar", str(videos / "red_kitchen.mp4"), "--db", str(db), "--by", "words", "-k", "1", "--json")
    assert result.returncode == 0, result.stderr
    assert Path(json.loads(result.stdout)["results"][0]["path"]).stem == "blue_kitchen"
    result = duomo("similar", str(videos / "red_kitchen.mp4"), "--db", str(db), "--by", "sound")
    assert result.returncode == 2 and "invalid choice" in result.stderr
