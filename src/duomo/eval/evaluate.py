"""Run a model over a dataset and score its predictions with the task's metrics.

``predict_dataset`` returns one Prediction per row; ``score`` (a table keyed by task) turns them
into metrics with the pure functions of eval.metrics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from duomo.batch import HeadOutput
from duomo.config import RunConfig
from duomo.data.collate import collate, pad_sequences
from duomo.data.datasets import Row, TaskVocab, VideoDataset
from duomo.eval import metrics
from duomo.models.heads.retrieval import RetrievalHead, split_video
from duomo.models.model import VideoTextModel


@dataclass
class Prediction:
    video_id: str
    row: Row
    text: str
    """The answer, caption, or top label."""
    score: float = 0.0
    scores: list[float] = field(default_factory=list)
    """Per-class probabilities (classify)."""
    labels: list[str] = field(default_factory=list)
    """Predicted labels (multi-label classify)."""
    span: tuple[float, float] | None = None
    """Predicted [start_sec, end_sec] (moment retrieval)."""
    text_vector: np.ndarray | None = None
    """(E,) the query's embedding (retrieval)."""
    video_vector: np.ndarray | None = None
    """(E,) the row's video embedding (retrieval)."""
    reranked: dict[str, float] | None = None
    """Retrieval with a matcher: the query's best videos (by the dual encoder) re-scored by the
    matcher, video id -> score, ahead of every other video."""


def batches(dataset: VideoDataset, batch_size: int, order: list[int] | None = None) -> Iterator[tuple[list, list[Row]]]:
    """Items of ``dataset`` in chunks of ``batch_size`` videos, with their rows."""
    order = list(range(len(dataset))) if order is None else order
    for start in range(0, len(order), batch_size):
        items = [dataset[i] for i in order[start : start + batch_size]]
        yield items, [row for item in items for row in item.rows]


def is_multi_label(cfg: RunConfig) -> bool:
    return bool(cfg.model.head.args.get("multi_label", False))


@torch.no_grad()
def predict_dataset(model: VideoTextModel, dataset: VideoDataset, cfg: RunConfig, vocab: TaskVocab, *,
                    device: str = "cpu", beam_size: int | None = None,
                    on_progress: Callable[[int, int], None] | None = None) -> tuple[list[Prediction], float]:
    """Predictions for every row and the mean loss over rows with known targets (NaN for caption;
    for retrieval, the in-batch contrastive loss, which depends on the batch size)."""
    model.eval()
    task = cfg.task
    preds: list[Prediction] = []
    loss_sum, loss_rows = 0.0, 0
    matcher = task == "retrieval" and getattr(model.head, "matcher", None) is not None
    words: list[np.ndarray] = []  # with a matcher: each row's text tokens, and each video's tokens
    video_tokens: dict[str, np.ndarray] = {}
    video_places: dict[str, np.ndarray] = {}  # with match_places: each video's valid frames' places
    done = 0
    for items, rows in batches(dataset, cfg.train.batch_size):
        batch = collate(items, task=task, num_outputs=vocab.num_outputs, multi_label=is_multi_label(cfg)).to(device)
        out = model(batch) if task != "caption" else None
        row_video = [item.video_id for item in items for _ in item.rows]
        if task in ("qa", "dialog"):
            known = batch.labels >= 0
            if known.any():
                loss_sum += float(model.head.loss(out, batch)) * int(known.sum())
                loss_rows += int(known.sum())
            for vid, row, (index, score) in zip(row_video, rows, model.head.predict(out)):
                preds.append(Prediction(vid, row, vocab.answers[index], score))
        elif task == "classify":
            if not is_multi_label(cfg):
                known = batch.labels >= 0
                if known.any():
                    loss_sum += float(model.head.loss(out, batch)) * int(known.sum())
                    loss_rows += int(known.sum())
            probs = model.head.scores(out).cpu().numpy()
            for vid, row, picked, p in zip(row_video, rows, model.head.predict(out), probs):
                preds.append(Prediction(vid, row, vocab.labels[picked[0][0]], picked[0][1], p.tolist(),
                                        [vocab.labels[i] for i, _ in picked]))
        elif task == "summarize":
            loss_sum += float(model.head.loss(out, batch)) * len(rows)
            loss_rows += len(rows)
            for vid, row, frame_scores in zip(row_video, rows, model.head.predict(out)):
                preds.append(Prediction(vid, row, "", scores=frame_scores))
        elif task == "retrieval":
            loss_sum += float(model.head.loss(out, batch)) * len(rows)
            loss_rows += len(rows)
            if cfg.model.head.name == "moment":
                for vid, row, (start, end, p) in zip(row_video, rows, model.head.predict(out)):
                    preds.append(Prediction(vid, row, row.question, p,
                                            span=(start * row.duration_sec, end * row.duration_sec)))
            else:
                text, video = (t.cpu().numpy() for t in model.head.embed(out))
                for i, (vid, row) in enumerate(zip(row_video, rows)):
                    preds.append(Prediction(vid, row, row.question, text_vector=text[i], video_vector=video[i]))
                if matcher:
                    media, media_mask, text_tokens, text_mask = split_video(out.fused)
                    for i, vid in enumerate(row_video):
                        words.append(text_tokens[i, text_mask[i]].cpu().numpy())
                        video_tokens.setdefault(vid, media[i, media_mask[i]].cpu().numpy())
                    if model.head.match_places:
                        for vid, places, frame_mask in zip(batch.video_ids, out.fused.places, batch.frame_mask):
                            video_places.setdefault(vid, places[frame_mask].cpu().numpy())
        else:
            fused = model.fuse(batch)
            ids = model.head.predict(HeadOutput(logits=fused.pooled, fused=fused), beam_size=beam_size)
            for vid, row, seq in zip(row_video, rows, ids):
                preds.append(Prediction(vid, row, vocab.tokenizer.decode(seq)))
        done += len(items)
        if on_progress:
            on_progress(done, len(dataset))
    if matcher and preds:
        rerank(model.head, preds, words, video_tokens, video_places or None)
    return preds, (loss_sum / loss_rows if loss_rows else math.nan)


@torch.no_grad()
def rerank(head: RetrievalHead, preds: list[Prediction], words: list[np.ndarray], video_tokens: dict[str, np.ndarray],
           video_places: dict[str, np.ndarray] | None = None, chunk: int = 2048) -> None:
    """The retrieval head's matcher re-scores, for each query, the dual encoder's ``head.rerank``
    best videos; the score is the matcher's logit plus the dual encoder's (its scaled cosine
    similarity). Sets each prediction's ``reranked``. Video-to-text keeps the dual encoder's
    order: the matcher learns which video a caption describes, so its scores of different
    captions of one video are not comparable (re-ranking them measured v2t R@1 0.530 against
    0.628 on SynthWorld test, README). ``video_places``: each video's valid frames' places
    (T, places, D), for a matcher with ``match_places``."""
    first: dict[str, int] = {}
    for i, p in enumerate(preds):
        first.setdefault(p.video_id, i)
    ids = list(first)
    videos, video_mask = pad_sequences([video_tokens[v] for v in ids])
    texts, text_mask = pad_sequences(words)
    places, frame_mask = pad_sequences([video_places[v] for v in ids]) if video_places else (None, None)
    similarity = float(head.scale) * (np.stack([p.text_vector for p in preds])
                                      @ np.stack([preds[i].video_vector for i in first.values()]).T)
    k = min(head.rerank, len(ids))
    top = np.argsort(-similarity, axis=1, kind="stable")[:, :k]  # (R, k)
    scores = np.take_along_axis(similarity, top, axis=1).astype(np.float64)  # (R, k)
    # queries shortest first, a block of them at a time, each block's words cut to its longest:
    # padding costs the matcher as much as words do, and captions vary in length
    lengths = text_mask.sum(1).numpy()
    order = np.argsort(lengths, kind="stable")
    per_block = max(1, chunk // k)
    for start in range(0, len(order), per_block):
        block = order[start : start + per_block]
        width = max(1, int(lengths[block].max()))
        r, c = torch.from_numpy(np.repeat(block, k)), torch.from_numpy(top[block].ravel())
        shown, rows, counts = torch.unique(c, return_inverse=True, return_counts=True)  # each video's tokens once
        if len(shown) * int(counts.max()) > 8 * len(c):  # the matcher lays rows out by video, padded to the most
            shown, rows = c, torch.arange(len(c))        # shared one: past 8x the pairs, one copy per pair instead
        scores[block] += head.match(
            texts[r, :width], text_mask[r, :width], videos[shown], video_mask[shown], rows=rows,
            places=None if places is None else places[shown],
            frame_mask=None if frame_mask is None else frame_mask[shown]).view(len(block), k).numpy()
    for r, p in enumerate(preds):
        p.reranked = {ids[j]: float(s) for j, s in zip(top[r], scores[r])}


def score(task: str, preds: list[Prediction], vocab: TaskVocab, *, use_meteor: bool = True) -> dict:
    """The task's metrics over ``preds`` (see SCORERS)."""
    return SCORERS[task](preds, vocab, use_meteor)


def _score_qa(preds: list[Prediction], vocab: TaskVocab, use_meteor: bool) -> dict:
    if not preds:  # metrics.accuracy refuses empty lists
        return {"accuracy": math.nan, "accuracy_by_type": {}}
    guesses = [p.text for p in preds]
    answers = [p.row.answer for p in preds]
    return {"accuracy": metrics.accuracy(guesses, answers),
            "accuracy_by_type": metrics.accuracy_by_group(guesses, answers, [p.row.qa_type for p in preds])}


def _score_dialog(preds: list[Prediction], vocab: TaskVocab, use_meteor: bool) -> dict:
    if not preds:
        return {"accuracy": math.nan, "accuracy_turn2plus": math.nan, "accuracy_by_turn": {}}
    guesses = [p.text for p in preds]
    answers = [p.row.answer for p in preds]
    later = [i for i, p in enumerate(preds) if p.row.turn_idx >= 1]
    return {"accuracy": metrics.accuracy(guesses, answers),
            "accuracy_turn2plus": metrics.accuracy([guesses[i] for i in later], [answers[i] for i in later]) if later else math.nan,
            "accuracy_by_turn": metrics.accuracy_by_group(guesses, answers, [p.row.turn_idx + 1 for p in preds])}


def _score_classify(preds: list[Prediction], vocab: TaskVocab, use_meteor: bool) -> dict:
    index = {label: i for i, label in enumerate(vocab.labels)}
    known = [p for p in preds if p.row.answer in index]
    if not known:
        return {"top1": math.nan}
    scores = np.array([p.scores for p in known])
    target = np.array([index[p.row.answer] for p in known])
    pred = scores.argmax(axis=1)
    result = {"top1": metrics.top_k_accuracy(scores, target, 1),
              "top5": metrics.top_k_accuracy(scores, target, min(5, scores.shape[1]))}
    result.update(metrics.precision_recall_f1(pred, target, len(vocab.labels)))
    if any(p.row.multi_hot for p in known) and any(len(p.labels) > 1 or len(p.row.multi_hot) > 1 for p in known):
        hot_pred = np.zeros(scores.shape, dtype=bool)
        hot_true = np.zeros(scores.shape, dtype=bool)
        for i, p in enumerate(known):
            hot_pred[i, [index[label] for label in p.labels]] = True
            hot_true[i, p.row.multi_hot] = True
        result["multi_label"] = metrics.multilabel_scores(hot_pred, hot_true)
    return result


def _score_caption(preds: list[Prediction], vocab: TaskVocab, use_meteor: bool) -> dict:
    if not preds:  # metrics.caption_scores refuses empty lists
        return {**{f"bleu_{n}": math.nan for n in range(1, 5)}, "meteor": None, "rouge_l": math.nan, "cider": math.nan}
    return metrics.caption_scores([p.text for p in preds], [p.row.references for p in preds], use_meteor=use_meteor)


RERANKED = 1e4
"""Added to a re-ranked candidate's score so it ranks ahead of every cosine similarity."""


def _score_retrieval(preds: list[Prediction], vocab: TaskVocab, use_meteor: bool) -> dict:
    """Moment rows: R@1 at IoU 0.5 and 0.7 and mean IoU. Caption rows: every caption ranks every
    video of the split (t2v; its own video is the positive) and every video ranks every caption
    (v2t; any of its captions counts): R@1/5/10, median and mean rank."""
    if preds and preds[0].span is not None:
        spans, targets = [p.span for p in preds], [p.row.span for p in preds]
        return {"r1_iou0.5": metrics.moment_recall_at_iou(spans, targets, 0.5),
                "r1_iou0.7": metrics.moment_recall_at_iou(spans, targets, 0.7),
                "mean_iou": float(np.mean([metrics.temporal_iou(s, t) for s, t in zip(spans, targets)]))}
    names = [f"{d}_{m}" for d in ("t2v", "v2t") for m in ("r1", "r5", "r10", "mdr", "mnr")]
    if not preds:
        return {name: math.nan for name in names}
    first: dict[str, int] = {}
    for i, p in enumerate(preds):
        first.setdefault(p.video_id, i)
    videos = np.stack([preds[i].video_vector for i in first.values()])  # (V, E)
    texts = np.stack([p.text_vector for p in preds])  # (R, E)
    similarity = texts @ videos.T  # (R, V)
    video_index = {vid: j for j, vid in enumerate(first)}
    positive = np.zeros(similarity.shape, dtype=bool)
    positive[np.arange(len(preds)), [video_index[p.video_id] for p in preds]] = True
    # a matcher's re-scored candidates come ahead of the rest (cosines lie in [-1, 1]), in its order
    t2v = similarity.copy()
    for r, p in enumerate(preds):
        for vid, value in (p.reranked or {}).items():
            t2v[r, video_index[vid]] = RERANKED + value
    result = {}
    for direction, ranks in (("t2v", metrics.retrieval_ranks(t2v, positive)),
                             ("v2t", metrics.retrieval_ranks(similarity.T, positive.T))):
        for k in (1, 5, 10):
            result[f"{direction}_r{k}"] = metrics.recall_at_k(ranks, k)
        result[f"{direction}_mdr"] = metrics.median_rank(ranks)
        result[f"{direction}_mnr"] = metrics.mean_rank(ranks)
    result["num_videos"] = len(first)
    return result


# The summarization protocol on manifests with per-second importance: 0.1 s steps, each shot cut
# into equal segments of at most 0.3 s (SynthWorld clips last 2-6 s, so 15% is 0.3-0.9 s; the
# minutes-long videos of TVSum use ~2 s segments for the same budget), knapsack at 15%.
SUMMARY_STEP_SEC = 0.1
SUMMARY_SEGMENT_STEPS = 3
SUMMARY_BUDGET = 0.15
BASELINE_RANDOM_DRAWS = 5


def summary_protocol(row: Row) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """A summarization row -> (true importance per 0.1 s step (N,), segments as [start, end) steps)."""
    num_steps = max(1, int(math.ceil(row.duration_sec / SUMMARY_STEP_SEC - 1e-6)))
    centres = (np.arange(num_steps) + 0.5) * SUMMARY_STEP_SEC
    index = np.clip(np.floor(centres).astype(int), 0, len(row.importance) - 1)
    truth = np.asarray(row.importance, dtype=np.float64)[index]
    starts = [int(round(s / SUMMARY_STEP_SEC)) for s in row.shots]
    return truth, metrics.split_segments(starts, num_steps, SUMMARY_SEGMENT_STEPS)


def scores_at_steps(sample_scores: list[float] | np.ndarray, num_steps: int) -> np.ndarray:
    """(N,) scores sampled uniformly over a video (sample k at (k + 0.5) / K of it) read at the
    centres of ``num_steps`` equal steps, by linear interpolation."""
    values = np.asarray(sample_scores, dtype=np.float64)
    sample_at = (np.arange(len(values)) + 0.5) / len(values)
    return np.interp((np.arange(num_steps) + 0.5) / num_steps, sample_at, values)


def summary_scores(rows_scores: list[tuple[Row, np.ndarray]], seed: int = 0) -> dict:
    """Mean F1 (TVSum/SumMe protocol, see summary_protocol) of predicted per-sample scores, and of
    the uniform and random baselines on the same videos: f1, uniform_f1, random_f1 (the mean over
    BASELINE_RANDOM_DRAWS draws of random scores)."""
    if not rows_scores:
        return {"f1": math.nan, "uniform_f1": math.nan, "random_f1": math.nan}
    rng = np.random.default_rng(seed)
    f1, uniform, random = [], [], []
    for row, samples in rows_scores:
        truth, segments = summary_protocol(row)
        n = len(truth)
        f1.append(metrics.summary_f1(scores_at_steps(samples, n), truth, segments, SUMMARY_BUDGET))
        picks = max(1, int(round(SUMMARY_BUDGET * n / np.mean([b - a for a, b in segments]))))
        uniform.append(metrics.summary_f1(metrics.uniform_scores(n, picks), truth, segments, SUMMARY_BUDGET))
        random.append(np.mean([metrics.summary_f1(rng.random(n), truth, segments, SUMMARY_BUDGET)
                               for _ in range(BASELINE_RANDOM_DRAWS)]))
    return {"f1": float(np.mean(f1)), "uniform_f1": float(np.mean(uniform)), "random_f1": float(np.mean(random))}


def _score_summarize(preds: list[Prediction], vocab: TaskVocab, use_meteor: bool) -> dict:
    result = summary_scores([(p.row, np.asarray(p.scores)) for p in preds])
    result["num_videos"] = len(preds)
    return result


SCORERS = {"qa": _score_qa, "dialog": _score_dialog, "classify": _score_classify, "caption": _score_caption,
           "retrieval": _score_retrieval, "summarize": _score_summarize}

# The metric that picks the best checkpoint, per task (higher is better); see selection_metric.
SELECTION_METRIC = {"qa": "accuracy", "dialog": "accuracy", "classify": "top1", "caption": "cider",
                    "retrieval": "t2v_r1", "summarize": "f1"}
MOMENT_SELECTION_METRIC = "r1_iou0.5"


def selection_metric(cfg: RunConfig) -> str:
    """The validation metric that picks a run's best checkpoint (the moment head's differs from
    the retrieval head's under the same task)."""
    if cfg.task == "retrieval" and cfg.model.head.name == "moment":
        return MOMENT_SELECTION_METRIC
    return SELECTION_METRIC[cfg.task]


def confusion(preds: list[Prediction], vocab: TaskVocab) -> np.ndarray:
    index = {label: i for i, label in enumerate(vocab.labels)}
    known = [p for p in preds if p.row.answer in index]
    return metrics.confusion_matrix(np.array([index[p.text] for p in known], dtype=int),
                                    np.array([index[p.row.answer] for p in known], dtype=int), len(vocab.labels))


@dataclass
class EvalReport:
    metrics: dict
    """{"task", "split", "n", <metric>: value, ...} with per-type breakdowns nested."""
    predictions: list[Prediction]
    skipped: dict[str, str]


def evaluate_run(run_dir, manifest: str, split: str = "test", *, checkpoint: str = "best.pt",
                 beam_size: int | None = None, device: str = "cpu", skip_bad_videos: bool | None = None,
                 on_prepare: Callable[[int, int], None] | None = None,
                 on_progress: Callable[[int, int], None] | None = None) -> EvalReport:
    """Score a trained run on one split of a manifest, with the run's own preprocessing."""
    from dataclasses import replace

    from duomo.data.datasets import DatasetError, data_config_for_eval, split_records
    from duomo.data.manifest import load_manifest
    from duomo.inference import load
    from duomo.train.run import prepare

    predictor = load(run_dir, checkpoint=checkpoint, device=device)
    data = data_config_for_eval(predictor.cfg.data, str(manifest))
    if skip_bad_videos is not None:
        data = replace(data, skip_bad_videos=skip_bad_videos)
    cfg = replace(predictor.cfg, data=data)
    records = split_records(load_manifest(manifest), split)
    if not records:
        raise DatasetError(f"{manifest}: the {split} split is empty")
    stamps, failed = prepare(records, cfg, on_prepare)
    dataset = VideoDataset(records, cfg, predictor.vocab, stamps, train=False, preload=False)
    if not len(dataset):
        raise DatasetError(f"{manifest}: no {split} video has anything to evaluate for task {cfg.task}")
    preds, loss = predict_dataset(predictor.model, dataset, cfg, predictor.vocab, device=device,
                                  beam_size=beam_size, on_progress=on_progress)
    result = {"task": cfg.task, "split": split, "n": len(preds)}
    if not math.isnan(loss):
        result["loss"] = loss
    result.update(score(cfg.task, preds, predictor.vocab))
    return EvalReport(result, preds, failed)
