"""A library indexed with a retrieval run: segment vectors come from the run, words search
pictures, and a run of another kind is refused with one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import duomo
from duomo.errors import DuomoError
from duomo.library.analyze import IndexSettings
from duomo.library.index import index_paths
from duomo.library.search import LibrarySearcher
from duomo.store.library import LibraryError, LibraryStore
from duomo.video.decode import sample_window
from tests.helpers.learning import make_tiny_world, tiny_config, train_once_each

pytestmark = pytest.mark.slow

TRAIN = ["train.epochs=1", "train.batch_size=4", "data.use_audio=false"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_tiny_world(tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="module")
def run_for(world, tmp_path_factory):
    return train_once_each(tmp_path_factory,
                           lambda preset: tiny_config("retrieval", world.manifest_path, *TRAIN, preset=preset))


def test_segment_vectors_come_from_the_retrieval_run(world, run_for, tmp_path: Path):
    run = run_for("retrieval")
    videos = sorted((world.manifest_path.parent / "videos").glob("*.mp4"))[:3]
    db = tmp_path / "db"
    report = index_paths(videos, db, settings=IndexSettings(segment_sec=1.0, use_speech=False, use_ocr=False),
                         model_dir=str(run), workers=2)
    assert report.failed == [] and len(report.indexed) == 3
    store = LibraryStore(db)
    assert store.info.visual_kind == "model" and store.info.visual_model == str(run.resolve())
    predictor = duomo.load(run)
    record = store.videos()[0]
    rows = sorted((r for r in store.visual_rows(record.video_id) if r["modality"] == "visual"),
                  key=lambda r: r["start"])
    assert len(rows) == record.num_segments
    # the stored vector is the run's embedding of the segment's frames (the index samples them
    # every 0.5 s; the check embeds what the index kept, so compare against a fresh embedding
    # of frames from the same span within tolerance of a unit vector's cosine)
    first = rows[0]
    frames = sample_window(record.path, first["start"], first["end"], predictor.cfg.data.num_frames).frames
    fresh = predictor.embed_frames(frames)
    stored = np.asarray(first["vector"], dtype=np.float32)
    assert stored.shape == fresh.shape and abs(float(np.linalg.norm(stored)) - 1.0) < 1e-4
    assert float(stored @ fresh) > 0.9
    # words search the pictures
    results = LibrarySearcher(db).search("a circle", k=3, modality="visual")
    assert results and all(h.modality == "visual" for r in results for h in r.hits)


def test_a_run_of_another_kind_is_refused(world, run_for, tmp_path: Path):
    videos = sorted((world.manifest_path.parent / "videos").glob("*.mp4"))[:1]
    with pytest.raises(DuomoError, match="needs a retrieval run with the retrieval head"):
        index_paths(videos, tmp_path / "db", settings=IndexSettings(use_speech=False, use_ocr=False),
                    model_dir=str(run_for("retrieval_moment")))


def test_a_caption_run_describes_every_segment(world, tmp_path: Path, tmp_path_factory):
    caption_run = train_once_each(tmp_path_factory,
                                  lambda name: tiny_config("caption", world.manifest_path, *TRAIN))("caption")
    videos = sorted((world.manifest_path.parent / "videos").glob("*.mp4"))[:2]
    db = tmp_path / "db"
    report = index_paths(videos, db, settings=IndexSettings(segment_sec=1.0, use_speech=False, use_ocr=False),
                         caption_dir=str(caption_run), workers=2)
    assert report.failed == []
    store = LibraryStore(db)
    captioner = duomo.load(caption_run)
    for record in store.videos():
        captions = record.details["captions"]
        assert [(c["start"], c["end"]) for c in captions] == [(s["start"], s["end"]) for s in record.details["segments"]]
        assert all(c["text"] for c in captions)
    rows = [r for r in store.text_table.to_arrow().to_pylist() if r["modality"] == "caption"]
    assert len(rows) == sum(v.num_segments for v in store.videos())
    # the words are the run's caption of frames from the segment (the same run, the same kind of input)
    first = store.videos()[0]
    frames = sample_window(first.path, 0.0, first.details["segments"][0]["end"], 8).frames
    vocabulary = set(" ".join(c["text"] for c in first.details["captions"]).split()) | set(
        captioner.caption_frames(frames).split())
    assert vocabulary <= set(captioner.vocab.tokenizer.words) | {"<unk>"}
    found = LibrarySearcher(db).search(rows[0]["text"], k=2, modality="text")
    assert found and found[0].hits[0].modality == "caption"
    classify_run = train_once_each(tmp_path_factory,
                                   lambda name: tiny_config("classify", world.manifest_path, *TRAIN))("classify")
    with pytest.raises(DuomoError, match="--captions needs a caption run"):
        index_paths(videos, tmp_path / "db2", settings=IndexSettings(use_speech=False, use_ocr=False),
                    caption_dir=str(classify_run))
