"""Quality of every learning task on SynthWorld, next to the classic seed_baseline.

Generates SynthWorld sets (train 3000 / val 300 / test 600, and the same sizes with the
compositional split), trains each task's default preset and seed_baseline through the CLI
(`duomo train`, each run capped at --minutes of training), scores the test split with
`duomo eval --json`, and writes bench/out/quality.json and bench/out/quality.md.

    python bench/quality.py                 # everything (about 2 hours on 2 cores at 12 min a run)
    python bench/quality.py --runs qa qa_seed_baseline --minutes 10
    python bench/quality.py --runs retrieval retrieval_moment --threads 1
    python bench/quality.py --runs summarize summarize_unsupervised --threads 1 --world data/quality/world/manifest.jsonl
    python bench/quality.py --report-only   # rebuild the table from finished runs

A finished run (its eval JSON present) is reused, so an interrupted bench picks up where it
stopped; --fresh retrains.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "quality"
CACHE = ""  # feature cache folder when --world names a manifest elsewhere (left untouched)
DATA = ROOT / "data" / "quality"
SIZES = {"train": 3000, "val": 300, "test": 600}

# name -> (task, preset, dataset)
RUNS = {
    "qa": ("qa", "qa", "world"),
    "qa_seed_baseline": ("qa", "qa_seed_baseline", "world"),
    "caption": ("caption", "caption", "world"),
    "caption_seed_baseline": ("caption", "caption_seed_baseline", "world"),
    "dialog": ("dialog", "dialog", "world"),
    "classify": ("classify", "classify", "world"),
    "qa_compositional": ("qa", "qa", "compositional"),
    "retrieval": ("retrieval", "retrieval", "world"),
    "retrieval_moment": ("retrieval", "retrieval_moment", "world"),
    "summarize": ("summarize", "summarize", "world"),
}

# metric -> (minimum, which run, where in the eval JSON)
TARGETS = [
    ("qa accuracy", 0.95, "qa", ("accuracy",)),
    ("qa worst question family", 0.90, "qa", ("min_by_type",)),
    ("qa compositional accuracy", 0.85, "qa_compositional", ("accuracy",)),
    ("caption CIDEr", 2.0, "caption", ("cider",)),
    ("caption BLEU-4", 0.5, "caption", ("bleu_4",)),
    ("dialog accuracy, turns 2+", 0.90, "dialog", ("accuracy_turn2plus",)),
    ("classify top-1", 0.95, "classify", ("top1",)),
    ("retrieval text-to-video R@1", 0.80, "retrieval", ("t2v_r1",)),
    ("moment R@1 at IoU 0.5", 0.70, "retrieval_moment", ("r1_iou0.5",)),
    ("summarize F1 (15% knapsack)", 0.60, "summarize", ("f1",)),
]

# label, (run, key) that must be higher than (run, key)
ORDERINGS = [
    ("summarize F1 > unsupervised", ("summarize", "f1"), ("summarize_unsupervised", "f1")),
    ("unsupervised F1 > uniform", ("summarize_unsupervised", "f1"), ("summarize_unsupervised", "uniform_f1")),
    ("unsupervised F1 > random", ("summarize_unsupervised", "f1"), ("summarize_unsupervised", "random_f1")),
]


def duomo(*args: str, log: Path | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "duomo.cli.main", *args]
    print("$ duomo " + " ".join(args), flush=True)
    if log is None:
        return subprocess.run(cmd, check=True, capture_output=True, text=True)
    with open(log, "w") as handle:
        return subprocess.run(cmd, check=True, stdout=handle, stderr=subprocess.STDOUT, text=True)


def make_world(name: str, split: str, seed: int) -> Path:
    manifest = DATA / name / "manifest.jsonl"
    if manifest.exists():
        return manifest
    total = sum(SIZES.values())
    duomo("synth", str(DATA / name), "--videos", str(total), "--seed", str(seed), "--split", split,
          "--val-fraction", repr(SIZES["val"] / total), "--test-fraction", repr(SIZES["test"] / total))
    return manifest


def run_one(name: str, manifests: dict[str, Path], minutes: float, epochs: int | None, fresh: bool, threads: int) -> dict:
    task, preset, world = RUNS[name]
    run_dir = OUT / name
    result_file = run_dir / "eval_test.json"
    if result_file.exists() and not fresh:
        return json.loads(result_file.read_text())
    extra = ["--set", f"data.cache_dir={CACHE}"] if CACHE else []
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    started = time.monotonic()
    if epochs:
        extra += ["--epochs", str(epochs)]
    duomo("train", task, "--data", str(manifests[world]), "--out", str(run_dir), "--config", preset,
          "--max-minutes", str(minutes), "--set", f"train.num_threads={threads}", *extra,
          log=run_dir.parent / f"{name}.train.log")
    train_sec = time.monotonic() - started
    evaluated = duomo("eval", str(run_dir), "--data", str(manifests[world]), "--split", "test", "--json")
    result = json.loads(evaluated.stdout)
    if "accuracy_by_type" in result:
        result["min_by_type"] = min(result["accuracy_by_type"].values())
    history = (run_dir / "metrics.csv").read_text().splitlines()
    result.update({"run": name, "preset": preset, "world": world, "train_wall_sec": round(train_sec, 1),
                   "epochs_done": len(history) - 1})
    result_file.write_text(json.dumps(result, indent=1))
    return result


# runs that train nothing: name -> function(manifest) -> result dict
def unsupervised_summary(manifest: Path) -> dict:
    """F1 of the unsupervised importance (duomo summarize's default scorer) on the test split,
    under the same protocol as ``duomo eval`` of a summarize run, with the uniform and random
    baselines on the same videos. Signals are read on the protocol's 0.1 s grid."""
    import numpy as np

    from duomo.config import load_config
    from duomo.data.datasets import TaskVocab, make_rows, split_records
    from duomo.data.manifest import load_manifest
    from duomo.eval import metrics
    from duomo.eval.evaluate import SUMMARY_BUDGET, SUMMARY_STEP_SEC, summary_protocol, summary_scores
    from duomo.summarize.importance import step_signals, unsupervised_importance
    from duomo.text.tokenize import WordTokenizer

    started = time.monotonic()
    cfg = load_config("summarize", None, [f"data.manifest={manifest}"])
    vocab = TaskVocab(WordTokenizer.build([], min_count=1))  # summarize rows read no text
    f1, rows = [], []
    for record in split_records(load_manifest(manifest), "test"):
        for row in make_rows(record, cfg, vocab, train=False):
            truth, segments = summary_protocol(row)
            scores = unsupervised_importance(step_signals(record.video_path, len(truth), SUMMARY_STEP_SEC))
            f1.append(metrics.summary_f1(scores, truth, segments, SUMMARY_BUDGET))
            rows.append((row, scores))
    baselines = summary_scores(rows)
    return {"task": "summarize", "f1": float(np.mean(f1)), "uniform_f1": baselines["uniform_f1"],
            "random_f1": baselines["random_f1"], "n": len(f1), "run": "summarize_unsupervised", "preset": "-",
            "world": "world", "train_wall_sec": round(time.monotonic() - started, 1), "epochs_done": 0}


UNTRAINED = {"summarize_unsupervised": unsupervised_summary}


def fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def report(results: dict[str, dict]) -> str:
    lines = ["| run | task | metric | value | seed_baseline | gain | train time |", "|---|---|---|---|---|---|---|"]
    for name, res in results.items():
        if name.endswith("seed_baseline"):
            continue
        base = results.get(f"{res['task']}_seed_baseline") if res.get("world") == "world" else None
        keys = [k for k, v in res.items() if isinstance(v, float) and k not in ("train_wall_sec", "loss")]
        for key in keys:
            b = base.get(key) if base else None
            gain = f"{res[key] - b:+.3f}" if isinstance(b, float) and not math.isnan(b) else ""
            lines.append(f"| {name} | {res['task']} | {key} | {fmt(res[key])} | {fmt(b)} | {gain} | "
                         f"{res['train_wall_sec'] / 60:.1f} min, {res['epochs_done']} epochs |")
        for group in ("accuracy_by_type", "accuracy_by_turn"):
            for sub, value in res.get(group, {}).items():
                b = base.get(group, {}).get(sub) if base else None
                gain = f"{value - b:+.3f}" if isinstance(b, float) else ""
                lines.append(f"| {name} | {res['task']} | {group}[{sub}] | {fmt(value)} | {fmt(b)} | {gain} | |")
    lines += ["", "| target | needed | measured | pass |", "|---|---|---|---|"]
    for label, minimum, name, path in TARGETS:
        value = results.get(name, {})
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        ok = isinstance(value, float) and value >= minimum
        lines.append(f"| {label} | ≥ {minimum} | {fmt(value)} | {'PASS' if ok else 'FAIL'} |")
    for label, higher, lower in ORDERINGS:
        a, b = _value(results, *higher), _value(results, *lower)
        ok = isinstance(a, float) and isinstance(b, float) and a > b
        lines.append(f"| {label} | > {fmt(b)} | {fmt(a)} | {'PASS' if ok else 'FAIL'} |")
    return "\n".join(lines)


def _value(results: dict, name: str, key: str):
    return results.get(name, {}).get(key)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", default=[*RUNS, *UNTRAINED], choices=[*RUNS, *UNTRAINED])
    parser.add_argument("--minutes", type=float, default=20.0, help="training time cap per run (the target allows 20)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs per run (the schedule's length; default: each preset's train.epochs)")
    parser.add_argument("--fresh", action="store_true", help="retrain runs that already finished")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads per run (0 = default); 1 lets two benches share 2 cores in parallel")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--world", type=Path, help="an existing SynthWorld manifest.jsonl to use as the world set "
                        "(read only: decoded features are cached under bench/out/quality/cache)")
    args = parser.parse_args()
    global CACHE
    if args.world:
        CACHE = str(OUT / "cache")
    OUT.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    results: dict[str, dict] = {}
    if not args.report_only:
        manifests = {"world": args.world or make_world("world", "random", 1)}
        if any(name in RUNS and RUNS[name][2] == "compositional" for name in args.runs):
            manifests["compositional"] = make_world("compositional", "compositional", 2)
        for name in args.runs:
            if name in UNTRAINED:
                result_file = OUT / name / "eval_test.json"
                if args.fresh or not result_file.exists():
                    result_file.parent.mkdir(parents=True, exist_ok=True)
                    result_file.write_text(json.dumps(UNTRAINED[name](manifests["world"]), indent=1))
                results[name] = json.loads(result_file.read_text())
            else:
                results[name] = run_one(name, manifests, args.minutes, args.epochs, args.fresh, args.threads)
            print(json.dumps({k: v for k, v in results[name].items() if not isinstance(v, dict)}), flush=True)
    for name in [*RUNS, *UNTRAINED]:
        f = OUT / name / "eval_test.json"
        if name not in results and f.exists():
            results[name] = json.loads(f.read_text())
    table = report(results)
    (OUT.parent / "quality.md").write_text(table + "\n")
    (OUT.parent / "quality.json").write_text(json.dumps(results, indent=1))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
