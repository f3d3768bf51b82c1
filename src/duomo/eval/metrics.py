"""Evaluation metrics: pure functions on lists and arrays (accuracy, F1, confusion, retrieval ranks
and recall, temporal IoU, WER, caption scores, shot boundaries).

They never see a model or a tensor; ``eval/evaluate.py`` turns head predictions into their inputs.
Caption scores are pycocoevalcap's BLEU, METEOR, ROUGE-L and CIDEr-D, as in the COCO caption benchmark.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import subprocess
import threading
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Answers and classes
# ---------------------------------------------------------------------------------------------


def _normalize_answer(text: str) -> str:
    return " ".join(str(text).lower().split())


def accuracy(predictions: list[str], answers: list[str]) -> float:
    """Fraction of predictions equal to their answer, compared after lower-casing and collapsing
    whitespace (``" Red  square"`` matches ``"red square"``); punctuation counts.
    """
    _check_same_length(predictions, answers, "predictions", "answers")
    if not predictions:
        raise ValueError("accuracy needs at least one prediction")
    hits = sum(_normalize_answer(p) == _normalize_answer(a) for p, a in zip(predictions, answers))
    return hits / len(predictions)


def accuracy_by_group(predictions: list[str], answers: list[str], groups: list) -> dict[str, float]:
    """:func:`accuracy` within each group (question type, dialog turn index ...).

    Returns ``{str(group): accuracy}`` sorted by key; numbers sort as numbers (``"2"`` before
    ``"10"``) when every group is an int. Empty inputs give ``{}``.
    """
    _check_same_length(predictions, answers, "predictions", "answers")
    _check_same_length(predictions, groups, "predictions", "groups")
    members: dict = defaultdict(list)
    for i, group in enumerate(groups):
        members[group].append(i)
    keys = list(members)
    if all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in keys):
        keys.sort()
    else:
        keys.sort(key=str)
    return {
        str(k): accuracy([predictions[i] for i in members[k]], [answers[i] for i in members[k]])
        for k in keys
    }


def top_k_accuracy(scores: np.ndarray, targets: np.ndarray, k: int) -> float:
    """Fraction of rows whose target is among their ``k`` highest scores.

    scores (N, K) float, targets (N,) int in [0, K). Ties are broken by class index, lower first
    (a stable descending sort), so equal scores neither help nor hurt every class at once.
    ``k >= K`` gives 1.0.
    """
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets)
    if scores.ndim != 2 or targets.shape != (scores.shape[0],):
        raise ValueError(f"top_k_accuracy wants scores (N, K) and targets (N,), got {scores.shape} and {targets.shape}")
    if scores.shape[0] == 0:
        raise ValueError("top_k_accuracy needs at least one row")
    if k < 1:
        raise ValueError(f"top_k_accuracy: k must be at least 1, got {k}")
    _check_class_range(targets, scores.shape[1], "targets")
    rows = np.arange(len(targets))
    target_score = scores[rows, targets][:, None]
    lower_index = np.arange(scores.shape[1])[None, :] < targets[:, None]
    # rank = classes strictly above the target + tied classes that come before it
    rank = (scores > target_score).sum(1) + ((scores == target_score) & lower_index).sum(1)
    return float((rank < k).mean())


def confusion_matrix(pred: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) int64 counts: ``matrix[t, p]`` = rows of true class ``t`` predicted as ``p``.

    pred, target (N,) int in [0, K).
    """
    pred, target = _class_arrays(pred, target, num_classes)
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (target, pred), 1)
    return matrix


def precision_recall_f1(pred: np.ndarray, target: np.ndarray, num_classes: int) -> dict[str, float]:
    """Macro precision, recall and F1 of single-label predictions.

    pred, target (N,) int in [0, K). Returns ``macro_precision``, ``macro_recall``, ``macro_f1``.

    Convention (the same as scikit-learn's ``precision_recall_fscore_support(target, pred,
    average="macro", zero_division=0)``): the average runs over the classes present in target or
    pred; a class never seen in either is left out. A ratio whose denominator is 0 counts as 0:
    a class predicted but never true has precision 0 and recall 0; a true class never predicted
    has precision 0. F1 per class is ``2 TP / (2 TP + FP + FN)`` (0 when TP = 0), averaged after.
    """
    matrix = confusion_matrix(pred, target, num_classes)
    if matrix.sum() == 0:
        raise ValueError("precision_recall_f1 needs at least one row")
    tp = np.diag(matrix).astype(np.float64)
    num_pred = matrix.sum(0).astype(np.float64)  # TP + FP
    num_true = matrix.sum(1).astype(np.float64)  # TP + FN
    present = (num_pred + num_true) > 0
    precision = _safe_divide(tp, num_pred)
    recall = _safe_divide(tp, num_true)
    f1 = _safe_divide(2 * tp, num_pred + num_true)
    return {
        "macro_precision": float(precision[present].mean()),
        "macro_recall": float(recall[present].mean()),
        "macro_f1": float(f1[present].mean()),
    }


def multilabel_scores(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Scores of multi-label predictions: pred, target (N, K) bool (True = label on).

    Returns ``macro_precision``, ``macro_recall``, ``macro_f1`` (per class, then averaged),
    ``micro_f1`` (from TP, FP, FN summed over every class) and ``exact_match`` (fraction of rows
    whose whole label set is right).

    Convention: as in :func:`precision_recall_f1`, 0/0 counts as 0 and the macro average runs
    over classes that are on in at least one row of target or pred. Note that scikit-learn's
    multi-label macro average (``zero_division=0``) would instead count a class absent from both
    as 0 and so pull the average down; we leave such classes out. ``micro_f1`` is 0 when nothing
    is on anywhere.
    """
    pred = np.asarray(pred).astype(bool)
    target = np.asarray(target).astype(bool)
    if pred.ndim != 2 or pred.shape != target.shape:
        raise ValueError(f"multilabel_scores wants pred and target of one (N, K) shape, "
                         f"got {pred.shape} and {target.shape}")
    if pred.shape[0] == 0:
        raise ValueError("multilabel_scores needs at least one row")
    tp = (pred & target).sum(0).astype(np.float64)
    num_pred = pred.sum(0).astype(np.float64)
    num_true = target.sum(0).astype(np.float64)
    present = (num_pred + num_true) > 0
    precision = _safe_divide(tp, num_pred)
    recall = _safe_divide(tp, num_true)
    f1 = _safe_divide(2 * tp, num_pred + num_true)
    micro_denominator = num_pred.sum() + num_true.sum()
    return {
        "macro_precision": float(precision[present].mean()) if present.any() else 0.0,
        "macro_recall": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "micro_f1": float(2 * tp.sum() / micro_denominator) if micro_denominator > 0 else 0.0,
        "exact_match": float((pred == target).all(1).mean()),
    }


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0."""
    out = np.zeros_like(numerator, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _class_arrays(pred: np.ndarray, target: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred)
    target = np.asarray(target)
    if pred.ndim != 1 or pred.shape != target.shape:
        raise ValueError(f"pred and target must both be (N,), got {pred.shape} and {target.shape}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    _check_class_range(pred, num_classes, "pred")
    _check_class_range(target, num_classes, "target")
    return pred.astype(np.int64), target.astype(np.int64)


def _check_class_range(values: np.ndarray, num_classes: int, name: str) -> None:
    if values.size and not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class indices, got dtype {values.dtype}")
    if values.size and (values.min() < 0 or values.max() >= num_classes):
        raise ValueError(f"{name} holds class indices outside [0, {num_classes}): "
                         f"min {values.min()}, max {values.max()} (drop unknown labels, e.g. -100, first)")


def _check_same_length(first: list, second: list, first_name: str, second_name: str) -> None:
    if len(first) != len(second):
        raise ValueError(f"{first_name} and {second_name} differ in length: {len(first)} vs {len(second)}")


# ---------------------------------------------------------------------------------------------
# Speech
# ---------------------------------------------------------------------------------------------


def speech_words(text: str) -> list[str]:
    """The words WER compares: lower-cased, punctuation dropped (apostrophes inside words
    kept, so "don't" stays one word; hyphens split), split on whitespace."""
    text = re.sub(r"[^\w\s']|_", " ", text.lower())
    return [word.strip("'") for word in text.split() if word.strip("'")]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word error rate: (substitutions + deletions + insertions) / words in ``reference``,
    counted by the minimum edit distance between the :func:`speech_words` of both texts.

    0.0 is a perfect match; insertions can take it above 1. Raises ValueError when the
    reference has no words (the rate is undefined there).
    """
    ref, hyp = speech_words(reference), speech_words(hypothesis)
    if not ref:
        raise ValueError("word_error_rate needs a reference with at least one word")
    # Levenshtein distance over words, one row of the table at a time
    previous = list(range(len(hyp) + 1))  # distance from ref[:0] to hyp[:j]
    for i, ref_word in enumerate(ref, start=1):
        current = [i] + [0] * len(hyp)
        for j, hyp_word in enumerate(hyp, start=1):
            current[j] = min(
                previous[j] + 1,  # deletion of ref_word
                current[j - 1] + 1,  # insertion of hyp_word
                previous[j - 1] + (ref_word != hyp_word),  # match or substitution
            )
        previous = current
    return previous[-1] / len(ref)


# ---------------------------------------------------------------------------------------------
# Shot boundaries
# ---------------------------------------------------------------------------------------------


def shot_boundary_scores(predicted_frames: list[int], true_frames: list[int], tolerance: int = 1) -> dict[str, float]:
    """Precision, recall and F1 of predicted shot boundaries (the first frame of each new shot).

    A prediction matches a true boundary at most ``tolerance`` frames away, one to one (a
    maximum matching: both lists sorted, the earliest unmatched pair within reach is matched).
    Returns ``{"precision", "recall", "f1", "tp", "fp", "fn"}``; with nothing predicted
    precision is 1.0, with nothing true recall is 1.0 (no mistake was made), and F1 is 0 when
    both precision and recall are 0.
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    predicted, true = sorted(int(f) for f in predicted_frames), sorted(int(f) for f in true_frames)
    tp = i = j = 0
    while i < len(predicted) and j < len(true):
        if abs(predicted[i] - true[j]) <= tolerance:
            tp, i, j = tp + 1, i + 1, j + 1
        elif predicted[i] < true[j]:
            i += 1  # too early for this and every later true boundary
        else:
            j += 1  # no later prediction can reach it
    fp, fn = len(predicted) - tp, len(true) - tp
    precision = tp / (tp + fp) if predicted else 1.0
    recall = tp / (tp + fn) if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


# ---------------------------------------------------------------------------------------------
# Retrieval and moments
# ---------------------------------------------------------------------------------------------


def retrieval_ranks(similarity: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """(Q,) int: for each query (row), the 1-based rank of its best positive candidate.

    similarity (Q, K) float, positive (Q, K) bool with at least one True per row. Rank = 1 + the
    negatives scoring at least as high as the best positive: ties count against the query, so a
    model that scores everything equally ranks last, not first.
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    if similarity.ndim != 2 or positive.shape != similarity.shape:
        raise ValueError(f"retrieval_ranks wants similarity and positive of one (Q, K) shape, "
                         f"got {similarity.shape} and {positive.shape}")
    if not positive.any(axis=1).all():
        raise ValueError("retrieval_ranks: every query needs at least one positive candidate")
    best = np.where(positive, similarity, -np.inf).max(axis=1, keepdims=True)
    return 1 + ((similarity >= best) & ~positive).sum(axis=1)


def recall_at_k(ranks: np.ndarray, k: int) -> float:
    """Fraction of queries whose rank (1-based, from retrieval_ranks) is at most ``k``."""
    ranks = _ranks_array(ranks)
    if k < 1:
        raise ValueError(f"recall_at_k: k must be at least 1, got {k}")
    return float((ranks <= k).mean())


def median_rank(ranks: np.ndarray) -> float:
    """Median of the 1-based ranks (MdR; lower is better)."""
    return float(np.median(_ranks_array(ranks)))


def mean_rank(ranks: np.ndarray) -> float:
    """Mean of the 1-based ranks (MnR; lower is better)."""
    return float(np.mean(_ranks_array(ranks)))


def _ranks_array(ranks: np.ndarray) -> np.ndarray:
    ranks = np.asarray(ranks)
    if ranks.ndim != 1 or ranks.size == 0:
        raise ValueError(f"ranks must be a non-empty 1-D array, got shape {ranks.shape}")
    if ranks.min() < 1:
        raise ValueError(f"ranks are 1-based, got {ranks.min()}")
    return ranks


def temporal_iou(predicted: tuple[float, float], target: tuple[float, float]) -> float:
    """Intersection over union of two time spans (start, end) in seconds; 0.0 when they do not
    overlap, and when both are empty."""
    (p_start, p_end), (t_start, t_end) = predicted, target
    if p_end < p_start or t_end < t_start:
        raise ValueError(f"temporal_iou: a span ends before it starts: {predicted}, {target}")
    inter = min(p_end, t_end) - max(p_start, t_start)
    if inter <= 0:
        return 0.0
    return float(inter / (max(p_end, t_end) - min(p_start, t_start)))  # overlapping: the union is one span


def moment_recall_at_iou(predicted: list[tuple[float, float]], targets: list[tuple[float, float]],
                         threshold: float) -> float:
    """R@1 at IoU ``threshold``: fraction of queries whose (one, top) predicted span has
    temporal_iou >= threshold with its target span."""
    _check_same_length(predicted, targets, "predicted", "targets")
    if not predicted:
        raise ValueError("moment_recall_at_iou needs at least one prediction")
    return float(np.mean([temporal_iou(p, t) >= threshold for p, t in zip(predicted, targets)]))


# ---------------------------------------------------------------------------------------------
# Captions
# ---------------------------------------------------------------------------------------------


class MeteorScorer:
    """One METEOR 1.5 java process (pycocoevalcap's ``Meteor``), ended by :meth:`close`.

    The process starts here and loads METEOR's paraphrase table in the background; the first
    score waits for that (6-8 s on 2 idle cores, more when busy). Keep one scorer open across
    calls and close it after::

        with MeteorScorer() as meteor:
            scores = caption_scores(predictions, references, meteor=meteor)

    Without Java, or if the process dies or runs past ``timeout_sec``, :meth:`score` logs a
    warning and returns None instead of raising or hanging.
    """

    def __init__(self, *, timeout_sec: float = 600.0):
        from pycocoevalcap.meteor.meteor import Meteor

        self.timeout_sec = timeout_sec
        self._meteor: Meteor | None = None
        # checked first: a Meteor whose Popen fails is half-built and its __del__ raises later
        if shutil.which("java") is None:
            logger.warning("METEOR needs Java, which is not on PATH; METEOR is reported as None")
            return
        try:
            self._meteor = Meteor()
        except OSError as err:
            logger.warning("METEOR needs Java, which could not be started (%s); METEOR is reported as None", err)

    @property
    def process(self) -> subprocess.Popen | None:
        """The java process, None when it could not start or after :meth:`close`."""
        return self._meteor.meteor_p if self._meteor is not None else None

    def score(self, references: dict[str, list[str]], predictions: dict[str, str]) -> float | None:
        """Corpus METEOR of tokenized captions, both keyed by the same ids; None if unavailable."""
        if self._meteor is None:
            return None
        gts = {key: [_meteor_safe(ref) for ref in refs] for key, refs in references.items()}
        res = {key: [_meteor_safe(predictions[key])] for key in references}
        process = self._meteor.meteor_p
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            process.kill()

        # a hung java process would block readline forever; killing it turns the wait into an error
        watchdog = threading.Timer(self.timeout_sec, kill)
        watchdog.start()
        try:
            value, _ = self._meteor.compute_score(gts, res)
        except (OSError, ValueError) as err:  # broken pipe, or an empty line from a dead process
            self.close()
            reason = (f"no answer within {self.timeout_sec:g} s" if timed_out.is_set()
                      else f"{type(err).__name__}: {err}")
            logger.warning("METEOR failed (%s); METEOR is reported as None", reason)
            return None
        finally:
            watchdog.cancel()
        return float(value)

    def close(self) -> None:
        """Ends the java process and closes its pipes; safe to call twice."""
        if self._meteor is None:
            return
        meteor, self._meteor = self._meteor, None
        process = meteor.meteor_p
        for stream in (process.stdin, process.stdout, process.stderr):
            try:
                stream.close()
            except OSError:  # stdin of a dead process may fail to flush
                pass
        process.kill()
        process.wait()
        # pycocoevalcap's compute_score does not release its lock when it raises, and Meteor.__del__
        # takes that lock: free it so garbage collection cannot block forever
        if meteor.lock.locked():
            meteor.lock.release()

    def __enter__(self) -> "MeteorScorer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _meteor_safe(text: str) -> str:
    # METEOR reads one line per request and uses ||| as its field separator
    return " ".join(text.replace("|||", " ").split())


def caption_scores(
    predictions: dict[str, str] | list[str],
    references: dict[str, list[str]] | list[list[str]],
    *,
    use_meteor: bool = True,
    meteor: MeteorScorer | None = None,
) -> dict[str, float | None]:
    """COCO caption scores of generated captions against one or more references each.

    Args:
        predictions: one caption per item, as a list or a dict keyed by item id.
        references: the reference captions of each item: a list aligned with ``predictions``
            (with dict predictions, aligned with their insertion order), or a dict with the
            same keys as dict predictions.
        use_meteor: False skips METEOR (reported as None) and its slow java start.
        meteor: an open scorer to reuse; by default one is started and closed for this call.

    Returns:
        ``bleu_1`` .. ``bleu_4``, ``meteor`` (None when Java is missing or fails), ``rouge_l``
        and ``cider`` (CIDEr-D, scaled by 10 as usual, so it can exceed 1), as floats.

    Captions are tokenized as in the COCO caption evaluation: Stanford's PTB tokenizer (the jar
    shipped with pycocoevalcap, run through Java), lower-cased, punctuation tokens dropped. We
    run the jar ourselves with stdin/stdout rather than through ``PTBTokenizer``, which writes a
    temporary file into the installed package and prints to our stderr. Without Java, captions
    are lower-cased and split into words by a regular expression instead, with a warning;
    scores then differ slightly (contractions, hyphens).

    CIDEr-D weighs n-grams by their document frequency over the references of the whole set,
    so score a set of several items: with one item every weight is 0 and so is CIDEr.
    """
    keys, hypotheses, reference_lists = _align_captions(predictions, references)
    owns_meteor = use_meteor and meteor is None
    if owns_meteor:
        meteor = MeteorScorer()  # java loads METEOR's tables while the other scores run
    try:
        flat = hypotheses + [ref for refs in reference_lists for ref in refs]
        tokens = _tokenize_captions(flat)
        res = {key: [tokens[i]] for i, key in enumerate(keys)}
        gts = {}
        start = len(keys)
        for key, refs in zip(keys, reference_lists):
            gts[key] = tokens[start : start + len(refs)]
            start += len(refs)
        return _score_tokenized(gts, res, meteor if use_meteor else None)
    finally:
        if owns_meteor:
            meteor.close()


def _score_tokenized(gts: dict[str, list[str]], res: dict[str, list[str]],
                     meteor: MeteorScorer | None) -> dict[str, float | None]:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge_l, _ = Rouge().compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    meteor_score = meteor.score(gts, {key: hyp[0] for key, hyp in res.items()}) if meteor is not None else None
    scores: dict[str, float | None] = {f"bleu_{n + 1}": float(bleu[n]) for n in range(4)}
    scores.update(meteor=meteor_score, rouge_l=float(rouge_l), cider=float(cider))
    return scores


def _align_captions(
    predictions: dict[str, str] | list[str], references: dict[str, list[str]] | list[list[str]]
) -> tuple[list[str], list[str], list[list[str]]]:
    """(keys, one prediction per key, the references per key), checked."""
    if isinstance(predictions, dict):
        keys = [str(key) for key in predictions]
        hypotheses = [str(text) for text in predictions.values()]
    else:
        keys = [str(i) for i in range(len(predictions))]
        hypotheses = [str(text) for text in predictions]
    if len(set(keys)) != len(keys):
        raise ValueError("caption_scores: prediction ids collide once turned into strings")
    if isinstance(references, dict):
        if not isinstance(predictions, dict):
            raise ValueError("caption_scores: dict references need dict predictions with the same keys")
        by_key = {str(key): refs for key, refs in references.items()}
        if set(by_key) != set(keys):
            missing = sorted(set(keys) ^ set(by_key))[:3]
            raise ValueError(f"caption_scores: predictions and references have different keys, e.g. {missing}")
        reference_lists = [by_key[key] for key in keys]
    else:
        _check_same_length(hypotheses, references, "predictions", "references")
        reference_lists = list(references)
    if not keys:
        raise ValueError("caption_scores needs at least one prediction")
    for key, refs in zip(keys, reference_lists):
        if isinstance(refs, str) or not refs:
            raise ValueError(f"caption_scores: item {key!r} needs a non-empty list of reference captions")
    return keys, hypotheses, [[str(ref) for ref in refs] for refs in reference_lists]


_FALLBACK_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


def _tokenize_captions(texts: list[str]) -> list[str]:
    """Each text as space-joined lower-case tokens without punctuation (PTB, else a regex)."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PUNCTUATIONS

    lines = [" ".join(text.split()) for text in texts]  # one line per caption, whatever its whitespace
    tokenized = _ptb_tokenize(lines)
    if tokenized is None:
        return [" ".join(_FALLBACK_WORD.findall(line.lower())) for line in lines]
    # exactly pycocoevalcap's list, for scores comparable with published ones; it misses the
    # lower-cased bracket tokens (-lrb- ...), which the COCO evaluation therefore keeps too
    return [" ".join(w for w in line.split(" ") if w and w not in PUNCTUATIONS) for line in tokenized]


def _ptb_tokenize(lines: list[str]) -> list[str] | None:
    """Stanford PTBTokenizer over ``lines`` (one output line each), None when Java fails."""
    from pycocoevalcap.tokenizer import ptbtokenizer

    jar = Path(ptbtokenizer.__file__).parent / ptbtokenizer.STANFORD_CORENLP_3_4_1_JAR
    command = ["java", "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer",
               "-preserveLines", "-lowerCase", "-encoding", "utf-8"]
    try:
        done = subprocess.run(command, input="\n".join(lines).encode() + b"\n", capture_output=True,
                              timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        logger.warning("caption tokenization falls back to a regex: the PTB tokenizer could not run (%s)", err)
        return None
    out = done.stdout.decode("utf-8", errors="replace").split("\n")
    if len(out) == len(lines) + 1 and out[-1] == "":
        out.pop()
    if done.returncode != 0 or len(out) != len(lines):
        stderr = done.stderr.decode(errors="replace").strip().splitlines()
        logger.warning("caption tokenization falls back to a regex: the PTB tokenizer gave %d lines for %d "
                       "(exit %d%s)", len(out), len(lines), done.returncode, f": {stderr[-1]}" if stderr else "")
        return None
    return out


# --- video summarization (the TVSum / SumMe protocol) ------------------------------------------------
#
# Per-step importance (a step is one frame, or a fixed slice of time) -> one score per segment
# (the mean over its steps) -> the 0/1 knapsack picks segments whose total length fits the budget
# (15% of the video) with the largest sum of scores -> a 0/1 summary per step. The F1 of two
# summaries is that of their overlap: precision = overlap / predicted length, recall = overlap /
# true length (Zhang et al., 2016, https://arxiv.org/abs/1605.08110; Zhou et al., 2018, DR-DSN).


def knapsack_select(values: Sequence[float], weights: Sequence[int], capacity: int) -> list[int]:
    """The 0/1 knapsack: indices (increasing) of the items with the largest total value whose
    integer weights sum to at most ``capacity``. Ties go to the solution found first by the
    dynamic programme (items earlier in the list are preferred). Items of weight 0 are skipped."""
    n = len(values)
    if len(weights) != n:
        raise ValueError(f"{n} values but {len(weights)} weights")
    capacity = max(0, int(capacity))
    best = np.zeros((n + 1, capacity + 1))
    for i in range(1, n + 1):
        w, v = int(weights[i - 1]), float(values[i - 1])
        best[i] = best[i - 1]
        if 0 < w <= capacity:
            take = best[i - 1, : capacity + 1 - w] + v
            best[i, w:] = np.maximum(best[i - 1, w:], take)
    chosen, c = [], capacity
    for i in range(n, 0, -1):
        if best[i, c] != best[i - 1, c]:
            chosen.append(i - 1)
            c -= int(weights[i - 1])
    return sorted(chosen)


def split_segments(starts: Sequence[int], num_steps: int, max_len: int) -> list[tuple[int, int]]:
    """Shots (their first steps, increasing, the first 0) of a video of ``num_steps`` steps, each
    cut into the fewest equal pieces of at most ``max_len`` steps -> [start, end) step ranges."""
    bounds = [int(s) for s in starts if 0 <= s < num_steps] or [0]
    if bounds[0] != 0:
        bounds.insert(0, 0)
    bounds.append(num_steps)
    segments = []
    for a, b in zip(bounds, bounds[1:]):
        if b <= a:
            continue
        pieces = -(-(b - a) // max(1, max_len))
        edges = np.linspace(a, b, pieces + 1).round().astype(int)
        segments.extend((int(s), int(e)) for s, e in zip(edges, edges[1:]) if e > s)
    return segments


def segment_scores(step_scores: np.ndarray, segments: Sequence[tuple[int, int]]) -> np.ndarray:
    """(S,) mean of ``step_scores`` (N,) over each [start, end) segment."""
    return np.array([float(np.mean(step_scores[a:b])) for a, b in segments])


def summary_mask(step_scores: np.ndarray, segments: Sequence[tuple[int, int]], budget: float = 0.15,
                 tie_break: np.ndarray | None = None) -> np.ndarray:
    """(N,) bool: the steps of the segments the knapsack picks with their mean scores as values,
    their lengths as weights and ``floor(budget * N)`` steps as capacity. Scores are shifted so
    the lowest segment's value is 1e-6 (the knapsack fills the budget whatever their offset).
    ``tie_break`` (N,) per-step scores, added at 1e-7 of their weight, decide between segments
    whose scores tie."""
    num_steps = len(step_scores)
    values = segment_scores(np.asarray(step_scores, dtype=np.float64), segments)
    values = values - values.min() + 1e-6 if len(values) else values
    if tie_break is not None:
        extra = segment_scores(np.asarray(tie_break, dtype=np.float64), segments)
        span = extra.max() - extra.min() if len(extra) else 0.0
        values = values + 1e-7 * ((extra - extra.min()) / span if span > 0 else 0.0)
    picked = knapsack_select(values, [b - a for a, b in segments], int(math.floor(budget * num_steps + 1e-9)))
    mask = np.zeros(num_steps, dtype=bool)
    for i in picked:
        mask[segments[i][0]:segments[i][1]] = True
    return mask


def overlap_f1(predicted: np.ndarray, truth: np.ndarray) -> float:
    """F1 of two 0/1 summaries (N,): 2PR / (P + R) with P = overlap / predicted, R = overlap / true
    (0 when they do not overlap)."""
    predicted, truth = np.asarray(predicted, dtype=bool), np.asarray(truth, dtype=bool)
    overlap = float((predicted & truth).sum())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / predicted.sum(), overlap / truth.sum()
    return float(2 * precision * recall / (precision + recall))


def summary_f1(predicted_scores: np.ndarray, true_scores: np.ndarray, segments: Sequence[tuple[int, int]],
               budget: float = 0.15) -> float:
    """F1 of the summary the knapsack makes from ``predicted_scores`` (N,) against the one it makes
    from ``true_scores`` (N,) over the same ``segments`` and budget. Where true segment scores
    tie, the ground-truth summary is the one the prediction favours (as SumMe scores against the
    best-matching of its user summaries), so a tie cannot cost a correct prediction."""
    predicted_scores = np.asarray(predicted_scores, dtype=np.float64)
    true_scores = np.asarray(true_scores, dtype=np.float64)
    if predicted_scores.shape != true_scores.shape:
        raise ValueError(f"scores of {predicted_scores.shape} and {true_scores.shape} steps")
    predicted = summary_mask(predicted_scores, segments, budget)
    truth = summary_mask(true_scores, segments, budget, tie_break=predicted_scores)
    return overlap_f1(predicted, truth)


def uniform_scores(num_steps: int, num_picks: int) -> np.ndarray:
    """(N,) scores of the uniform baseline: highest at ``num_picks`` evenly spaced times (the
    centres of equal parts of the video), falling with the distance to the nearest one, so the
    knapsack picks segments spread evenly over the video."""
    centres = (np.arange(max(1, num_picks)) + 0.5) * num_steps / max(1, num_picks)
    steps = np.arange(num_steps) + 0.5
    return 1.0 - np.abs(steps[:, None] - centres[None, :]).min(axis=1) / max(1, num_steps)
