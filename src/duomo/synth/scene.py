"""SynthWorld scenes: the config, the vocabulary, and deterministic sampling of one video's scene.

A scene is one or two shots of 1-3 objects; each object carries the events (one action over a
window of frames) it performs. ``object_state`` turns that event list into the exact position,
size, angle, colour and opacity at any time; the renderer and the annotations both read it, so
what is drawn is what is annotated.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from duomo.errors import DuomoError

T = TypeVar("T")

SHAPES = ("circle", "square", "triangle", "star")
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "blue": (40, 90, 240),
    "green": (40, 200, 70),
    "yellow": (240, 220, 40),
    "purple": (160, 60, 220),
    "orange": (250, 140, 20),
}
# Dark or neutral, so every object colour stands out on every background after 4:2:0 H.264.
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (12, 12, 12),
    "gray": (128, 128, 128),
    "navy": (16, 22, 72),
    "dark green": (14, 62, 34),
    "maroon": (72, 16, 26),
}
SIZES = {"small": 0.09, "large": 0.13}
"""Radius of a circle of each size, as a fraction of the frame side."""
# Circumradius of each shape relative to a circle of the same size, so all look about as big.
SHAPE_RADIUS = {"circle": 1.0, "square": 1.2, "triangle": 1.35, "star": 1.4}
STAR_INNER = 0.5  # inner / outer radius of the five-pointed star
PITCH_HZ = {"circle": 400.0, "square": 600.0, "triangle": 900.0, "star": 1350.0}
"""Tone each shape makes (a fifth apart, so each is told apart by pitch alone)."""

ACTIONS = (
    "move_left", "move_right", "move_up", "move_down", "grow", "shrink",
    "rotate", "change_color", "appear", "disappear", "bounce",
)
MOVES = {"move_left": (-1.0, 0.0), "move_right": (1.0, 0.0), "move_up": (0.0, -1.0), "move_down": (0.0, 1.0)}
WALLS = ("left", "right", "top", "bottom")
SOUND_ACTIONS = ("bounce", "appear")
"""A noisy object beeps when it touches the wall in a bounce and when it starts to appear."""
HELD_OUT = (("blue", "triangle"), ("red", "star"))
"""Colour-shape pairs the compositional split keeps out of train and val (every test video has one)."""

SPLIT_MODES = ("random", "compositional")

# Timing, in seconds; converted to whole frames so every boundary falls on a frame.
EVENT_SEC = (0.5, 1.5)
BOUNCE_SEC = (0.8, 1.6)
GAP_SEC = 0.2  # between two actions of one object, so "what does it do next" has a clear answer
LEAD_SEC = 0.3  # every other event starts at least this long after the primary one
MIN_SHOT_SEC = 1.5
MIN_BOUNCE_DIST = 0.15  # a bounce travels at least this far (fraction of the frame) to the wall
MIN_SEPARATION = 0.02  # free space between the bounding circles of two visible objects
MAX_ATTEMPTS = 400


@dataclass
class SynthConfig:
    """Everything that decides a SynthWorld set; the same config gives the same set."""

    num_videos: int = 1000
    """Number of videos to generate."""
    seed: int = 0
    """Seed of the set; video i draws from its own generator seeded by (seed, i)."""
    split: str = "random"
    """'random' (seeded train/val/test, exact sizes) or 'compositional' (HELD_OUT pairs only in test)."""
    size: int = 64
    """Frame width and height in pixels."""
    fps: int = 10
    """Frames per second."""
    min_duration_sec: float = 2.0
    """Shortest video in seconds (videos with a cut are at least 2 * MIN_SHOT_SEC long)."""
    max_duration_sec: float = 6.0
    """Longest video in seconds."""
    max_objects: int = 3
    """Most objects in one shot; each shot has 1 to max_objects, uniformly."""
    cut_prob: float = 0.5
    """Share of videos with a hard cut to a second shot."""
    sound_prob: float = 0.5
    """Chance that an object is noisy (beeps when it bounces or appears)."""
    choice_prob: float = 0.5
    """Chance that a question with more than two possible answers gets four choices."""
    val_fraction: float = 0.1
    """Share of videos in the val split."""
    test_fraction: float = 0.1
    """Share of videos in the test split."""
    sample_rate: int = 16000
    """Audio sample rate of the soundtrack in Hz."""
    crf: int = 18
    """x264 constant-rate quality (lower is better); 18 keeps 64 px shapes crisp."""

    def __post_init__(self) -> None:
        checks = [
            (self.num_videos >= 1, "--videos must be at least 1"),
            (self.split in SPLIT_MODES, f"--split must be one of {', '.join(SPLIT_MODES)}, got {self.split!r}"),
            (32 <= self.size <= 512, f"--size must be between 32 and 512 pixels, got {self.size}"),
            (4 <= self.fps <= 60, f"--fps must be between 4 and 60, got {self.fps}"),
            (1.0 <= self.min_duration_sec <= self.max_duration_sec <= 60,
             "--min-duration and --max-duration need 1 <= min <= max <= 60 seconds"),
            (self.cut_prob == 0 or self.max_duration_sec >= 2 * MIN_SHOT_SEC,
             f"--max-duration must be at least {2 * MIN_SHOT_SEC} s when videos may have a cut"),
            (1 <= self.max_objects <= 3, f"max_objects must be 1, 2 or 3, got {self.max_objects}"),
            (0 <= self.cut_prob <= 1 and 0 <= self.sound_prob <= 1 and 0 <= self.choice_prob <= 1,
             "cut_prob, sound_prob and choice_prob must lie in [0, 1]"),
            (self.val_fraction >= 0 and self.test_fraction >= 0 and self.val_fraction + self.test_fraction < 1,
             "val_fraction and test_fraction must be >= 0 and sum to less than 1"),
            (self.sample_rate >= 8000, f"sample_rate must be at least 8000 Hz, got {self.sample_rate}"),
        ]
        for ok, message in checks:
            if not ok:
                raise DuomoError(f"bad SynthWorld config: {message}")


@dataclass(frozen=True)
class Event:
    """One action of one object over frames [start_idx, end_idx] (progress 0 at start, 1 at end)."""

    action: str
    start_idx: int
    end_idx: int
    start_sec: float
    end_sec: float
    amount: float = 0.0
    """Distance for moves (frame fraction), scale factor for grow/shrink, degrees for rotate."""
    wall: str | None = None
    """Wall a bounce touches: left, right, top or bottom."""
    new_color: str | None = None
    """Colour a change_color ends in."""

    @property
    def contact_idx(self) -> int:
        """Frame at which a bounce touches the wall (the window's middle frame)."""
        return (self.start_idx + self.end_idx) // 2

    @property
    def contact_sec(self) -> float:
        """Time at which a bounce touches the wall."""
        return (self.start_sec + self.end_sec) / 2


@dataclass(frozen=True)
class SceneObject:
    """An object as it is at the start of its shot, plus the events it performs, in time order."""

    shape: str
    color: str
    size: str
    shot_idx: int
    x: float
    """Centre, as a fraction of the frame width (0 = left edge)."""
    y: float
    """Centre, as a fraction of the frame height (0 = top edge)."""
    angle: float
    """Initial rotation in degrees, clockwise on screen."""
    is_noisy: bool
    events: tuple[Event, ...]

    @property
    def actions(self) -> tuple[str, ...]:
        return tuple(e.action for e in self.events)

    @property
    def colors(self) -> frozenset[str]:
        """Every colour this object shows at some time."""
        return frozenset([self.color] + [e.new_color for e in self.events if e.new_color])


@dataclass(frozen=True)
class Shot:
    """Frames [start_idx, end_idx) drawn on one background with their own objects."""

    start_idx: int
    end_idx: int
    start_sec: float
    background: str


@dataclass(frozen=True)
class SceneSpec:
    """One video's full ground truth: timing, shots and objects with their events."""

    index: int
    video_id: str
    split: str
    fps: int
    size: int
    num_frames: int
    shots: tuple[Shot, ...]
    objects: tuple[SceneObject, ...]
    primary_idx: int
    """Object whose first event is the primary (earliest-starting) event: labels[0]."""
    probe_idx: int | None
    """Object built to fit this video's planned 'which object ...?' answer (None if it could not be)."""

    @property
    def duration_sec(self) -> float:
        return self.num_frames / self.fps

    @property
    def primary_event(self) -> Event:
        return self.objects[self.primary_idx].events[0]

    def shot_at(self, frame_idx: int) -> int:
        """Index of the shot that frame ``frame_idx`` belongs to."""
        return max(i for i, shot in enumerate(self.shots) if shot.start_idx <= frame_idx)


@dataclass(frozen=True)
class ObjectState:
    """Where and how an object looks at one instant."""

    x: float
    y: float
    radius: float
    """Circumradius as a fraction of the frame side (grows and shrinks with the object)."""
    angle: float
    rgb: tuple[float, ...]
    """Red, green, blue in [0, 255] (a blend while the colour changes)."""
    alpha: float
    """Opacity in [0, 1]: appear and disappear fade it."""


@dataclass(frozen=True)
class Sound:
    """A beep: a noisy object touching a wall or starting to appear."""

    time_sec: float
    frame_idx: int
    object_idx: int
    pitch_hz: float


def stratified_choice(seed: int, index: int, name: str, options: Sequence[T]) -> T:
    """The option for video ``index`` so that every block of len(options) videos has each once.

    Each block's order is a seeded shuffle, so the choice depends only on (seed, name, index):
    balance is exact over any run of whole blocks, whatever the number of workers.
    """
    block, position = divmod(index, len(options))
    order = list(options)
    random.Random(f"synthworld:{seed}:{name}:{block}").shuffle(order)
    return order[position]


def assign_split(config: SynthConfig, index: int) -> str:
    """train, val or test for video ``index``: exactly round(N x test_fraction) test videos and
    round(N x val_fraction) val videos, at seeded random positions among the N."""
    return _split_table(config.seed, config.num_videos, config.val_fraction, config.test_fraction)[index]


@functools.lru_cache(maxsize=8)
def _split_table(seed: int, num_videos: int, val_fraction: float, test_fraction: float) -> tuple[str, ...]:
    num_test, num_val = round(num_videos * test_fraction), round(num_videos * val_fraction)
    splits = ["test"] * num_test + ["val"] * num_val + ["train"] * (num_videos - num_test - num_val)
    random.Random(f"synthworld:{seed}:split").shuffle(splits)
    return tuple(splits)


def video_id(config: SynthConfig, index: int) -> str:
    """``v`` plus the zero-padded index, e.g. v0007 (at least four digits)."""
    return f"v{index:0{max(4, len(str(config.num_videos - 1)))}d}"


def shape_vertices(shape: str, radius: float, angle: float) -> list[tuple[float, float]]:
    """Polygon corners of a non-circle shape as (dx, dy) offsets from its centre (y points down)."""
    if shape == "square":
        corners = [(radius, 45 + 90 * k) for k in range(4)]
    elif shape == "triangle":
        corners = [(radius, -90 + 120 * k) for k in range(3)]  # one corner points up
    elif shape == "star":
        corners = [(radius if k % 2 == 0 else radius * STAR_INNER, -90 + 36 * k) for k in range(10)]
    else:
        raise ValueError(f"{shape} has no corners")
    return [(r * math.cos(math.radians(a + angle)), r * math.sin(math.radians(a + angle))) for r, a in corners]


def half_extent(shape: str, radius: float, angle: float, wall: str) -> float:
    """How far the shape reaches from its centre towards ``wall``."""
    if shape == "circle":
        return radius
    vertices = shape_vertices(shape, radius, angle)
    if wall == "left":
        return max(-dx for dx, _ in vertices)
    if wall == "right":
        return max(dx for dx, _ in vertices)
    if wall == "top":
        return max(-dy for _, dy in vertices)
    return max(dy for _, dy in vertices)


def object_state(obj: SceneObject, time_sec: float) -> ObjectState:
    """The object's exact state at ``time_sec`` (seconds from the start of the video).

    Events apply in order; an event's progress runs linearly from 0 at its start to 1 at its end.
    """
    x, y, scale, angle, alpha = obj.x, obj.y, 1.0, obj.angle, 1.0
    rgb = tuple(float(c) for c in COLORS[obj.color])
    base = SIZES[obj.size] * SHAPE_RADIUS[obj.shape]
    if obj.events and obj.events[0].action == "appear":
        alpha = 0.0
    for event in obj.events:
        if time_sec < event.start_sec:
            break
        progress = min(1.0, (time_sec - event.start_sec) / (event.end_sec - event.start_sec))
        if event.action in MOVES:
            dx, dy = MOVES[event.action]
            x, y = x + dx * event.amount * progress, y + dy * event.amount * progress
        elif event.action in ("grow", "shrink"):
            scale *= 1 + (event.amount - 1) * progress
        elif event.action == "rotate":
            angle += event.amount * progress
        elif event.action == "change_color":
            new = COLORS[event.new_color]
            rgb = tuple(a + (b - a) * progress for a, b in zip(rgb, new))
        elif event.action == "appear":
            alpha = progress
        elif event.action == "disappear":
            alpha = 1 - progress
        elif event.action == "bounce":
            # straight to the wall, touching it at the middle frame (windows have even length),
            # and straight back
            reach = half_extent(obj.shape, base * scale, angle, event.wall)
            target = {"left": reach, "right": 1 - reach, "top": reach, "bottom": 1 - reach}[event.wall]
            towards = 1 - abs(2 * progress - 1)
            if event.wall in ("left", "right"):
                x = x + (target - x) * towards
            else:
                y = y + (target - y) * towards
        if progress < 1:
            break
    return ObjectState(x, y, base * scale, angle, rgb, alpha)


def scene_sounds(scene: SceneSpec) -> list[Sound]:
    """Every beep in the video, in time order: noisy objects at bounce contact and appear start."""
    sounds = []
    for idx, obj in enumerate(scene.objects):
        if not obj.is_noisy:
            continue
        for event in obj.events:
            if event.action == "bounce":
                frame = event.contact_idx
            elif event.action == "appear":
                frame = event.start_idx
            else:
                continue
            sounds.append(Sound(frame / scene.fps, frame, idx, PITCH_HZ[obj.shape]))
    return sorted(sounds, key=lambda s: (s.time_sec, s.object_idx))


def confusable(action: str) -> set[str]:
    """Actions that would make 'which object <action>s?' ambiguous if another object did them.

    A horizontal bounce also moves left and right, a vertical one up and down.
    """
    if action in ("move_left", "move_right"):
        return {action, "bounce:left", "bounce:right"}
    if action in ("move_up", "move_down"):
        return {action, "bounce:top", "bounce:bottom"}
    return {action}


def action_keys(obj: SceneObject) -> set[str]:
    """The object's actions, bounces also keyed by wall (matches ``confusable``)."""
    keys = set(obj.actions)
    keys.update(f"bounce:{e.wall}" for e in obj.events if e.action == "bounce")
    return keys


def unique_actions(scene: SceneSpec, idx: int) -> list[Event]:
    """Events of object ``idx`` that no other object in the video could be mistaken for doing."""
    others = set()
    for j, obj in enumerate(scene.objects):
        if j != idx:
            others |= action_keys(obj)
    return [e for e in scene.objects[idx].events if not (confusable(e.action) & others)]


def sample_scene(config: SynthConfig, index: int) -> SceneSpec:
    """Sample video ``index``'s scene; depends only on (config, index), never on other videos.

    Planned first, stratified over the set (see ``stratified_choice``): the primary action
    (labels[0]), whether there is a cut, the number of objects in the first shot, and the
    colour-shape pair that answers the video's 'which object ...?' question. The rest is drawn
    from the video's own generator, retrying the layout until the plan fits.
    """
    split = assign_split(config, index)
    rng = random.Random(f"synthworld:{config.seed}:{index}:scene")
    primary_action = stratified_choice(config.seed, index, "primary", ACTIONS)
    # cut_prob rounded to twentieths, so the yes/no shot questions are balanced in every block
    with_cut = round(config.cut_prob * 20)
    has_cut = stratified_choice(config.seed, index, "cut", [True] * with_cut + [False] * (20 - with_cut))
    num_first = stratified_choice(config.seed, index, "count", tuple(range(1, config.max_objects + 1)))
    pairs = tuple((c, s) for s in SHAPES for c in COLORS)
    probe_pair = stratified_choice(config.seed, index, "object", pairs)
    compositional = config.split == "compositional"
    if compositional and split != "test" and probe_pair in HELD_OUT:
        probe_pair = rng.choice([p for p in pairs if p not in HELD_OUT])

    fps = config.fps
    shot_frames = math.ceil(MIN_SHOT_SEC * fps)
    min_frames = max(math.ceil(config.min_duration_sec * fps), 2 * shot_frames if has_cut else 2)
    num_frames = rng.randint(min_frames, max(min_frames, math.floor(config.max_duration_sec * fps)))
    starts = [0, rng.randint(shot_frames, num_frames - shot_frames)] if has_cut else [0]
    backgrounds = rng.sample(list(BACKGROUNDS), len(starts))
    shots = tuple(
        Shot(start, end, start / fps, bg) for start, end, bg in zip(starts, starts[1:] + [num_frames], backgrounds)
    )
    counts = [num_first] + [rng.randint(1, config.max_objects) for _ in shots[1:]]
    shot_of = [s for s, n in enumerate(counts) for _ in range(n)]

    for _ in range(MAX_ATTEMPTS):
        held_slot = rng.randrange(len(shot_of)) if compositional and split == "test" else None
        probe_slot = _pick_probe_slot(rng, len(shot_of), held_slot, primary_action, probe_pair)
        drafts = _sample_attributes(rng, config, split, shot_of, primary_action, held_slot, probe_slot, probe_pair)
        if drafts is None:
            continue
        objects = _sample_timing(rng, drafts, shots, num_frames, fps)
        if objects is None:
            continue
        objects = _place(rng, objects, shots, num_frames, fps)
        if objects is None:
            continue
        scene = SceneSpec(index, video_id(config, index), split, fps, config.size, num_frames, shots,
                          tuple(objects), 0, probe_slot)
        if probe_slot is not None and not unique_actions(scene, probe_slot):
            continue  # the planned 'which object' question would be ambiguous
        return scene
    raise DuomoError(f"SynthWorld could not lay out video {index} in {MAX_ATTEMPTS} tries; "
                     "try a larger --size or fewer objects")


def _pick_probe_slot(
    rng: random.Random, num_slots: int, held_slot: int | None, primary_action: str, pair: tuple[str, str]
) -> int | None:
    """A slot for the planned 'which object' answer, clear of the held-out slot and of rotating circles."""
    slots = [i for i in range(num_slots) if i != held_slot]
    if primary_action == "rotate" and pair[1] == "circle":
        slots = [i for i in slots if i != 0]  # slot 0 is the primary object: circles never rotate
    return rng.choice(slots) if slots else None


@dataclass
class _Draft:
    """An object's attributes and action list before timing and placement."""

    shape: str
    color: str
    size: str
    shot_idx: int
    is_noisy: bool
    actions: list[str]
    new_color: str | None


def _sample_attributes(
    rng: random.Random,
    config: SynthConfig,
    split: str,
    shot_of: list[int],
    primary_action: str,
    held_slot: int | None,
    probe_slot: int | None,
    probe_pair: tuple[str, str],
) -> list[_Draft] | None:
    """Shapes, colours, sizes, sounds and actions for every slot, under the scene's constraints.

    Constraints: initial colours differ within a shot; two objects of one shape never share a
    colour at any time (so 'the red circle' always names one object); in a compositional
    train/val video no object ever shows a held-out colour-shape pair.
    """
    allowed_shapes = list(SHAPES)
    no_held_out = config.split == "compositional" and split != "test"
    order = [s for s in (held_slot, probe_slot) if s is not None]
    order += [s for s in range(len(shot_of)) if s not in order]
    drafts: dict[int, _Draft] = {}
    for slot in order:
        for _ in range(100):
            if slot == held_slot:
                color, shape = rng.choice(HELD_OUT)
            elif slot == probe_slot:
                color, shape = probe_pair
            else:
                color, shape = rng.choice(list(COLORS)), rng.choice(allowed_shapes)
            if slot == 0 and primary_action == "rotate" and shape == "circle":
                continue
            actions = _sample_actions(rng, shape, primary_action if slot == 0 else None)
            new_color = rng.choice([c for c in COLORS if c != color]) if "change_color" in actions else None
            draft = _Draft(shape, color, rng.choice(list(SIZES)), shot_of[slot], rng.random() < config.sound_prob,
                           actions, new_color)
            if _fits(draft, drafts.values(), no_held_out):
                drafts[slot] = draft
                break
        else:
            return None
    return [drafts[s] for s in range(len(shot_of))]


def _sample_actions(rng: random.Random, shape: str, primary: str | None) -> list[str]:
    """One or two different actions: appear only first, disappear only last, circles never rotate."""
    allowed = [a for a in ACTIONS if not (a == "rotate" and shape == "circle")]
    two = rng.random() < 0.5
    if primary is not None:
        first = primary
        two = two and primary != "disappear"
    else:
        first = rng.choice([a for a in allowed if a != "disappear"] if two else allowed)
    if not two:
        return [first]
    return [first, rng.choice([a for a in allowed if a not in (first, "appear")])]


def _fits(draft: _Draft, others, no_held_out: bool) -> bool:
    colors = {draft.color} | ({draft.new_color} if draft.new_color else set())
    if no_held_out and any((c, draft.shape) in HELD_OUT for c in colors):
        return False
    for other in others:
        if other.shot_idx == draft.shot_idx and other.color == draft.color:
            return False
        other_colors = {other.color} | ({other.new_color} if other.new_color else set())
        if other.shape == draft.shape and colors & other_colors:
            return False
    return True


def _event_frames(rng: random.Random, action: str, fps: int) -> tuple[int, int]:
    """(drawn, shortest) window length in frames; bounces get an even length (middle frame = contact)."""
    low, high = BOUNCE_SEC if action == "bounce" else EVENT_SEC
    lo, hi = max(2, math.ceil(low * fps)), max(2, round(high * fps))
    if action == "bounce":
        lo, hi = lo + lo % 2, max(lo + lo % 2, hi - hi % 2)
        return 2 * rng.randint(lo // 2, hi // 2), lo
    return rng.randint(lo, hi), lo


def _sample_timing(
    rng: random.Random, drafts: list[_Draft], shots: tuple[Shot, ...], num_frames: int, fps: int
) -> list[SceneObject] | None:
    """Frame windows for every action; the primary event (slot 0, first action) starts first."""
    gap = max(1, math.ceil(GAP_SEC * fps))
    primary_start = 1 + rng.randint(0, math.ceil(0.3 * fps))
    lead = max(1, math.ceil(LEAD_SEC * fps))
    objects = []
    for slot, draft in enumerate(drafts):
        shot = shots[draft.shot_idx]
        end = (shots[draft.shot_idx + 1].start_idx if draft.shot_idx + 1 < len(shots) else num_frames) - 1
        if slot == 0:
            first = primary_start
        elif draft.shot_idx == 0:
            first = primary_start + lead
        else:
            first = shot.start_idx + 1  # the cut frame shows every object in its initial state
        windows = _schedule(rng, draft.actions, first, end, fps, gap, pinned=slot == 0)
        if windows is None:
            return None
        events = tuple(
            _make_event(rng, action, start, stop, fps, draft.new_color)
            for action, (start, stop) in zip(draft.actions, windows)
        )
        angle = rng.uniform(-15, 15)
        objects.append(SceneObject(draft.shape, draft.color, draft.size, draft.shot_idx, 0.5, 0.5, angle,
                                   draft.is_noisy, events))
    return objects


def _schedule(
    rng: random.Random, actions: list[str], first: int, last: int, fps: int, gap: int, *, pinned: bool
) -> list[tuple[int, int]] | None:
    """Non-overlapping [start, end] frame windows for ``actions`` inside [first, last], in order."""
    drawn = [_event_frames(rng, a, fps) for a in actions]
    lengths = [length for length, _ in drawn]
    span = last - first
    if sum(lengths) + gap * (len(actions) - 1) > span:
        lengths = [shortest for _, shortest in drawn]
        if sum(lengths) + gap * (len(actions) - 1) > span:
            return None
    slack = span - sum(lengths) - gap * (len(actions) - 1)
    offsets = sorted(rng.randint(0, slack) for _ in actions)
    if pinned:
        offsets[0] = 0
    windows, start = [], first
    for length, offset, prev in zip(lengths, offsets, [0] + offsets):
        start += offset - prev
        windows.append((start, start + length))
        start += length + gap
    return windows


def _make_event(rng: random.Random, action: str, start: int, end: int, fps: int, new_color: str | None) -> Event:
    amount, wall = 0.0, None
    if action in MOVES:
        amount = rng.uniform(0.22, 0.4)
    elif action == "grow":
        amount = rng.uniform(1.5, 1.8)
    elif action == "shrink":
        amount = rng.uniform(0.5, 0.62)
    elif action == "rotate":
        amount = rng.choice((-1, 1)) * rng.uniform(150, 210)
    elif action == "bounce":
        wall = rng.choice(WALLS)
    return Event(action, start, end, start / fps, end / fps, round(amount, 4), wall,
                 new_color if action == "change_color" else None)


def _place(
    rng: random.Random, objects: list[SceneObject], shots: tuple[Shot, ...], num_frames: int, fps: int
) -> list[SceneObject] | None:
    """Starting positions so that, on every frame, objects stay inside the frame and apart."""
    placed = list(objects)
    for shot_idx, shot in enumerate(shots):
        slots = [i for i, o in enumerate(objects) if o.shot_idx == shot_idx]
        end = shots[shot_idx + 1].start_idx if shot_idx + 1 < len(shots) else num_frames
        times = [f / fps for f in range(shot.start_idx, end)]
        boxes = {i: _start_box(objects[i]) for i in slots}
        if any(box is None for box in boxes.values()):
            return None
        for _ in range(60):
            trial = [replace(objects[i], x=round(rng.uniform(*boxes[i][0]), 4), y=round(rng.uniform(*boxes[i][1]), 4))
                     for i in slots]
            if _layout_ok(trial, times):
                for i, obj in zip(slots, trial):
                    placed[i] = obj
                break
        else:
            return None
    return placed


def _start_box(obj: SceneObject) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """Ranges of starting x and y that keep every move of the object inside the frame."""
    x = y = 0.0
    low_x = high_x = low_y = high_y = 0.0
    scale = max_scale = 1.0
    for event in obj.events:
        if event.action in MOVES:
            dx, dy = MOVES[event.action]
            x, y = x + dx * event.amount, y + dy * event.amount
            low_x, high_x, low_y, high_y = min(low_x, x), max(high_x, x), min(low_y, y), max(high_y, y)
        elif event.action in ("grow", "shrink"):
            scale *= event.amount
            max_scale = max(max_scale, scale)
    reach = SIZES[obj.size] * SHAPE_RADIUS[obj.shape] * max_scale
    box = ((reach - low_x, 1 - reach - high_x), (reach - low_y, 1 - reach - high_y))
    return box if box[0][0] < box[0][1] and box[1][0] < box[1][1] else None


def _layout_ok(objects: list[SceneObject], times: list[float]) -> bool:
    for obj in objects:
        for event in obj.events:
            if event.action == "bounce":
                before = object_state(obj, event.start_sec)
                contact = object_state(obj, event.contact_sec)
                if abs(before.x - contact.x) + abs(before.y - contact.y) < MIN_BOUNCE_DIST:
                    return False
    for t in times:
        states = [object_state(o, t) for o in objects]
        for obj, s in zip(objects, states):
            if s.radius > min(s.x, 1 - s.x, s.y, 1 - s.y) + 1e-9:
                reach = [half_extent(obj.shape, s.radius, s.angle, w) for w in WALLS]
                if min(s.x - reach[0], 1 - s.x - reach[1], s.y - reach[2], 1 - s.y - reach[3]) < -1e-9:
                    return False
        for i in range(len(states)):
            for j in range(i + 1, len(states)):
                a, b = states[i], states[j]
                if a.alpha > 0 and b.alpha > 0 and math.hypot(a.x - b.x, a.y - b.y) < a.radius + b.radius + MIN_SEPARATION:
                    return False
    return True
