"""Index talking videos (speech at known times, captions drawn on known frames) and search them:
a spoken phrase is found within 1 s of where it was said, on-screen text within its span, and
modality filters keep to their kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from duomo.library.analyze import IndexSettings
from duomo.library.index import index_paths
from duomo.library.search import LibrarySearcher
from duomo.store.library import LibraryStore
from tests.helpers.talking import make_talking_video

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("talking")
    videos = root / "videos"
    videos.mkdir()
    truth = {
        "cooking": make_talking_video(
            videos / "cooking.mp4", duration_sec=14.0,
            speech=[(1.0, "Welcome to the kitchen."), (7.5, "Now slowly stir the tomato soup.")],
            captions=[(2.0, 6.0, "FRESH BASIL")]),
        "markets": make_talking_video(
            videos / "markets.mp4", duration_sec=12.0,
            speech=[(2.0, "The stock market fell sharply this morning.")],
            captions=[(6.0, 10.0, "INTEREST RATES")]),
    }
    db = root / "db"
    report = index_paths([videos], db, settings=IndexSettings(segment_sec=4.0), workers=2)
    assert report.failed == [] and len(report.indexed) == 2
    return db, truth


def test_spoken_phrase_is_found_where_it_was_said(library):
    db, truth = library
    results = LibrarySearcher(db).search("stir the tomato soup", k=2, modality="speech")
    assert Path(results[0].path).name == "cooking.mp4"
    hit = results[0].hits[0]
    assert hit.modality == "speech" and "tomato soup" in hit.text.lower()
    said = next(line for line in truth["cooking"].speech if "tomato" in line.text)
    stir_at = said.voice_start_sec + 1.0  # "Now slowly" comes first; the hit starts at the phrase
    assert abs(hit.start_sec - said.voice_start_sec) <= 1.5 and hit.start_sec <= stir_at + 1.0
    assert hit.thumbnail.endswith(".jpg") and LibraryStore(db).thumbnail_path(hit.thumbnail) is not None


def test_on_screen_text_is_found_in_its_span(library):
    db, _ = library
    results = LibrarySearcher(db).search("interest rates", k=2, modality="text")
    assert Path(results[0].path).name == "markets.mp4"
    hit = results[0].hits[0]
    assert hit.modality == "ocr" and hit.text.lower() == "interest rates"
    assert 5.0 <= hit.start_sec <= 7.0 and 9.0 <= hit.end_sec <= 11.5
    # the speech filter does not return on-screen text, and the reverse
    speech_only = LibrarySearcher(db).search("interest rates", k=2, modality="speech")
    assert all(h.modality == "speech" for r in speech_only for h in r.hits)


def test_all_modalities_rank_the_right_video_first(library):
    db, _ = library
    searcher = LibrarySearcher(db)
    assert Path(searcher.search("fresh basil", k=1)[0].path).name == "cooking.mp4"
    assert Path(searcher.search("stock market", k=1)[0].path).name == "markets.mp4"


def test_transcript_and_text_are_stored_with_the_video(library):
    db, truth = library
    store = LibraryStore(db)
    cooking = next(v for v in store.videos() if v.path.endswith("cooking.mp4"))
    said = " ".join(entry["text"] for entry in cooking.details["transcript"]).lower()
    assert "kitchen" in said and "tomato soup" in said
    assert all(len(word) == 3 for entry in cooking.details["transcript"] for word in entry["words"])
    assert any(span["text"].lower() == "fresh basil" for span in cooking.details["ocr"])


def test_search_cli_json(library):
    from tests.cli.test_cli import duomo

    db, _ = library
    result = duomo("search", "tomato soup", "--db", str(db), "-k", "1", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["query"] == "tomato soup" and Path(out["results"][0]["path"]).name == "cooking.mp4"
    hit = out["results"][0]["hits"][0]
    assert {"start_sec", "end_sec", "score", "text", "thumbnail", "modality"} <= set(hit)
    table = duomo("search", "tomato soup", "--db", str(db), "-k", "1")
    assert table.returncode == 0 and "cooking.mp4" in table.stdout
