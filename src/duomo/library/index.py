"""``index_paths``: bring a library up to date with the videos under some paths.

Each video is analysed in worker processes (the picture and the speech as two jobs, so even one
long video keeps two cores busy); the parent embeds the text with MiniLM and writes the store,
committing each video only when all of its rows are in (see ``store.library``). Unchanged files
(same size and time, or same content hash) are skipped; changed ones are indexed again;
``prune`` drops videos whose files are gone.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import time
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from duomo.errors import DuomoError
from duomo.library.analyze import (
    IndexSettings,
    VideoAnalysis,
    analyze_speech,
    analyze_visual,
    chunk_ranges,
    content_hash,
    merge_chunks,
    video_id_for,
)
from duomo.library.visual import DESCRIPTOR_NAME, DIM as DESCRIPTOR_DIM
from duomo.store.library import LibraryInfo, LibraryStore, VideoRecord, writer_lock
from duomo.video import probe

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = {".mp4", ".m4v", ".mkv", ".webm", ".mov", ".avi", ".mpg", ".mpeg", ".ts", ".wmv", ".flv", ".3gp"}
STAGES = ("visual", "speech", "write")
WORDS_GIST_CHARS = 200
"""How much of a video's transcript (or on-screen text) its ``words`` row keeps to show."""


class IndexProgress(Protocol):
    """What ``index_paths`` reports as it goes (the CLI draws progress bars from it)."""

    def start(self, stage: str, total: int) -> None: ...

    def advance(self, stage: str) -> None: ...


@dataclass
class IndexReport:
    indexed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Unchanged since the last run."""
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(path, reason)."""
    pruned: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    """Summed worker time per stage (decode, ocr, speech, embed, write)."""
    video_seconds: float = 0.0
    """Total duration of the videos indexed this run."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "indexed": self.indexed, "skipped": self.skipped,
            "failed": [{"path": p, "reason": r} for p, r in self.failed], "pruned": self.pruned,
            "seconds": round(self.seconds, 3), "video_seconds": round(self.video_seconds, 3),
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
        }


def find_videos(paths: Iterable[str | Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Video files named or found (recursively) under ``paths``, and the paths that don't exist."""
    found: dict[Path, None] = {}
    missing: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix.lower() in VIDEO_EXTENSIONS and not child.name.startswith("."):
                    found[child.resolve()] = None
        elif path.is_file():
            found[path.resolve()] = None
        else:
            missing.append((str(raw), "no such file or folder"))
    return list(found), missing


def index_paths(paths: Iterable[str | Path], db_dir: str | Path, *, settings: IndexSettings | None = None,
                model_dir: str | None = None, caption_dir: str | None = None, prune: bool = False,
                workers: int | None = None, progress: IndexProgress | None = None) -> IndexReport:
    """Index every video under ``paths`` into the library at ``db_dir``; see the module docs.

    ``model_dir``: a retrieval run whose embeddings become the segments' visual vectors;
    ``caption_dir``: a caption run that describes every segment (searchable as ``caption``).
    """
    started = time.perf_counter()
    settings = settings or IndexSettings()
    report = IndexReport()
    info = _library_info(model_dir, settings)
    if caption_dir:
        captioner = load_caption_run(caption_dir)
        settings.model_frames = max(settings.model_frames, captioner.cfg.data.num_frames)
        settings.model_frame_size = max(settings.model_frame_size if model_dir else 0, captioner.cfg.data.frame_size)
    # one writer at a time: a run started beside another waits, then finds its files done
    with writer_lock(db_dir, on_wait=lambda: logger.warning(
            "%s: another index run is writing this library; waiting for it to finish", Path(db_dir))):
        store = LibraryStore(db_dir, create=True, info=info)
        _clear_partial_thumbnails(store)
        files, missing = find_videos(paths)
        report.failed.extend(missing)

        committed = {record.video_id: record for record in store.videos()}
        todo: list[tuple[Path, str, str, os.stat_result]] = []
        for path in files:
            video_id = video_id_for(path)
            stat = path.stat()
            record = committed.get(video_id)
            if record is not None and record.size == stat.st_size and record.mtime == stat.st_mtime:
                report.skipped.append(str(path))
                continue
            digest = content_hash(path)
            if record is not None and record.content_hash == digest:
                report.skipped.append(str(path))
                continue
            todo.append((path, video_id, digest, stat))
        if prune:
            for record in committed.values():
                if not Path(record.path).exists():
                    store.remove(record.video_id)
                    report.pruned.append(record.path)

        if todo:
            _index_files(todo, store, settings, model_dir, caption_dir, workers, progress, report)
        if report.indexed or report.pruned:
            store.finish_writes()
    report.seconds = time.perf_counter() - started
    return report


def _library_info(model_dir: str | None, settings: IndexSettings) -> LibraryInfo:
    """What the library's vectors mean; with a retrieval run, also set the frames each segment
    keeps for it (its frame count and size)."""
    from duomo.text.sentence import DIM as TEXT_DIM, MODEL_NAME

    if not model_dir:
        return LibraryInfo(text_model=MODEL_NAME, text_dim=TEXT_DIM, visual_kind="descriptor",
                           visual_model=DESCRIPTOR_NAME, visual_dim=DESCRIPTOR_DIM)
    predictor = load_retrieval_run(model_dir)
    settings.model_frames = predictor.cfg.data.num_frames
    settings.model_frame_size = predictor.cfg.data.frame_size
    dim = int(predictor.embed_text(["a"]).shape[1])
    return LibraryInfo(text_model=MODEL_NAME, text_dim=TEXT_DIM, visual_kind="model",
                       visual_model=str(Path(model_dir).resolve()), visual_dim=dim)


def load_retrieval_run(model_dir: str | Path):
    """The Predictor of a retrieval run (the dual encoder), or a one-line error saying what it is."""
    from duomo.inference import load_for

    return load_for(model_dir, "retrieval", "retrieval", "--model")


def load_caption_run(caption_dir: str | Path):
    """The Predictor of a caption run, or a one-line error saying what it is."""
    from duomo.inference import load_for

    return load_for(caption_dir, "caption", "caption", "--captions")


def _clear_partial_thumbnails(store: LibraryStore) -> None:
    """Thumbnail folders of a run that was killed before committing their video."""
    if store.thumbs.is_dir():
        for child in store.thumbs.iterdir():
            if ".partial-" in child.name:
                shutil.rmtree(child, ignore_errors=True)


def _index_files(todo, store: LibraryStore, settings: IndexSettings, model_dir: str | None, caption_dir: str | None,
                 workers: int | None, progress: IndexProgress | None, report: IndexReport) -> None:
    """Analyse ``todo`` in worker processes and write each video as soon as all its parts are in.

    A video's parts are its picture, in time chunks of ``settings.chunk_sec`` (so that the
    workers share a long video), and its speech."""
    from duomo.text.sentence import SentenceEmbedder

    num_workers = max(1, workers or os.cpu_count() or 1)
    if progress:
        progress.start("visual", len(todo))
        progress.start("speech", len(todo) if settings.use_speech else 0)
        progress.start("write", len(todo))
    context = multiprocessing.get_context("spawn")  # model runtimes (onnx, ctranslate2) must not be forked
    pending: dict[Future, tuple[str, int, int]] = {}
    parts: dict[int, dict[str, Any]] = {}
    # MiniLM (torch + transformers) takes seconds to load: load it while the workers decode
    # (only when there will be text: speech or on-screen text)
    loader = ThreadPoolExecutor(1)
    expect_text = settings.use_speech or settings.use_ocr or bool(caption_dir)
    loading = loader.submit(SentenceEmbedder) if expect_text else None

    def get_embedder() -> SentenceEmbedder:
        nonlocal loading
        if loading is None:
            loading = loader.submit(SentenceEmbedder)
        return loading.result()

    def fail(i: int, reason: str) -> None:
        part = parts[i]
        if part.get("closed"):
            return
        part["closed"] = True
        report.failed.append((str(todo[i][0]), reason))
        shutil.rmtree(part["thumb_dir"], ignore_errors=True)
        if progress:
            progress.advance("write")

    with loader, ProcessPoolExecutor(num_workers, mp_context=context, initializer=_worker_init,
                                     initargs=(settings, model_dir, caption_dir)) as pool:
        for i, (path, video_id, digest, _) in enumerate(todo):
            thumb_dir = store.thumbs / f"{video_id}.partial-{digest[:8]}"
            parts[i] = {"thumb_dir": thumb_dir, "chunks": {}}
            try:
                info = probe(path)
            except DuomoError as err:
                fail(i, str(err))
                continue
            ranges = chunk_ranges(info.duration_sec or 0.0, settings.chunk_sec, num_workers)
            parts[i]["num_chunks"] = len(ranges)
            for c, (start, end) in enumerate(ranges):
                future = pool.submit(_visual_job, str(path), str(thumb_dir), start, end, c, info)
                pending[future] = ("visual", i, c)
            if settings.use_speech:
                pending[pool.submit(_speech_job, str(path))] = ("speech", i, 0)
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                stage, i, c = pending.pop(future)
                part = parts[i]
                try:
                    result = future.result()
                except DuomoError as err:
                    fail(i, str(err))
                    continue
                except Exception as err:  # a crash on one video must not lose the others
                    fail(i, f"{todo[i][0]}: {type(err).__name__}: {err}")
                    continue
                if stage == "visual":
                    part["chunks"][c] = result
                    if len(part["chunks"]) == part["num_chunks"] and progress:
                        progress.advance("visual")
                else:
                    part["speech"] = result
                    if progress:
                        progress.advance("speech")
                complete = len(part["chunks"]) == part["num_chunks"] and (
                    "speech" in part or not settings.use_speech)
                if part.get("closed") or not complete:
                    continue
                part["closed"] = True
                tic = time.perf_counter()
                analysis = merge_chunks([part["chunks"][k] for k in range(part["num_chunks"])])
                if settings.use_speech:
                    analysis.transcript, analysis.timings["speech"] = part["speech"]
                _write_video(store, todo[i], analysis, part["thumb_dir"], get_embedder)
                analysis.timings["write"] = time.perf_counter() - tic - analysis.timings.get("embed", 0.0)
                for key, value in analysis.timings.items():
                    report.stage_seconds[key] = report.stage_seconds.get(key, 0.0) + value
                report.video_seconds += float(analysis.info.get("duration_sec") or 0.0)
                report.indexed.append(str(todo[i][0]))
                parts[i] = {"closed": True}  # let the frames and vectors go
                if progress:
                    progress.advance("write")


def _write_video(store: LibraryStore, item, analysis: VideoAnalysis, thumb_dir: Path, get_embedder) -> None:
    """Rows for one analysed video, then its commit (see ``store.library`` for the order).
    ``get_embedder()`` gives the MiniLM embedder; it is only waited for when there is text."""
    path, video_id, digest, stat = item
    segments = analysis.segments
    starts = np.array([seg.start_sec for seg in segments]) if segments else np.zeros(0)

    def segment_at(t: float) -> int:
        if not len(starts):
            return -1
        return int(max(0, np.searchsorted(starts, t + 1e-6, side="right") - 1))

    def thumbnail(idx: int) -> str:
        return f"{video_id}/{segments[idx].thumbnail}" if idx >= 0 else ""

    base = {"video_id": video_id, "content_hash": digest, "path": str(path)}
    texts: list[tuple[str, dict]] = []
    sentences = [sentence for entry in analysis.transcript for sentence in split_sentences(entry)]
    for n, entry in enumerate(sentences):
        idx = segment_at(entry["start"])
        texts.append((entry["text"], {**base, "id": f"{video_id}:speech:{n}", "start": entry["start"],
                                      "end": entry["end"], "modality": "speech", "segment_idx": idx,
                                      "thumbnail": thumbnail(idx), "words": _json(entry["words"])}))
    for n, span in enumerate(analysis.ocr):
        idx = segment_at(span["start"])
        end = min(span["end"], max((s.end_sec for s in segments), default=span["end"]))
        texts.append((span["text"], {**base, "id": f"{video_id}:ocr:{n}", "start": span["start"], "end": end,
                                     "modality": "ocr", "segment_idx": idx, "thumbnail": thumbnail(idx),
                                     "words": "[]"}))
    for n, caption in enumerate(analysis.captions):
        idx = segment_at(caption["start"])
        texts.append((caption["text"], {**base, "id": f"{video_id}:caption:{n}", "start": caption["start"],
                                        "end": caption["end"], "modality": "caption", "segment_idx": idx,
                                        "thumbnail": thumbnail(idx), "words": "[]"}))
    tic = time.perf_counter()
    vectors = get_embedder().embed([text for text, _ in texts]) if texts else []
    analysis.timings["embed"] = time.perf_counter() - tic
    text_rows = [{**row, "text": text, "vector": vector.tolist()} for (text, row), vector in zip(texts, vectors)]

    visual_rows = []
    segment_vectors = []
    for seg in segments:
        vector = np.asarray(seg.descriptor if seg.vector is None else seg.vector, dtype=np.float32)
        segment_vectors.append(vector)
        visual_rows.append({**base, "id": f"{video_id}:visual:{seg.idx}", "start": seg.start_sec, "end": seg.end_sec,
                            "modality": "visual", "text": "", "segment_idx": seg.idx,
                            "thumbnail": thumbnail(seg.idx), "words": "[]", "vector": vector.tolist()})
    if segment_vectors:
        mean = np.mean(segment_vectors, axis=0)
        mean = mean / max(float(np.linalg.norm(mean)), 1e-12)
        visual_rows.append({**base, "id": f"{video_id}:video", "start": 0.0, "end": segments[-1].end_sec,
                            "modality": "video", "text": "", "segment_idx": -1, "thumbnail": thumbnail(0),
                            "words": "[]", "vector": mean.astype(np.float32).tolist()})

    words_rows = []
    if text_rows:  # what the video says and shows in words, as one vector (duomo similar)
        mean = np.mean([np.asarray(row["vector"], dtype=np.float32) for row in text_rows], axis=0)
        mean = mean / max(float(np.linalg.norm(mean)), 1e-12)
        gist = " ".join(row["text"] for row in text_rows if row["modality"] == "speech") or \
            " ".join(row["text"] for row in text_rows)
        words_rows.append({**base, "id": f"{video_id}:words", "start": 0.0,
                           "end": max(row["end"] for row in text_rows), "modality": "words",
                           "text": gist[:WORDS_GIST_CHARS], "segment_idx": -1, "thumbnail": thumbnail(0),
                           "words": "[]", "vector": mean.astype(np.float32).tolist()})

    store.begin(video_id)
    final_thumbs = store.thumbs / video_id
    if thumb_dir.is_dir():
        thumb_dir.replace(final_thumbs)
    store.add_rows(text_rows, visual_rows, words_rows)
    info = analysis.info
    details = {
        "shots": [list(shot) for shot in analysis.shots],
        "segments": [{"idx": s.idx, "start": s.start_sec, "end": s.end_sec, "shot": s.shot_idx,
                      "thumbnail": thumbnail(s.idx)} for s in segments],
        "transcript": sentences, "ocr": analysis.ocr, "captions": analysis.captions,
        "timings": {k: round(v, 3) for k, v in analysis.timings.items()}, "probe": info,
    }
    store.commit(VideoRecord(
        video_id=video_id, path=str(path), content_hash=digest, size=stat.st_size, mtime=stat.st_mtime,
        duration_sec=float(info.get("duration_sec") or 0.0), width=int(info.get("width") or 0),
        height=int(info.get("height") or 0), fps=float(info.get("fps") or 0.0),
        has_audio=bool(info.get("audio")), num_segments=len(segments), indexed_at=time.time(),
        details=details))


def split_sentences(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """A transcript entry ({start, end, text, words: [[word, start, end]]}) cut at sentence ends
    (a word ending in . ! ?), so each search row is one sentence with its own times."""
    words = entry.get("words") or []
    if not words:
        return [entry]
    sentences, current = [], []
    for word in words:
        current.append(word)
        if str(word[0]).rstrip().endswith((".", "!", "?")):
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    return [{"start": part[0][1], "end": part[-1][2], "text": " ".join(str(w[0]).strip() for w in part),
             "words": part} for part in sentences]


def _json(value) -> str:
    import json

    return json.dumps(value)


# --- worker side ------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}
"""Per worker process: its settings and the models it loaded once (OCR, speech, retrieval)."""


def _worker_init(settings: IndexSettings, model_dir: str | None, caption_dir: str | None = None) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _WORKER.clear()
    _WORKER.update(settings=settings, model_dir=model_dir, caption_dir=caption_dir)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


def _visual_job(path: str, thumb_dir: str, start_sec: float, end_sec: float | None, chunk_idx: int,
                info=None) -> VideoAnalysis:
    settings: IndexSettings = _WORKER["settings"]
    reader = None
    if settings.use_ocr:
        if "ocr" not in _WORKER:
            from duomo.ocr.reader import TextReader

            _WORKER["ocr"] = TextReader(num_threads=1)
        reader = _WORKER["ocr"]
    analysis = analyze_visual(path, Path(thumb_dir), settings, ocr_reader=reader, start_sec=start_sec,
                              end_sec=end_sec, chunk_idx=chunk_idx, info=info)
    tic = time.perf_counter()
    if _WORKER.get("model_dir"):
        if "predictor" not in _WORKER:
            _WORKER["predictor"] = load_retrieval_run(_WORKER["model_dir"])
        for seg in analysis.segments:
            seg.vector = np.asarray(_WORKER["predictor"].embed_frames(seg.model_frames), dtype=np.float32)
    if _WORKER.get("caption_dir"):
        if "captioner" not in _WORKER:
            _WORKER["captioner"] = load_caption_run(_WORKER["caption_dir"])
        analysis.captions = [{"start": seg.start_sec, "end": seg.end_sec,
                              "text": _WORKER["captioner"].caption_frames(seg.model_frames)}
                             for seg in analysis.segments]
    if _WORKER.get("model_dir") or _WORKER.get("caption_dir"):
        analysis.timings["models"] = time.perf_counter() - tic
    for seg in analysis.segments:
        seg.model_frames = None  # not shipped back to the parent
    return analysis


def _speech_job(path: str):
    if "speech" not in _WORKER:
        from duomo.speech.asr import SpeechRecognizer

        _WORKER["speech"] = SpeechRecognizer(num_threads=1)
    return analyze_speech(path, _WORKER["speech"])
