"""Caption, answer questions about and classify an indexed video with the models loaded by
``--model``. Plain ``def`` handlers: the model runs on the thread pool, never on the event loop."""

from __future__ import annotations

import threading

from fastapi import APIRouter, Depends, HTTPException

from duomo.service.deps import find_record, get_library, get_predictors, get_settings, get_store
from duomo.service.schemas import AnswerOut, CaptionOut, ClassifyOut, InfoOut, LabelScore, ModelOut, QuestionIn

router = APIRouter(prefix="/api", tags=["predict"])
_MODEL_LOCK = threading.Lock()
"""One prediction at a time: each uses the CPU fully, and a model's modules are not re-entrant."""


def _predictor(predictors: dict, tasks: tuple[str, ...], what: str):
    for task in tasks:
        if task in predictors:
            return predictors[task]
    raise HTTPException(409, f"no {' or '.join(tasks)} model is loaded; start duomo serve with --model RUN_DIR "
                             f"of a {tasks[0]} run to {what}")


@router.get("/info", response_model=InfoOut)
def info(library=Depends(get_library), predictors=Depends(get_predictors), settings=Depends(get_settings)) -> InfoOut:
    """How many videos, which models are loaded, the upload limit."""
    store = library.store
    return InfoOut(num_videos=len(store.committed()),
                   models=[ModelOut(task=task, run_dir=run) for task, (run, _) in sorted(predictors.items())],
                   max_upload_bytes=settings.max_upload_bytes, visual_search=store.info.visual_kind == "model")


@router.post("/videos/{video_id}/caption", response_model=CaptionOut)
def caption(video_id: str, store=Depends(get_store), predictors=Depends(get_predictors)) -> CaptionOut:
    """A caption of the video by the loaded caption model (409 when none is loaded)."""
    record = find_record(store, video_id)
    run_dir, predictor = _predictor(predictors, ("caption",), "caption videos")
    with _MODEL_LOCK:
        text = predictor.caption(record.path)
    return CaptionOut(video_id=record.video_id, caption=text, run_dir=run_dir)


@router.post("/videos/{video_id}/answer", response_model=AnswerOut)
def answer(video_id: str, body: QuestionIn, store=Depends(get_store), predictors=Depends(get_predictors)) -> AnswerOut:
    """The answer to a question about the video by the loaded qa (or dialog) model."""
    record = find_record(store, video_id)
    run_dir, predictor = _predictor(predictors, ("qa", "dialog"), "answer questions")
    with _MODEL_LOCK:
        found = predictor.answer(record.path, body.question)
    return AnswerOut(video_id=record.video_id, question=body.question, answer=found.text, score=found.score,
                     run_dir=run_dir)


@router.post("/videos/{video_id}/classify", response_model=ClassifyOut)
def classify(video_id: str, store=Depends(get_store), predictors=Depends(get_predictors)) -> ClassifyOut:
    """Labels of the video by the loaded classify model."""
    record = find_record(store, video_id)
    run_dir, predictor = _predictor(predictors, ("classify",), "classify videos")
    with _MODEL_LOCK:
        found = predictor.classify(record.path)
    return ClassifyOut(video_id=record.video_id, run_dir=run_dir,
                       labels=[LabelScore(label=label, score=score) for label, score in found.labels],
                       top=[LabelScore(label=label, score=score) for label, score in found.top])
