"""Frame-encoder benchmark: how many epochs a from-scratch frame CNN needs to see shapes and colours.

    .venv/bin/python bench/frame_encoder.py                          # 1,500 SynthWorld videos, 3 variants, 6 epochs
    .venv/bin/python bench/frame_encoder.py --variants conv luma     # some variants only
    .venv/bin/python bench/frame_encoder.py --videos 40 --epochs 1   # smoke test
    .venv/bin/python bench/frame_encoder.py --probe bench/out/quality/qa   # what a run's frozen encoder sees
    .venv/bin/python bench/frame_encoder.py --videos 1000 --pretrain data/quality/world/manifest.jsonl \
        --pretrain-epochs 24 --set train.pretrain_video_batch=16   # what pre-training teaches

Each variant is a ``cnn_small`` (``VARIANTS``) with a linear layer over its features, trained on
single frames to say which shapes and which colours are visible in each (multi-label binary
cross-entropy, AdamW at 1e-3, batches of 128). The labels are SynthWorld's exact ground truth
per frame (``object_state`` at the frame's time, in the frame's shot, opacity at least 0.9), not
words of a caption (frames with an object half faded or between two colours are left out).
After each epoch it prints, on the validation frames, the share of frames whose shapes (and
colours, and colour-shape pairs such as "red star") are all named right and the per-class
accuracy, so one reads how soon each variant learns shape next to colour.

With ``--probe RUN_DIR`` it trains nothing but probes (the same labels, the same scores) on the
frozen frame encoder of a trained run (its ``best.pt``): linear ones on its output features,
the ones a frozen encoder's task heads see, and on each stack's pooled grid (``cnn_small``
only), and (``cnn_small`` with ``global_max``) a small MLP run on each grid cell alone, maximum
over the cells, then linear (``cell_probe``: can which colour goes with which shape be read
from what sits at one place?), next to the same probes on the encoder at its random start. It
tells whether pre-training taught the encoder shapes before a task's epochs are spent on top
of it. With ``--pretrain MANIFEST`` it first pre-trains the qa preset's frame encoder on that
manifest's train split, as ``duomo train`` does (``duomo.train.pretrain``, ``--pretrain-epochs``
passes, ``--set KEY=VALUE`` changing the preset as ``duomo train --set`` does, e.g.
``train.pretrain_video_batch``), then probes it the same way (no random start).
The SynthWorld set (6 frames a video, 64 px) is generated once under
bench/out/frame_encoder/ (``--out``). Results go to
<out>/frame_encoder.json (<out>/probe.json) and, one JSON line per variant (probe), to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from duomo.models.encoders.cnn import SmallCNNEncoder
from duomo.synth.scene import COLORS, SHAPES, SynthConfig, object_state, sample_scene
from duomo.synth.world import generate_world
from duomo.video import sample_uniform

VARIANTS = {
    "patch": {"channels": (16, 32, 64, 96), "global_max": True, "stem": "patch"},
    "conv": {"channels": (16, 32, 64, 96), "global_max": True, "stem": "conv"},
    "luma": {"channels": (16, 32, 64, 96), "global_max": True, "luma_branch": True, "luma_stem": "conv",
             "luma_remap": True},
}
"""The ``model.video.args`` of each variant (``luma`` is the qa preset's encoder)."""
PAIRS = [f"{c} {s}" for s in SHAPES for c in COLORS]
LABELS = [*SHAPES, *COLORS, *PAIRS]
"""Shapes, colours, and each colour-shape pair ("red star"): naming the pairs asks which colour
goes with which shape, not only which of each are in the frame."""
MIN_ALPHA = 0.1
MAX_ALPHA = 0.9
"""An object at least MAX_ALPHA opaque is shown, one at most MIN_ALPHA is not; frames with one
in between are left out, as are frames with one changing colour (a blend of two)."""
FRAMES_PER_VIDEO = 6
BATCH = 128


def frames_and_labels(config: SynthConfig, root: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, 3, H, W) uint8 frames, (N, shapes + colours) 0/1 labels and an (N,) train mask."""
    frames, labels, train = [], [], []
    for index in tqdm(range(config.num_videos), desc="decode", unit="video"):
        scene = sample_scene(config, index)
        clip = sample_uniform(root / "videos" / f"{scene.video_id}.mp4", FRAMES_PER_VIDEO)
        for frame, frame_idx in zip(clip.frames, clip.frame_idx):
            shot = scene.shot_at(int(frame_idx))
            states = [(obj, object_state(obj, int(frame_idx) / scene.fps)) for obj in scene.objects
                      if obj.shot_idx == shot]
            if any(MIN_ALPHA < s.alpha < MAX_ALPHA or palette_colour(s.rgb) is None for _, s in states):
                continue  # an object half faded in or out, or between two colours: left out
            y = np.zeros(len(LABELS), np.float32)
            for obj, state in states:
                if state.alpha >= MAX_ALPHA:
                    y[SHAPES.index(obj.shape)] = 1.0
                    y[len(SHAPES) + list(COLORS).index(palette_colour(state.rgb))] = 1.0
                    y[len(SHAPES) + len(COLORS) + PAIRS.index(f"{palette_colour(state.rgb)} {obj.shape}")] = 1.0
            frames.append(frame)
            labels.append(y)
            train.append(scene.split == "train")
    x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()
    return x, torch.from_numpy(np.stack(labels)), torch.tensor(train)


def palette_colour(rgb: tuple[float, ...]) -> str | None:
    """The name of the object colour ``rgb`` is (within 8 levels a channel), None for a blend."""
    return next((name for name, ref in COLORS.items() if max(abs(a - b) for a, b in zip(rgb, ref)) <= 8), None)


def scores(logits: torch.Tensor, y: torch.Tensor) -> dict:
    right = (logits > 0) == (y > 0)
    shapes, colors = right[:, : len(SHAPES)], right[:, len(SHAPES) : len(SHAPES) + len(COLORS)]
    pairs = right[:, len(SHAPES) + len(COLORS):]
    return {"shapes_all_right": round(shapes.all(1).float().mean().item(), 3),
            "colors_all_right": round(colors.all(1).float().mean().item(), 3),
            "pairs_all_right": round(pairs.all(1).float().mean().item(), 3),
            "per_class": {name: round(a, 3) for name, a in zip(LABELS, right.float().mean(0).tolist())}}


def run_variant(name: str, data: tuple, epochs: int, seed: int) -> dict:
    x, y, train = data
    torch.manual_seed(seed)
    encoder = SmallCNNEncoder(dim=128, **VARIANTS[name])
    head = torch.nn.Linear(128, len(LABELS))
    optimizer = torch.optim.AdamW([*encoder.parameters(), *head.parameters()], lr=1e-3)
    x_train, y_train, x_val, y_val = x[train], y[train], x[~train], y[~train]
    history = []
    for epoch in range(epochs):
        started = time.monotonic()
        encoder.train()
        order = torch.randperm(len(x_train))
        for start in range(0, len(order), BATCH):
            pick = order[start : start + BATCH]
            loss = F.binary_cross_entropy_with_logits(head(encoder.encode_images(x_train[pick].float() / 255)),
                                                      y_train[pick])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        encoder.eval()
        with torch.no_grad():
            logits = torch.cat([head(encoder.encode_images(x_val[i : i + 256].float() / 255))
                                for i in range(0, len(x_val), 256)])
        history.append({"epoch": epoch + 1, "seconds": round(time.monotonic() - started, 1),
                        "train_loss": round(loss.item(), 4), **scores(logits, y_val)})
        h = history[-1]
        print(f"{name} epoch {h['epoch']}: shapes all right {h['shapes_all_right']:.3f}, colours all right "
              f"{h['colors_all_right']:.3f}, pairs all right {h['pairs_all_right']:.3f} ({h['seconds']:.0f} s)", flush=True)
    return {"variant": name, "args": {k: list(v) if isinstance(v, tuple) else v for k, v in VARIANTS[name].items()},
            "history": history}


def probe_run(run_dir: Path, data: tuple, seed: int) -> dict:
    """Linear-probe scores of ``run_dir``'s frame encoder (trained and at a random start)."""
    from duomo.config import read_config
    from duomo.models.build import build_model
    from duomo.train.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(run_dir / "best.pt")
    cfg = read_config(run_dir / "config.yaml")
    trained = {k.removeprefix("video."): v for k, v in checkpoint["model"].items() if k.startswith("video.")}
    results = {}
    for start in ("random", "trained"):
        torch.manual_seed(seed)
        encoder = build_model(cfg, vocab=["<pad>", "<unk>", "<bos>", "<eos>"], num_outputs=2).video
        if start == "trained":
            encoder.load_state_dict(trained)
        results.update(probe_encoder(encoder.eval(), data, start))
    return results


def probe_encoder(encoder: torch.nn.Module, data: tuple, start: str) -> dict:
    """{"<start> <part>": scores} of the probes on each part of ``encoder``'s features
    (``encoder_features``): the per-cell MLP on the cells, a linear probe on the rest; printed too."""
    results = {}
    for name, features in encoder_features(encoder, data[0]).items():
        if name == "cells":
            r = cell_probe(features, data[1], data[2])
            what = f"MLP per grid cell, max over cells ({features.shape[1]} x {features.shape[2]})"
        else:
            r = linear_probe(features, data[1], data[2])
            what = f"{name} ({features.shape[1]} wide)"
        results[f"{start} {name}"] = r
        print(f"{start} encoder, {what}: shapes all right {r['shapes_all_right']:.3f}, colours all right "
              f"{r['colors_all_right']:.3f}, pairs all right {r['pairs_all_right']:.3f}", flush=True)
    return results


def pretrain_and_probe(manifest: Path, epochs: int | None, overrides: list[str], data: tuple, seed: int) -> dict:
    """Probe scores of the qa preset's frame encoder pre-trained on ``manifest``'s train split
    (``epochs`` passes, the preset's by default), the preset changed by ``overrides``
    ("train.pretrain_video_batch=16", as ``duomo train --set``)."""
    from duomo.config import load_config
    from duomo.data.datasets import build_vocab, split_records
    from duomo.data.manifest import load_manifest
    from duomo.models.build import build_model
    from duomo.train.pretrain import pretrain_frame_encoder
    from duomo.train.run import prepare

    cfg = load_config("qa", None, [*overrides, f"data.manifest={manifest}"])
    records = split_records(load_manifest(manifest), "train")
    vocab = build_vocab(records, cfg)
    stamps, _ = prepare(records, cfg)
    torch.manual_seed(seed)
    model = build_model(cfg, vocab=vocab.tokenizer.words, num_outputs=vocab.num_outputs,
                        frame_words=len(vocab.frame_words))
    note = pretrain_frame_encoder(model, cfg, records, stamps, epochs or cfg.train.pretrain_video_epochs)
    print(f"pre-trained on {note['words']} words for {note['epochs']} epochs in {note['seconds']:.0f} s", flush=True)
    return {"pretrain": note, **probe_encoder(model.video.eval(), data, "pretrained")}


def cell_probe(cells: torch.Tensor, y: torch.Tensor, train: torch.Tensor, hidden: int = 128,
               steps: int = 600) -> dict:
    """A one-hidden-layer MLP run on each grid cell alone (N, cells, width), maximum over the
    cells, then a linear layer: can what sits at one place (colour and shape there) be read as a
    pair, where a linear probe on the pooled vector cannot bind them?"""
    flat = cells[train].flatten(0, 1)
    mean, std = flat.mean(0), flat.std(0) + 1e-5
    f = (cells - mean) / std
    mlp = torch.nn.Sequential(torch.nn.Linear(f.shape[-1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, hidden))
    out = torch.nn.Linear(hidden, y.shape[1])
    params = [*mlp.parameters(), *out.parameters()]
    optimizer = torch.optim.Adam(params, lr=1e-3, weight_decay=1e-4)
    x_train, y_train = f[train], y[train]
    for _ in range(steps):
        loss = F.binary_cross_entropy_with_logits(out(mlp(x_train).amax(dim=1)), y_train)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return scores(out(mlp(f[~train]).amax(dim=1)), y[~train])


def encoder_features(encoder: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """{"output": (N, D)} and, for a ``cnn_small``, each stack's pooled grid ("colour stack",
    "luma stack"), all read from one pass of its trunk, and (with ``global_max``) its grid cells
    ("cells", (N, places, width)) for ``cell_probe``."""
    parts: dict[str, list] = {}
    with torch.no_grad():
        for start in range(0, len(x), 256):
            images = x[start : start + 256].float() / 255
            if not isinstance(encoder, SmallCNNEncoder):
                parts.setdefault("output", []).append(encoder.encode_images(images))
                continue
            trunk = encoder.trunk_images(images)
            parts.setdefault("output", []).append(encoder.project(trunk))
            parts.setdefault("colour stack", []).append(trunk[:, : encoder.stack_channels[0] * encoder.cell_shape[0]])
            if encoder.luma is not None:
                parts.setdefault("luma stack", []).append(encoder.luma_features(trunk))
            if encoder.global_max:
                parts.setdefault("cells", []).append(encoder.cells(trunk)[:, : encoder.place_cells])
    return {name: torch.cat(chunks) for name, chunks in parts.items()}


def linear_probe(features: torch.Tensor, y: torch.Tensor, train: torch.Tensor, steps: int = 600) -> dict:
    """A linear layer fitted (Adam, full batch) on standardized train features; scores on the rest."""
    mean, std = features[train].mean(0), features[train].std(0) + 1e-5
    f = (features - mean) / std
    probe = torch.nn.Linear(f.shape[1], y.shape[1])
    optimizer = torch.optim.Adam(probe.parameters(), lr=1e-3, weight_decay=1e-4)
    for _ in range(steps):
        loss = F.binary_cross_entropy_with_logits(probe(f[train]), y[train])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return scores(probe(f[~train]), y[~train])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--videos", type=int, default=1500)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--probe", type=Path, metavar="RUN_DIR",
                        help="probe this trained run's frozen frame encoder instead of training variants")
    parser.add_argument("--pretrain", type=Path, metavar="MANIFEST",
                        help="pre-train the qa preset's frame encoder on this manifest's train split, then probe it")
    parser.add_argument("--pretrain-epochs", type=int, help="pre-training passes (default: the qa preset's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="change the qa preset for --pretrain, as duomo train --set (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("bench/out/frame_encoder"))
    args = parser.parse_args()
    if args.probe and not (args.probe / "best.pt").is_file():
        parser.error(f"--probe {args.probe}: no best.pt there (give the folder of a trained run)")
    if args.pretrain and not args.pretrain.is_file():
        parser.error(f"--pretrain {args.pretrain}: no such manifest")
    if args.overrides:
        from duomo.config import ConfigError, load_config
        try:
            load_config("qa", None, args.overrides)
        except ConfigError as error:
            parser.error(f"--set: {error}")
    if args.threads:
        torch.set_num_threads(args.threads)
    # seed 7: no quality set uses it, so a probed run has never seen these videos
    config = SynthConfig(num_videos=args.videos, seed=7, val_fraction=0.15, test_fraction=0.0)
    root = args.out / f"world_{args.videos}"
    if not (root / "manifest.jsonl").exists():
        generate_world(root, config, workers=2)
    data = frames_and_labels(config, root)
    print(f"{len(data[0])} frames ({int(data[2].sum())} train); share of frames showing each: "
          + ", ".join(f"{n} {v:.2f}" for n, v in zip(LABELS, data[1].mean(0).tolist())), flush=True)
    if args.pretrain:
        probes = pretrain_and_probe(args.pretrain, args.pretrain_epochs, args.overrides, data, args.seed)
        (args.out / "pretrain_probe.json").write_text(json.dumps({"manifest": str(args.pretrain), "videos": args.videos,
                                                                  "set": args.overrides, "probes": probes},
                                                                 indent=1))
        print(json.dumps({"manifest": str(args.pretrain), "set": args.overrides,
                          **{k: v["shapes_all_right"] for k, v in probes.items() if k != "pretrain"}}))
        return 0
    if args.probe:
        probes = probe_run(args.probe, data, args.seed)
        (args.out / "probe.json").write_text(json.dumps({"run": str(args.probe), "videos": args.videos,
                                                         "probes": probes}, indent=1))
        print(json.dumps({"run": str(args.probe), **{k: v["shapes_all_right"] for k, v in probes.items()}}))
        return 0
    results = []
    for name in args.variants:
        results.append(run_variant(name, data, args.epochs, args.seed))
        print(json.dumps({"variant": name, **{k: v for k, v in results[-1]["history"][-1].items() if k != "per_class"}}),
              flush=True)
    (args.out / "frame_encoder.json").write_text(json.dumps({"videos": args.videos, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
