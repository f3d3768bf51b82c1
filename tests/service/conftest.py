"""Libraries for the service tests, indexed for real from generated media: a quick one of silent
scene videos (no speech or OCR), and a slow one of talking videos (speech and drawn captions at
known times), built once per session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from duomo.library.analyze import IndexSettings, video_id_for
from duomo.library.index import index_paths
from duomo.video.encode import write_video

SCENE_SETTINGS = IndexSettings(segment_sec=1.0, use_speech=False, use_ocr=False)
TALK_SETTINGS = IndexSettings(segment_sec=2.0, use_speech=True, use_ocr=True, ocr_every_sec=1.0)

KITCHEN_SPEECH = [(0.5, "The red kettle is boiling on the stove."), (4.0, "Please hand me the wooden spoon.")]
GARDEN_SPEECH = [(0.5, "The tomatoes in the garden are ripe."), (4.0, "Water the roses before sunset.")]
UPLOAD_SPEECH = [(0.5, "A yellow submarine sails across the harbour.")]


@dataclass
class Library:
    db: Path
    videos: dict[str, Path]
    """file name -> path."""

    def video_id(self, name: str) -> str:
        return video_id_for(self.videos[name])


def scene_video(path: Path, color: tuple[int, int, int], seconds: float, fps: int = 10) -> Path:
    """A flat ``color`` picture with a white square moving across it."""
    frames = []
    for i in range(int(seconds * fps)):
        frame = np.empty((48, 64, 3), np.uint8)
        frame[:] = color
        x = 4 + (i * 2) % 40
        frame[10:22, x:x + 12] = 240
        frames.append(frame)
    return write_video(path, frames, fps, codec="libx264", crf=18)


@pytest.fixture(scope="session")
def scene_library(tmp_path_factory) -> Library:
    root = tmp_path_factory.mktemp("scenes")
    (root / "videos").mkdir()
    videos = {"red.mp4": scene_video(root / "videos" / "red.mp4", (200, 40, 40), 2.0),
              "blue.mp4": scene_video(root / "videos" / "blue.mp4", (40, 60, 210), 3.0)}
    report = index_paths([root / "videos"], root / "db", settings=SCENE_SETTINGS, workers=1)
    assert not report.failed, report.failed
    return Library(root / "db", videos)


@pytest.fixture(scope="session")
def talking_library(tmp_path_factory) -> Library:
    from tests.helpers.talking import make_talking_video

    root = tmp_path_factory.mktemp("talking")
    (root / "videos").mkdir()
    kitchen = make_talking_video(root / "videos" / "kitchen.mp4", speech=KITCHEN_SPEECH,
                                 captions=[(1.0, 3.0, "KITCHEN")], duration_sec=7.0, size=(320, 180))
    garden = make_talking_video(root / "videos" / "garden.mp4", speech=GARDEN_SPEECH, duration_sec=7.0,
                                size=(320, 180))
    report = index_paths([root / "videos"], root / "db", settings=TALK_SETTINGS, workers=2)
    assert not report.failed, report.failed
    return Library(root / "db", {"kitchen.mp4": kitchen.path, "garden.mp4": garden.path})


@pytest.fixture(scope="session")
def upload_video(tmp_path_factory) -> Path:
    """A talking video that is not in any library yet, for upload tests."""
    from tests.helpers.talking import make_talking_video

    root = tmp_path_factory.mktemp("upload")
    return make_talking_video(root / "harbour clip (final).mp4", speech=UPLOAD_SPEECH, duration_sec=4.0,
                              size=(320, 180)).path
