"""Searching the library: hybrid text search (MiniLM vectors + BM25 full text, fused by
reciprocal rank), visual search with a retrieval model, and "more like this" for a video or
one of its segments. Results are grouped by video, best first.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import json

import numpy as np

from duomo.errors import DuomoError
from duomo.store.library import MODALITIES, LibraryError, LibraryStore

RRF_K = 60
"""Reciprocal rank fusion constant (Cormack et al., 2009) when merging text and visual hits."""
HITS_PER_VIDEO = 5
SIMILAR_BY = ("picture", "words", "both")
"""What ``similar`` compares videos by (``--by``)."""
_WORD = re.compile(r"[\w']+")


@dataclass
class Hit:
    """One matching segment: where, how well, what matched, and its thumbnail (relative to the
    library's thumbs/ folder)."""

    modality: str
    start_sec: float
    end_sec: float
    score: float
    text: str
    thumbnail: str
    segment_idx: int


@dataclass
class VideoHits:
    video_id: str
    path: str
    score: float
    hits: list[Hit] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LibrarySearcher:
    """Opens a library once and answers many queries (the CLI makes one, the service keeps one).

    The MiniLM text model loads on the first text query; a retrieval model (when the library
    was indexed with one) on the first visual query.
    """

    def __init__(self, db_dir: str | Path):
        self.store = LibraryStore(db_dir)
        self._embedder = None
        self._predictor = None

    @property
    def embedder(self):
        if self._embedder is None:
            from duomo.text.sentence import SentenceEmbedder

            self._embedder = SentenceEmbedder()
        return self._embedder

    @property
    def predictor(self):
        if self._predictor is None:
            if self.store.info.visual_kind != "model":
                raise LibraryError(
                    f"{self.store.root}: searching pictures by words needs a library indexed with "
                    "--model RUN_DIR (a retrieval run); this one has the default visual descriptor, "
                    "which serves duomo similar")
            from duomo.library.index import load_retrieval_run

            self._predictor = load_retrieval_run(self.store.info.visual_model)
        return self._predictor

    def search(self, query: str, *, k: int = 10, modality: str = "all") -> list[VideoHits]:
        """Up to ``k`` videos matching ``query``, each with its best hits."""
        if modality not in MODALITIES:
            raise DuomoError(f"--modality: unknown {modality!r}; choose one of {', '.join(MODALITIES)}")
        if not query.strip():
            raise DuomoError("the search query is empty")
        limit = max(50, k * HITS_PER_VIDEO * 2)
        ranked: list[list[dict]] = []
        if modality in ("speech", "text", "all"):
            modalities = {"speech": ("speech",), "text": ("ocr", "caption"), "all": ("speech", "ocr", "caption")}
            vector = self.embedder.embed([query])[0]
            ranked.append(self.store.search_text(vector, query, modalities=modalities[modality], limit=limit))
        if modality == "visual" or (modality == "all" and self.store.info.visual_kind == "model"):
            vector = np.asarray(self.predictor.embed_text([query])[0], dtype=np.float32)
            ranked.append(self.store.search_visual(vector, limit=limit))
        rows = ranked[0] if len(ranked) == 1 else _fuse(ranked)
        return _group(rows, query, k)

    def similar(self, video: str, *, k: int = 10, at_sec: float | None = None,
                by: str = "both") -> tuple[str, list[VideoHits]]:
        """Videos most like ``video`` (an indexed id or path, or any video file), or with
        ``at_sec`` the segments most like the one at that time. Returns (what was matched, results).

        ``by``: ``picture`` (the visual vectors), ``words`` (the mean MiniLM vector of what the
        video says and shows in text; indexed videos only) or ``both``: the two rankings fused by
        reciprocal rank, a video with no words ranked by its picture alone. Segments (``at_sec``)
        are compared by picture.
        """
        if by not in SIMILAR_BY:
            raise DuomoError(f"--by: unknown {by!r}; choose one of {', '.join(SIMILAR_BY)}")
        record = self.store.find_video(video)
        if record is not None:
            rows = self.store.visual_rows(record.video_id)
            exclude = record.video_id
            label = f"{record.path} ({record.video_id})"
        elif Path(video).is_file():
            if by == "words":
                raise LibraryError(f"{video}: not in the library, so its words are unknown; index it first, "
                                   "or compare --by picture")
            rows = self._describe_file(video)
            exclude = None
            label = str(video)
        else:
            raise LibraryError(f"{video}: not an indexed video id or path, and no such file")
        if at_sec is not None:  # segments compare by picture; "both" means that here
            if by == "words":
                raise LibraryError("--at compares segments by picture; leave out --by words")
            return self._similar_segment(video, rows, at_sec, k, exclude, label)
        limit = max(50, 4 * k)
        ranked: list[list[dict]] = []
        if by in ("picture", "both"):
            mean = [row for row in rows if row["modality"] == "video"]
            if not mean:
                raise LibraryError(f"{video}: no frames to compare")
            ranked.append(self.store.search_visual(np.asarray(mean[0]["vector"]), modality="video", limit=limit,
                                                   exclude_video=exclude))
        words = self.store.words_vector(record.video_id) if record is not None and by != "picture" else None
        if words is not None:
            ranked.append(self.store.search_words(words, limit=limit, exclude_video=exclude))
        elif by == "words":
            raise LibraryError(f"{video}: says and shows no words to compare; try --by picture")
        if len(ranked) == 1:
            found = ranked[0]
            return label, [VideoHits(video_id=row["video_id"], path=row["path"], score=round(row["score"], 4),
                                     hits=[_hit(row)]) for row in found[:k]]
        # fused by video: a video's picture row and words row are two hits of one result
        by_video: dict[str, list[dict]] = {}
        scores: dict[str, float] = {}
        for listing in ranked:
            for rank, row in enumerate(listing):
                by_video.setdefault(row["video_id"], []).append(row)
                scores[row["video_id"]] = scores.get(row["video_id"], 0.0) + 1.0 / (RRF_K + rank + 1)
        order = sorted(scores, key=lambda vid: -scores[vid])[:k]
        return label, [VideoHits(video_id=vid, path=by_video[vid][0]["path"], score=round(scores[vid], 6),
                                 hits=[_hit(row) for row in by_video[vid]]) for vid in order]

    def _similar_segment(self, video: str, rows: list[dict], at_sec: float, k: int, exclude: str | None,
                         label: str) -> tuple[str, list[VideoHits]]:
        segments = sorted((row for row in rows if row["modality"] == "visual"), key=lambda row: row["start"])
        chosen = [row for row in segments if row["start"] <= at_sec < row["end"]] or \
            [row for row in segments if row["start"] <= at_sec][-1:]
        if not chosen:
            raise LibraryError(f"{video}: no segment at {at_sec:.2f} s")
        found = self.store.search_visual(np.asarray(chosen[0]["vector"]), limit=max(50, k * HITS_PER_VIDEO),
                                         exclude_video=exclude)
        return f"{label} at {chosen[0]['start']:.2f}-{chosen[0]['end']:.2f} s", _group(found, "", k)

    def _describe_file(self, path: str) -> list[dict]:
        """Visual rows for a video that is not in the library, made the way the index makes them."""
        from duomo.library.analyze import IndexSettings, analyze_visual

        model = self.store.info.visual_kind == "model"
        settings = IndexSettings(use_ocr=False, use_speech=False)
        if model:
            settings.model_frames = self.predictor.cfg.data.num_frames
            settings.model_frame_size = self.predictor.cfg.data.frame_size
        with tempfile.TemporaryDirectory() as tmp:
            analysis = analyze_visual(path, Path(tmp), settings)
        rows, vectors = [], []
        for seg in analysis.segments:
            vector = (np.asarray(self.predictor.embed_frames(seg.model_frames), dtype=np.float32) if model
                      else seg.descriptor)
            vectors.append(vector)
            rows.append({"modality": "visual", "start": seg.start_sec, "end": seg.end_sec, "vector": vector})
        if vectors:
            mean = np.mean(vectors, axis=0)
            rows.append({"modality": "video", "start": 0.0, "end": analysis.segments[-1].end_sec,
                         "vector": mean / max(float(np.linalg.norm(mean)), 1e-12)})
        return rows


def _fuse(ranked: list[list[dict]]) -> list[dict]:
    """Reciprocal rank fusion of several ranked row lists (each row keeps its best rank's data)."""
    scores: dict[str, float] = {}
    rows: dict[str, dict] = {}
    for listing in ranked:
        for rank, row in enumerate(listing):
            scores[row["id"]] = scores.get(row["id"], 0.0) + 1.0 / (RRF_K + rank + 1)
            rows.setdefault(row["id"], row)
    order = sorted(scores, key=lambda key: -scores[key])
    return [{**rows[key], "score": scores[key]} for key in order]


def _group(rows: list[dict], query: str, k: int) -> list[VideoHits]:
    """Rows (best first) -> up to ``k`` videos, each with up to HITS_PER_VIDEO hits."""
    videos: dict[str, VideoHits] = {}
    for row in rows:
        entry = videos.get(row["video_id"])
        if entry is None:
            if len(videos) >= k:
                continue
            entry = videos[row["video_id"]] = VideoHits(video_id=row["video_id"], path=row["path"],
                                                        score=round(float(row["score"]), 6))
        if len(entry.hits) < HITS_PER_VIDEO:
            entry.hits.append(_hit(row, query))
    return list(videos.values())


def _hit(row: dict, query: str = "") -> Hit:
    start = float(row["start"])
    words = json.loads(row.get("words") or "[]")
    if query and words:
        start = _phrase_start(words, query, start)
    return Hit(modality=row["modality"], start_sec=round(start, 3), end_sec=round(float(row["end"]), 3),
               score=round(float(row.get("score", 0.0)), 6), text=row.get("text", ""),
               thumbnail=row.get("thumbnail", ""), segment_idx=int(row.get("segment_idx", -1)))


def _phrase_start(words: list[list], query: str, default: float) -> float:
    """Start time of the word where the longest run of the query's words begins in ``words``
    ([[word, start, end]]); ``default`` when no query word is there."""
    terms = [w.lower() for w in _WORD.findall(query)]
    spoken = [_WORD.findall(str(w[0]).lower()) for w in words]
    tokens = [(parts[0] if parts else "") for parts in spoken]
    best, best_at = 0, None
    for i in range(len(tokens)):
        for j in range(len(terms)):
            run = 0
            while i + run < len(tokens) and j + run < len(terms) and tokens[i + run] == terms[j + run]:
                run += 1
            if run > best:
                best, best_at = run, i
    return float(words[best_at][1]) if best_at is not None else default
