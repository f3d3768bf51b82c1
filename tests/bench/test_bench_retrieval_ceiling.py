"""bench/retrieval_ceiling.py: the ideal ranking's R@1 by hand on made-up odds, wording fixed but
content random, and the script end to end on a tiny SynthWorld (its JSON line)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from duomo.synth.scene import SynthConfig
from duomo.synth.world import generate_world
from tests.helpers.bench import load_bench

BENCH = Path(__file__).resolve().parents[2] / "bench" / "retrieval_ceiling.py"


def test_ceiling_by_hand():
    bench = load_bench("retrieval_ceiling")
    # video 0 alone says "a": 1; "b" fits videos 1 and 2 equally: each 1/2; video 2's "c" is its own
    odds = [{"a": 1.0}, {"b": 1.0}, {"b": 0.5, "c": 0.5}]
    # video 1: "b" is likelier from video 1 (1.0 against 0.5): 1; video 2: "b" never (0), "c" 1 -> 0.5 x 0 + 0.5 x 1
    assert bench.ceiling(odds) == pytest.approx((1.0 + 1.0 + 0.5) / 3)
    assert bench.ceiling([{"a": 1.0}, {"a": 1.0}]) == pytest.approx(0.5)  # two videos, one description: a coin


def test_fixed_wording_takes_the_first_string_and_leaves_the_rest_random():
    bench = load_bench("retrieval_ceiling")
    rng = bench.FixedWording(0)
    assert {rng.choice(["disc", "circle"]) for _ in range(20)} == {"disc"}
    assert {rng.choice([("sink", "sinks"), ("drop", "drops")]) for _ in range(20)} == {("sink", "sinks")}
    assert {rng.choice([1, 2, 3]) for _ in range(50)} == {1, 2, 3}


def test_script_prints_the_ceiling_of_a_tiny_world(tmp_path):
    generate_world(tmp_path / "world", SynthConfig(num_videos=12, seed=0, size=32, fps=5, min_duration_sec=2.0,
                                                   max_duration_sec=3.0))
    done = subprocess.run([sys.executable, str(BENCH), "--world", str(tmp_path / "world"), "--split", "train",
                           "--samples", "5", "--out", str(tmp_path / "out")], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["split"] == "train" and result["samples"] == 5 and result["videos"] >= 6
    assert 0.0 < result["ceiling_t2v_r1"] <= 1.0
    assert json.loads((tmp_path / "out" / "retrieval_ceiling.json").read_text()) == result
