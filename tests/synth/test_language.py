"""SynthWorld language, checked on annotations alone (no rendering): contract, balance, unambiguity."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from duomo.data.manifest import load_manifest, write_manifest
from duomo.synth.language import VERBS, _references
from duomo.synth.scene import ACTIONS, COLORS, HELD_OUT, SHAPES, SynthConfig, sample_scene
from duomo.data.manifest import answer_balance
from duomo.synth.world import sample_records

CONFIG = SynthConfig(num_videos=660, seed=21)
FAMILIES = ("object", "color", "shape", "action", "count", "order", "exist", "sound", "shot")


@pytest.fixture(scope="module")
def records():
    return sample_records(CONFIG)


def test_rows_pass_the_manifest_loader(records, tmp_path):
    loaded = load_manifest(write_manifest(tmp_path / "manifest.jsonl", records[:50]), check_files=False)
    assert [r.video_id for r in loaded] == [r["id"] for r in records[:50]]
    assert loaded[0].extra["importance"] == records[0]["importance"]


def test_every_video_has_the_full_contract(records):
    for row in records:
        assert 3 <= len(row["captions"]) <= 5 and len(set(row["captions"])) == len(row["captions"])
        assert len(row["qa"]) >= 6
        assert row["labels"][0] == min(row["events"], key=lambda e: e["start"])["action"]
        assert set(row["labels"]) == {e["action"] for e in row["events"]}
        assert row["shots"][0] == 0.0
        assert all(s * row["fps"] == round(s * row["fps"]) for s in row["shots"])  # cuts on frame boundaries
        assert len(row["importance"]) == math.ceil(row["duration"])
        assert all(0 <= x <= 1 for x in row["importance"])
        assert sorted((s["start"], s["end"]) for s in row["segments"]) == sorted((e["start"], e["end"]) for e in row["events"])
        assert len(row["dialog"]) == 1 and 3 <= len(row["dialog"][0]) <= 4
        for qa in row["qa"]:
            assert qa["type"] in FAMILIES and qa["question"].endswith("?")
            if "choices" in qa:
                assert len(qa["choices"]) == 4 == len(set(qa["choices"])) and qa["answer"] in qa["choices"]
            allowed = {"exist": {"yes", "no"}, "shot": {"yes", "no"}, "order": {"before", "after"},
                       "count": {"1", "2", "3"}, "shape": set(SHAPES), "sound": set(SHAPES), "color": set(COLORS),
                       "action": {a.replace("_", " ") for a in ACTIONS}}.get(qa["type"])
            assert allowed is None or qa["answer"] in allowed, qa


def test_every_family_is_asked_and_balanced(records):
    balance = answer_balance((qa["type"], qa["answer"]) for row in records for qa in row["qa"])
    assert set(balance) == set(FAMILIES)
    for family, b in balance.items():
        # the bar `duomo data check` uses: the top answer at most 1.5x a uniform answer's share
        assert b["majority_share"] <= 1.5 / b["num_answers"] and b["is_balanced"], (family, b)
    for family in ("exist", "shot", "order"):
        assert balance[family]["majority_share"] < 0.54, balance[family]
    assert balance["object"]["num_answers"] == 24
    assert balance["count"]["majority_share"] < 0.34 + 0.01


def test_labels_are_balanced(records):
    counts = Counter(row["labels"][0] for row in records)
    assert set(counts) == set(ACTIONS) and max(counts.values()) == min(counts.values()) == 60


def test_choice_positions_are_uniform(records):
    positions = Counter(qa["choices"].index(qa["answer"]) for row in records for qa in row["qa"] if "choices" in qa)
    total = sum(positions.values())
    assert total > 1000 and all(abs(n / total - 0.25) < 0.03 for n in positions.values())


def test_importance_is_higher_where_events_happen(records):
    busy, idle = [], []
    for row in records:
        for second, score in enumerate(row["importance"]):
            active = any(e["start"] < second + 1 and e["end"] > second for e in row["events"])
            (busy if active else idle).append(score)
    assert min(busy) > max(idle)


def _matches(phrase: str, obj) -> bool:
    """Independent reading of a reference: does ``phrase`` describe ``obj``? (any colour it ever shows)."""
    head, _, verb = phrase.partition(" that ")
    words = head.split()
    if words[-1] in SHAPES and words[-1] != obj.shape:
        return False
    if words[0] in COLORS and words[0] not in obj.colors:
        return False
    if not verb:
        return True
    for event in obj.events:
        for action in [event.action] + (["move_left", "move_right"] if event.wall in ("left", "right") else [])\
                + (["move_up", "move_down"] if event.wall in ("top", "bottom") else []):
            text = VERBS[action][0][1].format(wall=event.wall, color=event.new_color, old=obj.color)
            if text == verb:
                return True
    return False


def test_every_reference_names_exactly_one_object():
    checked = 0
    for i in range(200):
        scene = sample_scene(CONFIG, i)
        for idx, obj in enumerate(scene.objects):
            for avoid in (None, "color", "shape", "action"):
                for phrase in _references(scene, idx, avoid):
                    assert _matches(phrase, obj), phrase
                    assert sum(_matches(phrase, o) for o in scene.objects) == 1, (scene.video_id, phrase)
                    if avoid:
                        assert avoid != "color" or not any(c in phrase for c in COLORS)
                        assert avoid != "shape" or not any(s in phrase for s in SHAPES)
                    checked += 1
    assert checked > 1000


def test_compositional_train_text_never_names_a_held_out_pair():
    config = SynthConfig(num_videos=300, seed=5, split="compositional")
    for row in sample_records(config):
        if row["split"] == "test":
            continue
        text = " ".join(row["captions"] + [q["question"] + " " + q["answer"] + " " + " ".join(q.get("choices", []))
                                            for q in row["qa"]])
        assert not any(f"{c} {s}" in text for c, s in HELD_OUT), row["id"]
