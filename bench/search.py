"""Search benchmark: query latency and recall of the library store at a million segments.

    .venv/bin/python bench/search.py                    # 1,000,000 text segments (384-d), 300 queries
    .venv/bin/python bench/search.py --rows 100000      # smaller
    .venv/bin/python bench/search.py --fresh            # rebuild the table

Builds (once, under bench/out/search-<rows>/) a library whose ``text`` table holds ``rows``
segments of 10,000 committed videos: clustered unit vectors of MiniLM's width (384) and short
texts of Zipf-distributed words, then the IVF vector index and the full-text index that
``duomo index`` builds. It then times ``LibraryStore.search_text`` as ``duomo search`` calls it
(committed-video filter included): vector-only queries and hybrid (vector + BM25) queries,
k = 10. Recall@10 compares the vector results against exact cosine top-10 from a NumPy scan of
the same vectors. Latency percentiles are over all queries after a warm-up; the exact scan's
time per query is the baseline. Results go to <out>/search.json and, as one JSON line, to the
end of stdout.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from duomo.store.library import ANN_INDEX_TYPE, NPROBES, LibraryInfo, LibraryStore, create_text_index

OUT_DIR = Path(__file__).resolve().parent / "out"
DIM = 384
NUM_VIDEOS = 10_000
TARGET_P50_MS = 20.0
TARGET_P99_MS = 100.0
TARGET_RECALL = 0.95
VOCAB = 20_000
"""Pseudo-words drawn with Zipf frequencies (like real text) for the segments and the queries."""
WORDS = ("red blue green yellow purple orange circle square triangle star moves jumps grows shrinks rotates "
         "appears vanishes bounces left right up down small large fast slow city street car person dog cat "
         "music speech news sport game goal crowd river mountain sky night day kitchen cook recipe lesson "
         "math science history market price sale today tomorrow weather rain snow sun wind").split()


def clustered_vectors(rng: np.random.Generator, n: int, centers: np.ndarray) -> np.ndarray:
    """Unit vectors scattered around random cluster centres (embeddings are clustered, not uniform)."""
    which = rng.integers(0, len(centers), size=n)
    vectors = centers[which] + 0.55 * rng.standard_normal((n, DIM)).astype(np.float32) / np.sqrt(DIM)
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def build(root: Path, rows: int, seed: int = 0) -> tuple[LibraryStore, np.ndarray, np.ndarray]:
    """The library, the vectors it holds (row order) and the cluster centres."""
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((256, DIM)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    vectors_file = root / "vectors.npy"
    if (root / "done").exists():
        store = LibraryStore(root)
        store.ensure_vector_index(store.text_table)  # indexes added since the table was built
        return store, np.load(vectors_file, mmap_mode="r"), centers
    shutil.rmtree(root, ignore_errors=True)
    info = LibraryInfo(text_model="all-MiniLM-L6-v2", text_dim=DIM, visual_kind="descriptor",
                       visual_model="bench", visual_dim=8)
    store = LibraryStore(root, create=True, info=info)
    all_vectors = np.lib.format.open_memmap(vectors_file, mode="w+", dtype=np.float32, shape=(rows, DIM))
    per_video = rows // NUM_VIDEOS
    batch = 100_000
    started = time.perf_counter()
    words = vocabulary()
    zipf = zipf_weights(len(words))
    for lo in range(0, rows, batch):
        hi = min(rows, lo + batch)
        vectors = clustered_vectors(rng, hi - lo, centers)
        all_vectors[lo:hi] = vectors
        ids = np.arange(lo, hi)
        video = ids // max(per_video, 1) % NUM_VIDEOS
        picks = rng.choice(len(words), size=(hi - lo, 8), p=zipf)
        texts = [" ".join(row) for row in words[picks]]
        table = pa.table({
            "id": [f"v{v}:speech:{i}" for v, i in zip(video, ids)],
            "video_id": [f"v{v}" for v in video], "content_hash": ["h"] * (hi - lo), "path": [f"/videos/{v}.mp4" for v in video],
            "start": (ids % max(per_video, 1) * 5.0).astype(np.float64), "end": (ids % max(per_video, 1) * 5.0 + 5.0).astype(np.float64),
            "modality": ["speech"] * (hi - lo), "text": texts, "segment_idx": (ids % max(per_video, 1)).astype(np.int32),
            "thumbnail": [""] * (hi - lo), "words": ["[]"] * (hi - lo),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel(), type=pa.float32()), DIM),
        }, schema=store.text_table.schema)
        store.text_table.add(table)
        print(f"  wrote {hi:,} / {rows:,} rows", flush=True)
    all_vectors.flush()
    store.videos_table.add([{
        "video_id": f"v{v}", "path": f"/videos/{v}.mp4", "content_hash": "h", "size": 0, "mtime": 0.0,
        "duration_sec": 0.0, "width": 0, "height": 0, "fps": 0.0, "has_audio": True, "num_segments": per_video,
        "indexed_at": 0.0, "details": "{}"} for v in range(NUM_VIDEOS)])
    written = time.perf_counter() - started
    tic = time.perf_counter()
    create_text_index(store.text_table)
    fts_sec = time.perf_counter() - tic
    tic = time.perf_counter()
    store.ensure_vector_index(store.text_table)
    ann_sec = time.perf_counter() - tic
    (root / "build.json").write_text(json.dumps({"write_sec": written, "fts_index_sec": fts_sec, "ann_index_sec": ann_sec}))
    (root / "done").write_text("ok")
    return LibraryStore(root), np.load(vectors_file, mmap_mode="r"), centers


def vocabulary() -> np.ndarray:
    """VOCAB words: the real ones first (the most frequent), then made-up ones."""
    made_up = [f"w{i:05d}" for i in range(VOCAB - len(WORDS))]
    return np.array(list(WORDS) + made_up)


def zipf_weights(n: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1)
    return weights / weights.sum()


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--fresh", action="store_true", help="rebuild the table")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args()
    root = args.out / f"search-{args.rows}"
    if args.fresh:
        shutil.rmtree(root, ignore_errors=True)
    print(f"library with {args.rows:,} segments in {root} ...", flush=True)
    store, vectors, centers = build(root, args.rows)
    build_info = json.loads((root / "build.json").read_text())
    rng = np.random.default_rng(123)
    queries = clustered_vectors(rng, args.queries, centers)
    vocab = vocabulary()
    words = rng.choice(len(vocab), size=(args.queries, 2), p=zipf_weights(len(vocab)))
    query_texts = [" ".join(vocab[w]) for w in words]

    # exact top-10 by cosine (vectors are unit length): the ground truth and the baseline time
    tic = time.perf_counter()
    truth = np.empty((args.queries, 10), dtype=np.int64)
    chunk = 50
    for lo in range(0, args.queries, chunk):
        scores = np.asarray(vectors) @ queries[lo:lo + chunk].T  # (rows, q)
        top = np.argpartition(-scores, 10, axis=0)[:10].T
        order = np.take_along_axis(scores.T, top, axis=1).argsort(axis=1)[:, ::-1]
        truth[lo:lo + chunk] = np.take_along_axis(top, order, axis=1)
    batched_exact_ms = (time.perf_counter() - tic) * 1000 / args.queries
    exact_times = []  # one query at a time, as a search without an index runs
    for i in range(min(20, args.queries)):
        tic = time.perf_counter()
        scores = np.asarray(vectors) @ queries[i]
        np.argpartition(-scores, 10)[:10]
        exact_times.append((time.perf_counter() - tic) * 1000)
    exact_ms = statistics.median(exact_times)

    def query(i: int, hybrid: bool) -> tuple[float, list[int]]:
        tic = time.perf_counter()
        rows = store.search_text(queries[i], query_texts[i] if hybrid else "", modalities=("speech",), limit=10)
        return (time.perf_counter() - tic) * 1000, [int(r["id"].rsplit(":", 1)[1]) for r in rows]

    for i in range(min(50, args.queries)):  # warm-up: the index's partitions into the page cache
        query(i, False)
        query(i, True)
    vector_ms, hybrid_ms, vector_found = [], [], []
    for i in range(args.queries):  # interleaved, so both kinds share the machine's load
        ms, found = query(i, False)
        vector_ms.append(ms)
        vector_found.append(found)
        hybrid_ms.append(query(i, True)[0])
    recall = statistics.mean(len(set(f) & set(t)) / 10 for f, t in zip(vector_found, truth.tolist()))
    result = {
        "rows": args.rows, "dim": DIM, "queries": args.queries, "k": 10,
        "vector_p50_ms": percentile(vector_ms, 50), "vector_p99_ms": percentile(vector_ms, 99),
        "hybrid_p50_ms": percentile(hybrid_ms, 50), "hybrid_p99_ms": percentile(hybrid_ms, 99),
        "recall_at_10": recall, "exact_numpy_ms_per_query": exact_ms,
        "exact_numpy_batched_ms_per_query": batched_exact_ms,
        "speedup_vs_exact_p50": exact_ms / percentile(vector_ms, 50),
        "build": build_info,
    }
    result["pass"] = {
        "p50": result["vector_p50_ms"] <= TARGET_P50_MS and result["hybrid_p50_ms"] <= TARGET_P50_MS,
        "p99": result["vector_p99_ms"] <= TARGET_P99_MS and result["hybrid_p99_ms"] <= TARGET_P99_MS,
        "recall": recall >= TARGET_RECALL,
    }
    print()
    print(f"| query | p50 ms | p99 ms | target |")
    print(f"|---|---|---|---|")
    print(f"| vector ({ANN_INDEX_TYPE}, nprobes {NPROBES}) | {result['vector_p50_ms']:.1f} | {result['vector_p99_ms']:.1f} | p50 <= {TARGET_P50_MS:.0f}, p99 <= {TARGET_P99_MS:.0f} |")
    print(f"| hybrid (vector + BM25, RRF) | {result['hybrid_p50_ms']:.1f} | {result['hybrid_p99_ms']:.1f} | same |")
    print(f"| exact NumPy scan, one query (baseline) | {exact_ms:.1f} | | |")
    print(f"| exact NumPy scan, 50 queries at once, per query | {batched_exact_ms:.1f} | | |")
    print(f"\nrecall@10 of the vector index against exact search: {recall:.3f} (target >= {TARGET_RECALL})")
    print(f"build: write {build_info['write_sec']:.0f} s, FTS index {build_info['fts_index_sec']:.0f} s, "
          f"{ANN_INDEX_TYPE} index {build_info['ann_index_sec']:.0f} s")
    (args.out / "search.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
