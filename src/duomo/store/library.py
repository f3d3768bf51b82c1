"""LibraryStore: the indexed video library on disk, in LanceDB (embedded, no server).

Tables (one row per segment and modality, as the index writes them):

- ``videos``: one row per *committed* video: id, path, content hash, size, mtime, probe facts,
  and ``details`` (JSON: shots, segments with thumbnails, transcript with word times, on-screen
  text spans). A video is visible to search only once this row exists.
- ``text``: speech chunks, on-screen text spans and captions with their MiniLM vectors.
- ``visual``: one row per segment (and one ``video`` row per video, the mean) with the visual
  vector (the default descriptor, or a retrieval model's embedding).
- ``words``: one row per video that says or shows any text: the mean MiniLM vector of its
  ``text`` rows, for "more like this" by what is said and written (``similar``).

Writes for one video go: ``begin`` (drop its ``videos`` row, then any rows of it), ``add_rows``,
``commit`` (the ``videos`` row last). A run killed anywhere leaves the video either fully
committed or invisible; the next run's ``begin`` clears its leftovers, so nothing is doubled.
Searches keep only rows whose video id *and* content hash match a committed video.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from duomo.errors import DuomoError

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
TEXT_MODALITIES = ("speech", "ocr", "caption")
ANN_MIN_ROWS = 50_000
"""Below this many rows a table is searched exactly (a scan is fast enough); from here on an
IVF index is built once and kept up to date by ``optimize``."""
ANN_INDEX_TYPE = "IVF_FLAT"
"""Inverted file over k-means partitions, exact distances inside the probed partitions. (IVF_PQ
also works: a smaller index, but at 384-d on clustered embeddings its recall@10 stayed near 0.93
and it took 9x longer to build; bench/search.py measures both settings.)"""
NPROBES = 16
"""IVF partitions visited per query."""
REFINE_FACTOR = 10
"""Candidates re-ranked with exact distances per result (for IVF_PQ; no effect on IVF_FLAT)."""
LOCK_NAME = ".index.lock"
"""The writer lock file in a library folder (see ``writer_lock``)."""
MODALITIES = ("speech", "text", "visual", "all")
"""What ``search --modality`` takes: ``text`` means on-screen text and captions."""


RESULT_COLUMNS = ["id", "video_id", "content_hash", "path", "start", "end", "modality", "text", "segment_idx",
                  "thumbnail", "words"]
"""What searches return (not the vectors: converting them to Python lists costs more than the search)."""


class LibraryError(DuomoError):
    """A library folder that cannot be used as asked."""


@dataclass
class VideoRecord:
    """One committed video of the library."""

    video_id: str
    path: str
    content_hash: str
    size: int
    mtime: float
    duration_sec: float
    width: int
    height: int
    fps: float
    has_audio: bool
    num_segments: int
    indexed_at: float
    details: dict[str, Any] = field(default_factory=dict)
    """shots [[start, end]], segments [{idx, start, end, thumbnail}], transcript
    [{start, end, text, words: [[word, start, end]]}], ocr [{start, end, text}], timings."""

    def summary(self) -> dict[str, Any]:
        """Everything but ``details``."""
        out = asdict(self)
        out.pop("details")
        return out


@dataclass
class LibraryInfo:
    """``library.json``: what the vectors of this library mean, so searches use the same models."""

    text_model: str
    text_dim: int
    visual_kind: str
    """"descriptor" (the default colour/layout descriptor) or "model" (a retrieval run)."""
    visual_model: str
    """Descriptor name, or the retrieval run's folder."""
    visual_dim: int
    schema_version: int = SCHEMA_VERSION


@contextmanager
def writer_lock(db_dir: str | Path, on_wait: Callable[[], None] | None = None) -> Iterator[Path]:
    """Holds the right to write the library in ``db_dir`` (created if missing), across processes.

    Two index runs on one library (two terminals, or ``duomo serve``'s upload jobs beside a
    ``duomo index``) would both pick the same new files and race on the same rows; the second
    waits here for the first to finish, then finds those files unchanged. ``on_wait`` is called
    once if it has to wait. The lock is the operating system's (``flock``), so a killed run
    holds it no longer. Yields the library folder.
    """
    from filelock import FileLock, Timeout

    root = Path(db_dir).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(root / LOCK_NAME)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if on_wait is not None:
            on_wait()
        lock.acquire()
    try:
        yield root
    finally:
        lock.release()


class LibraryStore:
    """Opens (or, with ``create=True``, creates) the library in ``db_dir``."""

    def __init__(self, db_dir: str | Path, *, create: bool = False, info: LibraryInfo | None = None):
        # lance's Rust side logs warnings (k-means empty clusters, projection deprecations) straight
        # to stderr; a user's terminal gets errors only, unless they ask for more
        os.environ.setdefault("LANCEDB_LOG", "error")
        try:
            import lancedb
            import pyarrow as pa
        except ImportError:
            raise LibraryError("the video library needs lancedb: pip install 'duomo[search]'") from None
        self.root = Path(db_dir).expanduser().resolve()
        self._pa = pa
        info_file = self.root / "library.json"
        if info_file.is_file():
            stored = LibraryInfo(**json.loads(info_file.read_text()))
            if info is not None and (stored.visual_kind, stored.visual_model, stored.text_model) != (
                    info.visual_kind, info.visual_model, info.text_model):
                raise LibraryError(
                    f"{self.root}: indexed with visual {stored.visual_kind} {stored.visual_model!r} and text "
                    f"{stored.text_model!r}, not {info.visual_kind} {info.visual_model!r}; "
                    "index into a new --db to change models")
            self.info = stored
        elif create:
            if info is None:
                raise ValueError("creating a library needs its LibraryInfo")
            self.root.mkdir(parents=True, exist_ok=True)
            _write_atomic(info_file, json.dumps(asdict(info), indent=2))
            self.info = info
        else:
            hint = "" if self.root.exists() else " (no such folder)"
            raise LibraryError(f"{self.root}: not a Duomo library{hint}; build one with duomo index PATH --db DIR")
        self.thumbs = self.root / "thumbs"
        self.db = lancedb.connect(str(self.root / "lance"))
        self.videos_table = self._open("videos", self._videos_schema())
        self.text_table = self._open("text", self._segment_schema(self.info.text_dim))
        self.visual_table = self._open("visual", self._segment_schema(self.info.visual_dim))
        # libraries indexed before this table existed get it empty: their videos compare by pictures
        self.words_table = self._open("words", self._segment_schema(self.info.text_dim))
        self._committed: dict[str, str] | None = None

    # --- schema ---------------------------------------------------------------------------

    def _videos_schema(self):
        pa = self._pa
        return pa.schema([
            ("video_id", pa.string()), ("path", pa.string()), ("content_hash", pa.string()),
            ("size", pa.int64()), ("mtime", pa.float64()), ("duration_sec", pa.float64()),
            ("width", pa.int32()), ("height", pa.int32()), ("fps", pa.float64()), ("has_audio", pa.bool_()),
            ("num_segments", pa.int32()), ("indexed_at", pa.float64()), ("details", pa.string()),
        ])

    def _segment_schema(self, dim: int):
        pa = self._pa
        return pa.schema([
            ("id", pa.string()), ("video_id", pa.string()), ("content_hash", pa.string()), ("path", pa.string()),
            ("start", pa.float64()), ("end", pa.float64()), ("modality", pa.string()), ("text", pa.string()),
            ("segment_idx", pa.int32()), ("thumbnail", pa.string()), ("words", pa.string()),
            ("vector", pa.list_(pa.float32(), dim)),
        ])

    def _open(self, name: str, schema):
        if name in self._table_names():
            return self.db.open_table(name)
        return self.db.create_table(name, schema=schema)

    def _table_names(self) -> list[str]:
        listing = self.db.list_tables() if hasattr(self.db, "list_tables") else self.db.table_names()
        return list(getattr(listing, "tables", listing))

    # --- reading --------------------------------------------------------------------------

    def videos(self) -> list[VideoRecord]:
        """Every committed video, by path."""
        rows = self.videos_table.to_arrow().to_pylist()
        return sorted((_record(row) for row in rows), key=lambda r: r.path)

    def video(self, video_id: str) -> VideoRecord | None:
        rows = self.videos_table.search().where(f"video_id = {_sql(video_id)}").limit(1).to_list()
        return _record(rows[0]) if rows else None

    def find_video(self, id_or_path: str) -> VideoRecord | None:
        """A committed video by its id, or by its file path (as given or resolved)."""
        found = self.video(id_or_path)
        if found is not None:
            return found
        resolved = str(Path(id_or_path).expanduser().resolve())
        rows = self.videos_table.search().where(f"path = {_sql(resolved)}").limit(1).to_list()
        return _record(rows[0]) if rows else None

    def committed(self) -> dict[str, str]:
        """video id -> content hash of every committed video (cached until the next write)."""
        if self._committed is None:
            table = self.videos_table.to_arrow().select(["video_id", "content_hash"]).to_pydict()
            self._committed = dict(zip(table["video_id"], table["content_hash"]))
        return self._committed

    def visible(self, rows: list[dict]) -> list[dict]:
        """The rows that belong to a committed video (same content hash)."""
        committed = self.committed()
        return [row for row in rows if committed.get(row["video_id"]) == row["content_hash"]]

    def thumbnail_path(self, relative: str) -> Path | None:
        """The file of a stored thumbnail name, never anything outside the library's thumbs/."""
        if not relative:
            return None
        candidate = (self.thumbs / relative).resolve()
        if self.thumbs.resolve() not in candidate.parents or not candidate.is_file():
            return None
        return candidate

    # --- writing (index only) ---------------------------------------------------------------

    def begin(self, video_id: str) -> None:
        """Make ``video_id`` invisible and remove every row and thumbnail it had."""
        where = f"video_id = {_sql(video_id)}"
        self.videos_table.delete(where)
        self._committed = None
        self.text_table.delete(where)
        self.visual_table.delete(where)
        self.words_table.delete(where)
        shutil.rmtree(self.thumbs / video_id, ignore_errors=True)

    def add_rows(self, text_rows: list[dict], visual_rows: list[dict], words_rows: list[dict] = ()) -> None:
        for table, rows in ((self.text_table, text_rows), (self.visual_table, visual_rows),
                            (self.words_table, words_rows)):
            if rows:
                table.add(rows)

    def commit(self, record: VideoRecord) -> None:
        """The last write of a video: from now on searches see it."""
        row = asdict(record)
        row["details"] = json.dumps(record.details)
        self.videos_table.add([row])
        self._committed = None

    def remove(self, video_id: str) -> None:
        self.begin(video_id)

    def finish_writes(self) -> None:
        """After a run: (re)build the full-text index, build vector indexes on big tables, and
        compact the tables (which also brings existing indexes up to date)."""
        if self.text_table.count_rows() > 0:
            create_text_index(self.text_table)
        for table in (self.text_table, self.visual_table, self.words_table):
            self.ensure_vector_index(table)
        for table in (self.videos_table, self.text_table, self.visual_table, self.words_table):
            try:
                table.optimize()
            except Exception as err:  # compaction is an optimisation; a failure must not lose the run
                logger.warning("compacting %s failed: %s", table.name, err)

    def ensure_vector_index(self, table, min_rows: int = ANN_MIN_ROWS) -> bool:
        """Build an IVF cosine index on ``table`` once it has ``min_rows`` rows (once: later
        rows are folded in by ``optimize``). Returns whether the table has one."""
        indexes = table.list_indices()
        num_rows = table.count_rows()
        if num_rows < min_rows:
            return False
        if not any("modality" in getattr(index, "columns", []) for index in indexes):
            # searches filter on modality before the vector search; a bitmap makes that filter
            # a lookup instead of a scan of every row (66 -> 11 ms a query at a million rows)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table.create_scalar_index("modality", index_type="BITMAP", replace=True)
        if any(getattr(index, "index_type", "").upper().startswith("IVF") for index in indexes):
            return True
        options = {}
        if ANN_INDEX_TYPE == "IVF_PQ":
            dim = table.schema.field("vector").type.list_size
            options["num_sub_vectors"] = next(n for n in (dim // 8, dim // 4, dim // 2, dim, 1) if n and dim % n == 0)
        table.create_index(metric="cosine", vector_column_name="vector", index_type=ANN_INDEX_TYPE,
                           num_partitions=max(1, int(np.sqrt(num_rows))), **options)
        return True

    def has_fts(self) -> bool:
        try:
            return any(getattr(index, "index_type", "") == "FTS" for index in self.text_table.list_indices())
        except Exception:
            return False

    # --- searching ---------------------------------------------------------------------------

    def search_text(self, vector: np.ndarray, query: str, *, modalities: tuple[str, ...], limit: int) -> list[dict]:
        """Hybrid search over the text table: vector similarity and full-text (BM25), fused by
        reciprocal rank; rows of uncommitted videos are dropped. Each row gets ``score``."""
        if self.text_table.count_rows() == 0:
            return []
        where = None
        if set(modalities) != set(TEXT_MODALITIES):
            where = "modality IN (" + ", ".join(_sql(m) for m in modalities) + ")"
        if query.strip() and self.has_fts():
            search = (self.text_table.search(query_type="hybrid").vector(vector.astype(np.float32).tolist())
                      .text(query))
        else:
            search = self.text_table.search(vector.astype(np.float32).tolist()).metric("cosine")
        if where:
            search = search.where(where, prefilter=True)
        rows = _tuned(search).select(RESULT_COLUMNS).limit(limit).to_list()
        for row in rows:
            row["score"] = (float(row.get("_relevance_score", 0.0)) if "_relevance_score" in row
                            else 1.0 - float(row["_distance"]))
        return self.visible(rows)

    def search_visual(self, vector: np.ndarray, *, modality: str = "visual", limit: int,
                      exclude_video: str | None = None) -> list[dict]:
        """Nearest visual rows (``visual`` segments or ``video`` means) by cosine similarity."""
        if self.visual_table.count_rows() == 0:
            return []
        where = f"modality = {_sql(modality)}"
        if exclude_video is not None:
            where += f" AND video_id != {_sql(exclude_video)}"
        search = self.visual_table.search(vector.astype(np.float32).tolist()).metric("cosine")
        rows = _tuned(search.where(where, prefilter=True)).select(RESULT_COLUMNS).limit(limit).to_list()
        for row in rows:
            row["score"] = 1.0 - float(row["_distance"])
        return self.visible(rows)

    def search_words(self, vector: np.ndarray, *, limit: int, exclude_video: str | None = None) -> list[dict]:
        """Videos whose mean text vector (``words`` rows) is nearest ``vector``, by cosine."""
        if self.words_table.count_rows() == 0:
            return []
        search = self.words_table.search(vector.astype(np.float32).tolist()).metric("cosine")
        if exclude_video is not None:
            search = search.where(f"video_id != {_sql(exclude_video)}", prefilter=True)
        rows = _tuned(search).select(RESULT_COLUMNS).limit(limit).to_list()
        for row in rows:
            row["score"] = 1.0 - float(row["_distance"])
        return self.visible(rows)

    def words_vector(self, video_id: str) -> np.ndarray | None:
        """The mean text vector of one video, None when it says and shows no text."""
        rows = self.words_table.search().where(f"video_id = {_sql(video_id)}").limit(1).to_list()
        rows = self.visible(rows)
        return np.asarray(rows[0]["vector"], dtype=np.float32) if rows else None

    def visual_rows(self, video_id: str) -> list[dict]:
        """Every visual row of one video (its segments and its mean)."""
        return self.visual_table.search().where(f"video_id = {_sql(video_id)}").limit(1_000_000).to_list()


def _tuned(search):
    """The ANN settings of every vector query: partitions probed, and (for PQ, whose distances
    are approximate) exact re-ranking of extra candidates."""
    search = search.nprobes(NPROBES)
    return search.refine_factor(REFINE_FACTOR) if ANN_INDEX_TYPE == "IVF_PQ" else search


def create_text_index(table) -> None:
    """(Re)build the BM25 full-text index on the ``text`` column."""
    with warnings.catch_warnings():
        # lancedb 0.40 marks create_fts_index deprecated, but its replacement does not build an
        # index that full-text queries accept yet
        warnings.simplefilter("ignore")
        table.create_fts_index("text", replace=True)


def _record(row: dict) -> VideoRecord:
    row = dict(row)
    row["details"] = json.loads(row.get("details") or "{}")
    return VideoRecord(**row)


def _sql(value: str) -> str:
    """A SQL string literal (single quotes doubled)."""
    return "'" + str(value).replace("'", "''") + "'"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
