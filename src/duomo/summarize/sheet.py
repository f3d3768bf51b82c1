"""The contact sheet: keyframes of the chosen segments in a grid, each labelled with its time."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def contact_sheet(images: list[np.ndarray], labels: list[str], out: str | Path, *, columns: int = 4,
                  tile_width: int = 320, label_height: int = 20) -> tuple[int, int]:
    """Write a PNG grid of ``images`` (each (H, W, 3) uint8 RGB, resized to ``tile_width`` wide
    keeping the first image's aspect) with ``labels`` under them; returns its (width, height):
    min(columns, n) * tile_width by rows * (tile height + label_height)."""
    from PIL import Image, ImageDraw

    if not images:
        raise ValueError("no image for the contact sheet")
    first = images[0]
    tile_height = max(2, int(round(first.shape[0] * tile_width / first.shape[1])))
    cols = min(columns, len(images))
    rows = math.ceil(len(images) / cols)
    sheet = Image.new("RGB", (cols * tile_width, rows * (tile_height + label_height)), (16, 16, 16))
    draw = ImageDraw.Draw(sheet)
    for i, (image, label) in enumerate(zip(images, labels)):
        x, y = (i % cols) * tile_width, (i // cols) * (tile_height + label_height)
        tile = Image.fromarray(np.ascontiguousarray(image)).resize((tile_width, tile_height), Image.BILINEAR)
        sheet.paste(tile, (x, y))
        draw.text((x + 4, y + tile_height + 4), label, fill=(230, 230, 230))
    sheet.save(out, format="PNG")
    return sheet.size
