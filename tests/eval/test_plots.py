"""Plots: valid PNG files of a sensible size, from hand-made confusion counts and metrics.csv rows."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from duomo.eval.metrics import confusion_matrix
from duomo.eval.plots import _x_axis, _points, plot_confusion_matrix, plot_learning_curves

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def read_png(path) -> np.ndarray:
    """The image as (H, W, 4) floats, after checking the file is a PNG."""
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == PNG_MAGIC
    image = imread(path, format="png")
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    return image


def test_confusion_matrix_plot_of_hand_computed_counts(tmp_path):
    target = np.array([0, 0, 1, 2, 2, 2])
    pred = np.array([0, 1, 1, 2, 0, 2])
    matrix = confusion_matrix(pred, target, num_classes=4)
    np.testing.assert_array_equal(matrix, [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]])
    out = plot_confusion_matrix(matrix, ["cat", "dog", "horse", "never seen"], tmp_path / "plots" / "cm.png")
    assert out == tmp_path / "plots" / "cm.png"
    height, width = read_png(out).shape[:2]
    assert 300 <= height <= 1000 and 300 <= width <= 1200


def test_confusion_matrix_plot_grows_with_many_classes(tmp_path):
    num_classes = 50
    rng = np.random.default_rng(0)
    target = rng.integers(0, num_classes, size=500)
    pred = np.where(rng.random(500) < 0.6, target, rng.integers(0, num_classes, size=500))
    names = [f"action class number {i}" for i in range(num_classes)]
    small = read_png(plot_confusion_matrix(np.eye(3, dtype=int), ["a", "b", "c"], tmp_path / "small.png"))
    large = read_png(plot_confusion_matrix(confusion_matrix(pred, target, num_classes), names, tmp_path / "large.png"))
    assert large.shape[0] > 2 * small.shape[0]
    assert large.shape[0] <= 2500 and large.shape[1] <= 2500


def test_confusion_matrix_plot_rejects_names_of_the_wrong_count(tmp_path):
    with pytest.raises(ValueError, match="3 class names"):
        plot_confusion_matrix(np.zeros((4, 4), int), ["a", "b", "c"], tmp_path / "cm.png")


def metrics_csv_rows(tmp_path) -> list[dict[str, str]]:
    """Rows as the training loop's metrics.csv reads back: strings, empty where not logged."""
    rows = []
    for epoch in (1, 2, 3):
        for step in (10, 20):
            step += 20 * (epoch - 1)
            rows.append({"epoch": epoch, "step": step, "train_loss": 3.0 / step ** 0.3, "lr": 1e-3})
        rows.append({"epoch": epoch, "step": 20 * epoch, "val_loss": 2.5 - 0.3 * epoch,
                     "val_accuracy": 0.2 * epoch, "val_macro_f1": 0.15 * epoch})
    path = tmp_path / "metrics.csv"
    fields = ["epoch", "step", "train_loss", "val_loss", "val_accuracy", "val_macro_f1", "lr"]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_learning_curves_from_metrics_csv(tmp_path):
    rows = metrics_csv_rows(tmp_path)
    assert rows[0]["val_loss"] == ""  # gaps, as csv gives them back
    rows[1]["val_accuracy"] = "nan"
    del rows[2]["lr"]
    out = plot_learning_curves(rows, tmp_path / "curves.png")
    height, width = read_png(out).shape[:2]
    assert 300 <= height <= 1000 and 800 <= width <= 1600


def test_learning_curves_x_axis_is_epoch_unless_logged_within_epochs(tmp_path):
    rows = metrics_csv_rows(tmp_path)
    per_epoch = [row for row in rows if row["val_loss"]]
    assert _x_axis({c: _points(per_epoch, c) for c in ("val_loss", "val_accuracy")}) == "epoch"
    assert _x_axis({c: _points(rows, c) for c in ("train_loss", "val_loss")}) == "step"
    no_steps = [{"epoch": row["epoch"], "train_loss": row["train_loss"]} for row in rows if row["train_loss"]]
    assert _x_axis({"train_loss": _points(no_steps, "train_loss")}) == "epoch"


def test_learning_curves_without_values_still_write_a_png(tmp_path):
    read_png(plot_learning_curves([], tmp_path / "empty.png"))
    read_png(plot_learning_curves([{"epoch": 1, "step": 5, "train_loss": ""}], tmp_path / "gaps.png"))
