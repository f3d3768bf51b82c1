"""PNG plots of evaluation results: a confusion matrix and learning curves from metrics.csv rows.

Drawn with matplotlib's Agg canvas on a standalone ``Figure`` (no pyplot, no global backend
switch, safe in threads); matplotlib is imported inside the functions so importing duomo stays light.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

_MAX_ANNOTATED_CLASSES = 20


def plot_confusion_matrix(matrix: np.ndarray, class_names: list[str], path: str | Path, *,
                          title: str = "Confusion matrix") -> Path:
    """Writes ``matrix`` (K, K) counts, rows = true class, columns = predicted, as a PNG.

    Colours are normalised per row (the fraction of each true class predicted as each class), so
    rare classes stay visible; counts are written in the cells when K <= 20. Tick labels are
    rotated and shrink with K, readable up to about 50 classes. Returns ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    matrix = np.asarray(matrix)
    num_classes = len(class_names)
    if matrix.ndim != 2 or matrix.shape != (num_classes, num_classes):
        raise ValueError(f"plot_confusion_matrix: matrix shape {matrix.shape} does not match "
                         f"{num_classes} class names")
    row_sums = matrix.sum(axis=1, keepdims=True).astype(np.float64)
    fractions = np.divide(matrix, row_sums, out=np.zeros(matrix.shape), where=row_sums > 0)

    side = min(max(4.0, 0.32 * num_classes + 2.5), 22.0)  # inches
    font_size = 9 if num_classes <= 20 else 7 if num_classes <= 40 else 6
    fig = Figure(figsize=(side + 1.2, side), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    colorbar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
    colorbar.set_label("fraction of the true class")
    ticks = np.arange(num_classes)
    ax.set_xticks(ticks, [str(name) for name in class_names], rotation=60, ha="right",
                  rotation_mode="anchor", fontsize=font_size)
    ax.set_yticks(ticks, [str(name) for name in class_names], fontsize=font_size)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if num_classes <= _MAX_ANNOTATED_CLASSES:
        for t in range(num_classes):
            for p in range(num_classes):
                colour = "white" if fractions[t, p] > 0.5 else "black"
                ax.text(p, t, str(int(matrix[t, p])), ha="center", va="center", color=colour,
                        fontsize=font_size)
    return _save(fig, path)


def plot_learning_curves(rows: list[Mapping[str, object]], path: str | Path, *,
                         title: str = "Learning curves") -> Path:
    """Writes learning curves from metrics.csv rows as a PNG with two panels.

    Rows look like ``{"epoch": 1, "step": 120, "train_loss": 2.3, "val_loss": 2.1,
    "val_accuracy": 0.4, "lr": 3e-4}``; values may be numbers or the strings ``csv`` reads, and
    missing, empty or non-numeric values are skipped. The left panel shows every ``*loss`` column,
    the right one every other ``val_*`` column. The x axis is the epoch when each column has at
    most one value per epoch, otherwise the step (when every such row has one), so metrics
    logged several times an epoch do not stack up. Returns ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = list(dict.fromkeys(key for row in rows for key in row))
    loss_columns = [c for c in columns if c.endswith("loss")]
    metric_columns = [c for c in columns if c.startswith("val_") and not c.endswith("loss")]
    series = {c: _points(rows, c) for c in loss_columns + metric_columns}
    x_name = _x_axis(series)

    fig = Figure(figsize=(11, 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    loss_ax, metric_ax = fig.subplots(1, 2)
    for ax, names, label in ((loss_ax, loss_columns, "loss"), (metric_ax, metric_columns, "validation metric")):
        drawn = 0
        for name in names:
            points = [(x[x_name], y) for x, y in series[name] if x[x_name] is not None]
            if not points:
                continue
            xs, ys = zip(*sorted(points))
            ax.plot(xs, ys, marker="o" if len(xs) <= 30 else None, markersize=3, label=name)
            drawn += 1
        ax.set_xlabel(x_name)
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if drawn:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, f"no {label} values", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(title)
    return _save(fig, path)


def _points(rows: list[Mapping[str, object]], column: str) -> list[tuple[dict[str, float | None], float]]:
    """({"epoch": .., "step": ..}, value) for every row with a numeric ``column``."""
    points = []
    for row in rows:
        value = _number(row.get(column))
        if value is not None:
            points.append(({"epoch": _number(row.get("epoch")), "step": _number(row.get("step"))}, value))
    return points


def _x_axis(series: dict[str, list[tuple[dict[str, float | None], float]]]) -> str:
    once_per_epoch = all(
        len({x["epoch"] for x, _ in points}) == len(points) for points in series.values()
    )
    every_step = all(x["step"] is not None for points in series.values() for x, _ in points)
    has_epoch = any(x["epoch"] is not None for points in series.values() for x, _ in points)
    if has_epoch and (once_per_epoch or not every_step):
        return "epoch"
    return "step"


def _number(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
