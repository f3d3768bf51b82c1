"""SynthWorld language: captions, questions, a dialog, labels and segment captions for a scene.

Everything is read off the same SceneSpec the renderer draws, so every answer is exact. A
question is only asked when its answer is unique (objects are referred to by a description
that fits exactly one object in the video). Each QA family has one kind of answer, balanced:

    object  "which object moves left?" -> "red circle"       planned per video, stratified (24 pairs)
    color   "what color is the square?" -> "blue"             colours drawn uniformly
    shape   "what shape is the red object?" -> "star"         shapes drawn uniformly
    action  "what does the red circle do?" -> "move left"     primary action stratified, others uniform
    count   "how many objects are there?" -> "2"              first-shot count stratified (1-3)
    order   "does X grow before or after Y moves up?" -> "before" / "after"   answer stratified
    exist   "is there a green star?" -> "yes" / "no"          answer stratified, then a fitting question
    sound   "which shape beeps?" -> "triangle"                pitch identifies the shape (PITCH_HZ);
            asked when one shape beeps (or "which shape beeps first?" when one beeps first)
    shot    "is there a cut in the video?" -> "yes" / "no"    cut stratified; second question by coin

Stratified means every block of consecutive videos holds each answer once (scene.stratified_choice).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from duomo.synth.scene import (
    ACTIONS, COLORS, HELD_OUT, SHAPES, SOUND_ACTIONS, Event, SceneObject, SceneSpec, SynthConfig,
    action_keys, confusable, scene_sounds, stratified_choice, unique_actions,
)

ACTION_ANSWERS = {action: action.replace("_", " ") for action in ACTIONS}
"""The answer string of each action: 'move left', 'change color', ..."""

# (base, third person, gerund) forms of each action; {wall}, {color} and {old} are filled in.
VERBS: dict[str, list[tuple[str, str, str]]] = {
    "move_left": [
        ("move to the left", "moves to the left", "moving to the left"),
        ("move left", "moves left", "moving left"),
        ("slide left", "slides left", "sliding left"),
        ("drift to the left", "drifts to the left", "drifting to the left"),
        ("travel left", "travels left", "traveling left"),
    ],
    "move_right": [
        ("move to the right", "moves to the right", "moving to the right"),
        ("move right", "moves right", "moving right"),
        ("slide right", "slides right", "sliding right"),
        ("drift to the right", "drifts to the right", "drifting to the right"),
        ("travel right", "travels right", "traveling right"),
    ],
    "move_up": [
        ("move up", "moves up", "moving up"),
        ("rise", "rises", "rising"),
        ("go up", "goes up", "going up"),
        ("float upward", "floats upward", "floating upward"),
        ("slide up", "slides up", "sliding up"),
    ],
    "move_down": [
        ("move down", "moves down", "moving down"),
        ("drop", "drops", "dropping"),
        ("go down", "goes down", "going down"),
        ("sink", "sinks", "sinking"),
        ("slide down", "slides down", "sliding down"),
    ],
    "grow": [
        ("grow", "grows", "growing"),
        ("get bigger", "gets bigger", "getting bigger"),
        ("expand", "expands", "expanding"),
        ("grow larger", "grows larger", "growing larger"),
    ],
    "shrink": [
        ("shrink", "shrinks", "shrinking"),
        ("get smaller", "gets smaller", "getting smaller"),
        ("contract", "contracts", "contracting"),
        ("become smaller", "becomes smaller", "becoming smaller"),
    ],
    "rotate": [
        ("rotate", "rotates", "rotating"),
        ("spin", "spins", "spinning"),
        ("turn around", "turns around", "turning around"),
        ("spin around", "spins around", "spinning around"),
    ],
    "change_color": [
        ("turn {color}", "turns {color}", "turning {color}"),
        ("change color to {color}", "changes color to {color}", "changing color to {color}"),
        ("become {color}", "becomes {color}", "becoming {color}"),
        ("change from {old} to {color}", "changes from {old} to {color}", "changing from {old} to {color}"),
    ],
    "appear": [
        ("appear", "appears", "appearing"),
        ("fade in", "fades in", "fading in"),
        ("show up", "shows up", "showing up"),
        ("come into view", "comes into view", "coming into view"),
    ],
    "disappear": [
        ("disappear", "disappears", "disappearing"),
        ("fade out", "fades out", "fading out"),
        ("vanish", "vanishes", "vanishing"),
        ("fade away", "fades away", "fading away"),
    ],
    "bounce": [
        ("bounce off the {wall} wall", "bounces off the {wall} wall", "bouncing off the {wall} wall"),
        ("hit the {wall} wall and bounce back", "hits the {wall} wall and bounces back",
         "hitting the {wall} wall and bouncing back"),
        ("bounce off the {wall} edge", "bounces off the {wall} edge", "bouncing off the {wall} edge"),
    ],
}
# Forms that name an action without its details, for 'does any object ...?' questions.
GENERIC_VERBS = {
    "move_left": ("move to the left", "moves to the left"), "move_right": ("move to the right", "moves to the right"),
    "move_up": ("move up", "moves up"), "move_down": ("move down", "moves down"), "grow": ("grow", "grows"),
    "shrink": ("shrink", "shrinks"), "rotate": ("rotate", "rotates"), "change_color": ("change color", "changes color"),
    "appear": ("appear", "appears"), "disappear": ("disappear", "disappears"),
    "bounce": ("bounce off a wall", "bounces off a wall"),
}
SHAPE_WORDS = {"circle": ("circle", "disc"), "square": ("square", "block"), "triangle": ("triangle",), "star": ("star",)}
NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
COUNT_CHOICES = ("1", "2", "3", "4")


@dataclass(frozen=True)
class QA:
    """One question with its exact answer; ``choices`` (four, answer among them) when multiple choice."""

    question: str
    answer: str
    type: str
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Turn:
    question: str
    answer: str
    type: str


@dataclass(frozen=True)
class SegmentText:
    """An event's time window in seconds with its own caption."""

    start_sec: float
    end_sec: float
    caption: str
    action: str
    object_idx: int


@dataclass(frozen=True)
class Annotation:
    """All language for one video."""

    captions: list[str]
    qa: list[QA]
    labels: list[str]
    """Primary action first (the earliest event), then the other actions in order of first start."""
    segments: list[SegmentText]
    dialog: list[list[Turn]]


def annotate_scene(scene: SceneSpec, config: SynthConfig) -> Annotation:
    """Captions, QA, labels, segments and a dialog for ``scene``; deterministic in (config.seed, scene)."""
    rng = random.Random(f"synthworld:{config.seed}:{scene.index}:language")
    return Annotation(
        captions=_captions(scene, rng),
        qa=_questions(scene, config, rng),
        labels=_labels(scene),
        segments=_segments(scene, rng),
        dialog=[_dialog(scene, rng)],
    )


# ---------------------------------------------------------------------------- words


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _verb(rng: random.Random, event: Event, obj: SceneObject, form: int, *, names_old: bool = True) -> str:
    """The event as a verb phrase: form 0 base ('move left'), 1 third person, 2 gerund.

    ``names_old=False`` skips 'changes from red to blue', which would name the object in a question.
    """
    options = [v for v in VERBS[event.action] if names_old or "{old}" not in v[form]]
    text = rng.choice(options)[form]
    return text.format(wall=event.wall, color=event.new_color, old=obj.color)


def _noun(rng: random.Random, obj: SceneObject) -> str:
    """A caption noun for the object as it starts: 'red circle', 'small red disc', ..."""
    shape = rng.choice(SHAPE_WORDS[obj.shape])
    return f"{obj.size} {obj.color} {shape}" if rng.random() < 0.25 else f"{obj.color} {shape}"


def _references(scene: SceneSpec, idx: int, avoid: str | None = None) -> list[str]:
    """Noun phrases (to follow 'the') that fit object ``idx`` and no other object in the video.

    ``avoid`` ('color', 'shape' or 'action') keeps out the attribute a question asks about.
    """
    obj = scene.objects[idx]
    others = [o for j, o in enumerate(scene.objects) if j != idx]
    refs = []
    if avoid not in ("color", "shape"):
        refs.append(f"{obj.color} {obj.shape}")  # unique by construction (see scene._fits)
    if avoid != "shape" and not any(o.shape == obj.shape for o in others):
        refs.append(obj.shape)
    if avoid != "color" and not any(obj.color in o.colors for o in others):
        refs.append(f"{obj.color} object")
    if avoid != "action":
        same_shape = set().union(*[action_keys(o) for o in others if o.shape == obj.shape])
        for event in unique_actions(scene, idx):
            if avoid == "color" and event.action == "change_color":
                continue  # 'the circle that turns blue' would give a colour answer away
            verb = VERBS[event.action][0][1].format(wall=event.wall, color=event.new_color, old=obj.color)
            refs.append(f"object that {verb}")
            if avoid != "shape" and not (confusable(event.action) & same_shape):
                refs.append(f"{obj.shape} that {verb}")
    return refs


def _pair(obj: SceneObject) -> str:
    """The object's answer name: initial colour and shape, e.g. 'red circle'."""
    return f"{obj.color} {obj.shape}"


def _timeline(scene: SceneSpec) -> list[tuple[int, Event]]:
    """(object index, event) for every event, in order of start (ties by object)."""
    pairs = [(idx, e) for idx, obj in enumerate(scene.objects) for e in obj.events]
    return sorted(pairs, key=lambda p: (p[1].start_idx, p[0]))


def _with_choices(rng: random.Random, config: SynthConfig, question: str, answer: str, qa_type: str,
                  pool: list[str], *, in_order: bool = False) -> QA:
    """The QA, with four shuffled choices (the answer at a uniform position) with ``choice_prob``.

    Distractors come from ``pool``: its first three others when ``in_order``, else three at random.
    """
    distractors = [p for p in dict.fromkeys(pool) if p != answer]
    if len(distractors) < 3 or rng.random() >= config.choice_prob:
        return QA(question, answer, qa_type)
    choices = distractors[:3] if in_order else rng.sample(distractors, 3)
    choices.append(answer)
    rng.shuffle(choices)
    return QA(question, answer, qa_type, tuple(choices))


# ---------------------------------------------------------------------------- captions


class _Mentions:
    """Tracks which objects a caption has named, so the first mention is 'a ...', later 'the ...' or 'it'."""

    def __init__(self, scene: SceneSpec, rng: random.Random):
        self.rng = rng
        self.nouns = {idx: _noun(rng, obj) for idx, obj in enumerate(scene.objects)}
        self.seen: set[int] = set()
        self.last: int | None = None

    def __call__(self, idx: int, *, pronoun: bool = True) -> str:
        if idx == self.last and pronoun and self.rng.random() < 0.7:
            text = "it"
        elif idx in self.seen:
            text = f"the {self.nouns[idx]}"
        else:
            text = _article(self.nouns[idx])
        self.seen.add(idx)
        self.last = idx
        return text


def _captions(scene: SceneSpec, rng: random.Random) -> list[str]:
    """3-5 different captions, each from a different sentence plan, all true of the whole video."""
    plans = [_caption_sequence, _caption_setting, _caption_gerund, _caption_inventory,
             _caption_relative, _caption_sound, _caption_cut]
    rng.shuffle(plans)
    want = rng.randint(3, 5)
    captions: list[str] = []
    for plan in plans + [_caption_sequence, _caption_gerund, _caption_setting] * 3:
        text = plan(scene, rng)
        if text and text not in captions:
            captions.append(text)
        if len(captions) == want:
            break
    return captions


def _caption_sequence(scene: SceneSpec, rng: random.Random) -> str:
    """Events in time order: 'a red circle moves left, then a blue square grows'."""
    mention = _Mentions(scene, rng)
    timeline = _timeline(scene)[: rng.randint(2, 3)]
    parts, shot = [], 0
    for n, (idx, event) in enumerate(timeline):
        obj = scene.objects[idx]
        clause = f"{mention(idx)} {_verb(rng, event, obj, 1)}"
        if n == 0:
            parts.append(clause)
        elif obj.shot_idx != shot:
            parts.append(rng.choice([", then after a cut ", ", then the video cuts and ", "; after the cut, "]) + clause)
        else:
            parts.append(rng.choice([", then ", " and then ", ", and after that ", ", afterwards "]) + clause)
        shot = obj.shot_idx
    return "".join(parts)


def _caption_setting(scene: SceneSpec, rng: random.Random) -> str:
    """The primary event with the first background: 'on a gray background, a red star spins'."""
    idx, obj = scene.primary_idx, scene.objects[scene.primary_idx]
    subject = _article(_noun(rng, obj))
    verb = _verb(rng, scene.primary_event, obj, 1)
    background = scene.shots[0].background
    return rng.choice([
        f"on a {background} background, {subject} {verb}",
        f"{subject} {verb} on a {background} background",
        f"against a {background} backdrop, {subject} {verb}",
        f"{subject} on a {background} background {verb}",
    ])


def _caption_gerund(scene: SceneSpec, rng: random.Random) -> str:
    """'we see a red circle moving to the left and a blue star spinning'."""
    mention = _Mentions(scene, rng)
    idx, obj = scene.primary_idx, scene.objects[scene.primary_idx]
    text = f"{mention(idx)} {_verb(rng, scene.primary_event, obj, 2)}"
    later = [(i, e) for i, e in _timeline(scene) if i != idx and scene.objects[i].shot_idx == obj.shot_idx]
    if later and rng.random() < 0.6:
        other, event = later[0]
        text += f" and {mention(other)} {_verb(rng, event, scene.objects[other], 2)}"
    return rng.choice(["we see {}", "a video of {}", "footage of {}", "this clip shows {}"]).format(text)


def _caption_inventory(scene: SceneSpec, rng: random.Random) -> str:
    """The first shot's objects, then what one of them does: 'a scene with a red circle and ...'."""
    mention = _Mentions(scene, rng)
    first = [i for i, o in enumerate(scene.objects) if o.shot_idx == 0]
    names = [mention(i) for i in first]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    idx = scene.primary_idx
    mention.last = None
    doing = f"{mention(idx)} {_verb(rng, scene.primary_event, scene.objects[idx], 1)}"
    count = f"{NUMBER_WORDS[len(first)]} {'object' if len(first) == 1 else 'objects'}"
    start = "at first " if len(scene.shots) > 1 else ""
    return rng.choice([
        f"{start}a scene with {listed}, in which {doing}",
        f"{start}there {'is' if len(first) == 1 else 'are'} {count}, {listed}; {doing}",
        f"{listed} on a {scene.shots[0].background} background; {doing}",
    ])


def _caption_relative(scene: SceneSpec, rng: random.Random) -> str | None:
    """Two events joined by before/after in either word order."""
    timeline = _timeline(scene)
    pairs = [(a, b) for n, a in enumerate(timeline) for b in timeline[n + 1:] if a[1].end_idx < b[1].start_idx]
    if not pairs:
        return None
    (i, early), (j, late) = rng.choice(pairs)
    mention = _Mentions(scene, rng)
    form = rng.randrange(4)
    if form == 0:
        first = f"{mention(i)} {_verb(rng, early, scene.objects[i], 1)}"
        return f"{first} before {mention(j)} {_verb(rng, late, scene.objects[j], 1)}"
    if form == 1:
        first = f"{mention(j)} {_verb(rng, late, scene.objects[j], 1)}"
        return f"{first} after {mention(i)} {_verb(rng, early, scene.objects[i], 1)}"
    first = f"{mention(i)} {_verb(rng, early, scene.objects[i], 1)}"
    second = f"{mention(j)} {_verb(rng, late, scene.objects[j], 1)}"
    return f"after {first}, {second}" if form == 2 else f"first {first}, and then {second}"


def _caption_sound(scene: SceneSpec, rng: random.Random) -> str | None:
    """A beep and what makes it, or a bounce or appearance that makes none."""
    sounds = scene_sounds(scene)
    mention = _Mentions(scene, rng)
    if sounds:
        sound = rng.choice(sounds)
        obj = scene.objects[sound.object_idx]
        event = next(e for e in obj.events if e.action in SOUND_ACTIONS)
        subject, verb = mention(sound.object_idx), _verb(rng, event, obj, 1)
        return rng.choice([
            f"{subject} {verb} with a beep",
            f"{subject} beeps as it {_verb(rng, event, obj, 1)}",
            f"you can hear a beep when {subject} {verb}",
            f"{subject} {verb} and makes a sound",
        ])
    silent = [(i, e) for i, e in _timeline(scene) if e.action in SOUND_ACTIONS]
    if not silent:
        return None
    idx, event = rng.choice(silent)
    subject, verb = mention(idx), _verb(rng, event, scene.objects[idx], 1)
    return rng.choice([f"{subject} silently {verb}", f"{subject} {verb} without a sound"])


def _caption_cut(scene: SceneSpec, rng: random.Random) -> str | None:
    """'the video cuts from a gray scene with a red circle to a navy scene with a green star'."""
    if len(scene.shots) < 2:
        return None
    mention = _Mentions(scene, rng)
    first = [i for i, o in enumerate(scene.objects) if o.shot_idx == 0]
    second = [i for i, o in enumerate(scene.objects) if o.shot_idx == 1]
    before, after = scene.shots[0].background, scene.shots[1].background
    form = rng.randrange(3)
    if form == 0:
        a = " and ".join(mention(i, pronoun=False) for i in first[:2])
        b = " and ".join(mention(i, pronoun=False) for i in second[:2])
        return f"the video cuts from a {before} scene with {a} to a {after} scene with {b}"
    if form == 1:
        return f"after a hard cut, the background changes from {before} to {after}"
    idx, event = next((i, e) for i, e in _timeline(scene) if scene.objects[i].shot_idx == 1)
    lead = f"{mention(scene.primary_idx)} {_verb(rng, scene.primary_event, scene.objects[scene.primary_idx], 1)}"
    then = f"{mention(idx)} {_verb(rng, event, scene.objects[idx], 1)}"
    return f"{lead} on {before}, then the scene cuts to {after}, where {then}"


# ---------------------------------------------------------------------------- segments, labels


def _segments(scene: SceneSpec, rng: random.Random) -> list[SegmentText]:
    """One segment per event, in time order, captioned 'the red circle moves to the left'."""
    segments = []
    for idx, event in _timeline(scene):
        obj = scene.objects[idx]
        caption = f"the {obj.color} {rng.choice(SHAPE_WORDS[obj.shape])} {_verb(rng, event, obj, 1)}"
        segments.append(SegmentText(event.start_sec, event.end_sec, caption, event.action, idx))
    return segments


def _labels(scene: SceneSpec) -> list[str]:
    labels = [scene.primary_event.action]
    for _, event in _timeline(scene):
        if event.action not in labels:
            labels.append(event.action)
    return labels


# ---------------------------------------------------------------------------- questions


def _questions(scene: SceneSpec, config: SynthConfig, rng: random.Random) -> list[QA]:
    qa: list[QA] = []
    for family in (_object_questions, _color_questions, _shape_questions, _action_questions, _count_questions,
                   _order_questions, _exist_questions, _sound_questions, _shot_questions):
        qa.extend(family(scene, config, rng))
    return qa


def _allowed_pairs(scene: SceneSpec, config: SynthConfig) -> list[str]:
    """Colour-shape names a question may mention (held-out ones never appear in compositional train/val)."""
    hide = config.split == "compositional" and scene.split != "test"
    return [f"{c} {s}" for s in SHAPES for c in COLORS if not (hide and (c, s) in HELD_OUT)]


def _object_questions(scene: SceneSpec, config: SynthConfig, rng: random.Random) -> list[QA]:
    """'which object bounces off the top wall?' about the object planned for it (scene.probe_idx)."""
    if scene.probe_idx is None:
        return []
    obj = scene.objects[scene.probe_idx]
    event = rng.choice(unique_actions(scene, scene.probe_idx))
    verb = _verb(rng, event, obj, 1, names_old=False)
    question = rng.choice(["which object {}?", "what object {}?", "what is the object that {}?",
                           "which of the objects {}?"])
    # in-video objects first: they are the hard distractors
    in_video = [_pair(o) for o in scene.objects if o is not obj]
    allowed = _allowed_pairs(scene, config)
    pool = [p for p in in_video if p in allowed] + rng.sample(allowed, len(allowed))
    return [_with_choices(rng, config, question.format(verb), _pair(obj), "object", pool, in_order=True)]


def _color_questions(scene: SceneSpec, config: SynthConfig, rng: random.Random) -> list[QA]:
    candidates = [(i, refs) for i in range(len(scene.objects)) if (refs := _references(scene, i, "color"))]
    if not candidates:
        return []
    idx, refs = rng.choice(candidates)
    obj, ref = scene.objects[idx], rng.choice(refs)
    change = next((e for e in obj.events if e.action == "change_color"), None)
    if change is None:
        question = rng.choice(["what color is the {}?", "what is the color of the {}?", "which color is the {}?",
                               "what color does the {} have?"])
        answer = obj.color
    elif rng.random() < 0.5:
        question = rng.choice(["what color does the {} turn?", "what color does the {} become?",
                               "what color does the {} change to?"])
        answer = change.new_color
    else:
        question = rng.choice(["what color is the {} at first?", "what color is the {} before it changes color?",
                               "what color is the {} at the start?"])
        answer = obj.color
    return [_with_choices(rng, config, question.format(ref), answer, "color", list(COLORS))]


def _shape_questions(scene: SceneSpec, config: SynthConfig, rng: random.Random) -> list[QA]:
    candidates = [(i, refs) for i in range(len(scene.objects)) if (refs := _references(scene, i, "shape"))]
    if not candidates:
        return []
    idx, refs = rng.choice(candidates)
    question = rng.choice(["what shape is the {}?", "what is the shape of the {}?", "which shape is the {}?",
                           "the {} has what shape?"])
    return [_with_choices(rng, config, question.format(rng.choice(refs)), scene.objects[idx].shape, "shape",
                          list(SHAPES))]


def _action_questions(scene: SceneSpec, config: SynthConfig, rng: random.Random) -> list[QA]:
    """What one object does (first, last, after/before its other action); sometimes what happens first."""
    idx = rng.randrange(len(scene.objects))
    obj, ref = scene.objects[idx], rng.choice(_references(scene, idx, "action"))
    if len(obj.events) == 1:
        question = rng.choice(["what does the {} do?", "what happens to the {}?", "what is the {} doing?",
                               "which action does the {} perform?"]).format(ref)
        answer = obj.events[0].action
    else:
        first, second = obj.events
        form = rng.randrange(4)
        if form == 0:
            question = rng.choice(["what does the {} do first?", "what is the first thing the {} does?"]).format(ref)
            answer = first.action
        elif form == 1:
            question = rng.choice(["what does the {} do last?", "what is the last thing the {} does?"]).format(ref)
            answer = second.action
        elif form == 2:
            question = f"what does the {ref} do after it {_verb(rng, first, obj, 1, names_old=False)}?"
            answer = second.action
        else:
            question = f"what does the {ref} do before it {_verb(rng, second, obj, 1, names_old=False)}?"
            answer = first.action
    pool = [ACTION_ANSWERS[a] for a in ACTIONS]
    qa = [_with_choices(rng, config, question, ACTION_ANSWERS[answer], "action", pool)]
    if rng.random() < 0.5:
        question = rng.choice(["what happens first in the video?", "what is the first action in the video?",
                               "which action happens first?"])
        qa.append(_with_choices(rng, config, question, ACTION_ANSWERS[scene.primary_event.action], "action", pool))
    return qa


def _count_questions(scene: SceneSpec, config: SynthConfig, rng: random.Random) -> list[QA]:
    """How many objects the first shot has (all of them, including ones that appear or disappear)."""
    count = sum(1 for o in scene.objects if o.shot_idx == 0)
    if len(scene.shots) == 1:
        question = rng.choice(["how many objects are there?", "how many shapes are in the video?",
                               "how many objects are shown?", "what is the number of objects in the video?",
                               "how many shapes can you see?"])
    else:
        question = rng.choice(["how many objects are there before the cut?", "how many shapes are in the first shot?",
                               "how many objects does the first shot show?",
                               "before the scene changes, how many objects are there?"])
    return [_with_choices(rng, config, question, str(count), "count", list(COUNT_CHOICES))]


def _order_questions(scene: SceneSpec, config: SynthConfig, rng: random.Random) -> list[QA]:
    """'does X <act> before or after Y <act>?'; the answer is drawn first (stratified), then the wording."""
    timeline = _timeline(scene)
    pairs = [(a, b) for n, a in enumerate(timeline) for b in timeline[n + 1:] if a[1].end_idx < b[1].start_idx]
    if not pairs:
        return []
    answer = stratified_choice(config.seed, scene.index, "order", ("before", "after"))
    early, late = rng.choice(pairs)
    (i, event_a), (j, event_b) = (early, late) if answer == "before" else (late, early)
    subject = f"the {rng.choice(_references(scene, i, 'action'))}"
    other = "it" if i == j else f"the {rng.choice(_references(scene, j, 'action'))}"
    verb_a = _verb(rng, event_a, scene.objects[i], 0, names_old=False)
    verb_b = _verb(rng, event_b, scene.objects[j], 1, names_old=False)
    question = rng.choice([
        f"does {subject} {verb_a} before or after {other} {verb_b}?",
        f"does {subject} {verb_a} before {other} {verb_b}, or after?",
        f"when does {subject} {verb_a}: before or after {other} {verb_b}?",
    ]) if i != j else f"does {subject} {verb_a} before or after it {verb_b}?"
    return [QA(question, answer, "order")]


def _exist_questions(scene: SceneSpec, config: SynthConfig, rng: random.Random) -> list[QA]:
    """Yes/no questions: the answer is drawn first (stratified), then a question kind that fits it."""
    qa = [_exist_question(scene, config, rng, stratified_choice(config.seed, scene.index, "exist", ("yes", "no")))]
    if rng.random() < 0.5:
        qa.append(_exist_question(scene, config, rng, rng.choice(("yes", "no"))))
    return [q for q in qa if q is not None]


def _exist_question(scene: SceneSpec, config: SynthConfig, rng: random.Random, answer: str) -> QA | None:
    objects = scene.objects
    yes = answer == "yes"
    shown_pairs = {f"{c} {o.shape}" for o in objects for c in o.colors}
    shown_colors = {c for o in objects for c in o.colors}
    shown_shapes = {o.shape for o in objects}
    keys = set().union(*[action_keys(o) for o in objects])
    present_actions = {a for o in objects for a in o.actions}
    options: dict[str, list] = {
        "pair": sorted(shown_pairs) if yes else [p for p in _allowed_pairs(scene, config) if p not in shown_pairs],
        "color": sorted(shown_colors) if yes else [c for c in COLORS if c not in shown_colors],
        "shape": sorted(shown_shapes) if yes else [s for s in SHAPES if s not in shown_shapes],
        "action": sorted(present_actions) if yes else [a for a in ACTIONS if not (confusable(a) & keys)],
        "sound": [i for i, o in enumerate(objects)  # object indices
                  if o.is_noisy == yes and any(a in SOUND_ACTIONS for a in o.actions)],
    }
    kinds = [k for k, v in options.items() if v]
    if not kinds:
        return None
    kind = rng.choice(kinds)
    value = rng.choice(options[kind])
    if kind == "pair":
        question = rng.choice([f"is there {_article(value)}?", f"is there any {value} in the video?",
                               f"does the video contain {_article(value)}?"])
    elif kind == "color":
        # 'anything red' could count a background (maroon is reddish): ask about objects only
        question = rng.choice([f"is any object {value}?", f"is there {_article(value)} object?",
                               f"are there any {value} objects?"])
    elif kind == "shape":
        question = rng.choice([f"is there {_article(value)}?", f"are there any {value}s?",
                               f"can you see {_article(value)}?"])
    elif kind == "action":
        base, third = GENERIC_VERBS[value]
        question = rng.choice([f"does any object {base}?", f"does anything {base}?", f"is there an object that {third}?"])
    else:
        idx, obj = value, objects[value]
        event = next(e for e in obj.events if e.action in SOUND_ACTIONS)
        ref, verb = rng.choice(_references(scene, idx, "action")), _verb(rng, event, obj, 1, names_old=False)
        question = rng.choice([f"does the {ref} beep when it {verb}?", f"is there a beep when the {ref} {verb}?",
                               f"does the {ref} make a sound when it {verb}?"])
    return QA(question, answer, "exist")


def _sound_questions(scene: SceneSpec, config: SynthConfig, rng: random.Random) -> list[QA]:
    """Which shape beeps (each shape has its own pitch); asked when that has one answer."""
    sounds = scene_sounds(scene)
    shapes = {scene.objects[s.object_idx].shape for s in sounds}
    if len(shapes) == 1:
        question = rng.choice(["which shape makes a sound?", "what shape is the object that beeps?",
                               "which shape beeps?", "what kind of shape makes the beeping sound?"])
        answer = shapes.pop()
    elif len(shapes) > 1 and sounds[0].time_sec < sounds[1].time_sec:
        question = rng.choice(["which shape beeps first?", "what shape makes the first beep?"])
        answer = scene.objects[sounds[0].object_idx].shape
    else:
        return []
    return [_with_choices(rng, config, question, answer, "sound", list(SHAPES))]


def _shot_questions(scene: SceneSpec, config: SynthConfig, rng: random.Random) -> list[QA]:
    """Is there a cut (wording of either polarity); with a cut, is a given object before it."""
    has_cut = len(scene.shots) > 1
    question, says_cut = rng.choice([
        ("is there a cut in the video?", True), ("is there a hard cut to another scene?", True),
        ("does the video cut to a different scene?", True), ("does the background change?", True),
        ("is the video a single continuous shot?", False), ("does the whole video happen in one scene?", False),
    ])
    qa = [QA(question, "yes" if has_cut == says_cut else "no", "shot")]
    if has_cut:
        answer = rng.choice(("yes", "no"))
        shot = 0 if answer == "yes" else 1
        idx = rng.choice([i for i, o in enumerate(scene.objects) if o.shot_idx == shot])
        ref = rng.choice(_references(scene, idx))
        question = rng.choice([f"is the {ref} shown before the cut?", f"is the {ref} in the first shot?"])
        qa.append(QA(question, answer, "shot"))
    return qa


# ---------------------------------------------------------------------------- dialog


def _dialog(scene: SceneSpec, rng: random.Random) -> list[Turn]:
    """3-4 turns about the primary object, referring back to it as 'it'."""
    idx = scene.primary_idx
    obj = scene.objects[idx]
    if rng.random() < 0.5:
        opener = Turn(rng.choice(["which object does something first?", "what is the first object to do something?",
                                  "which object is the first to act?"]), _pair(obj), "object")
    else:
        opener = Turn(f"is there {_article(_pair(obj))}?", "yes", "exist")
    first = obj.events[0]
    turns = [
        opener,
        Turn(rng.choice(["what does it do?", "what is it doing?"] if len(obj.events) == 1 else
                        ["what does it do first?", "what does it do at first?"]), ACTION_ANSWERS[first.action], "action"),
        Turn(rng.choice(["what does it do next?", "and after that?", "what does it do after that?"]),
             ACTION_ANSWERS[obj.events[1].action] if len(obj.events) > 1 else "nothing", "order"),
    ]
    if rng.random() < 0.5:
        options = [Turn("what size is it at the start?", obj.size, "size")]
        change = next((e for e in obj.events if e.action == "change_color"), None)
        options.append(Turn("what color does it turn?", change.new_color, "color") if change
                       else Turn("what color is it?", obj.color, "color"))
        if any(a in SOUND_ACTIONS for a in obj.actions):
            options.append(Turn("does it make a sound?", "yes" if obj.is_noisy else "no", "sound"))
        turns.append(rng.choice(options))
    return turns
