"""Search the library by words, and find videos (or moments) like a given one."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Query

from duomo.service.deps import find_record, get_library
from duomo.service.schemas import HitOut, SearchResponse, SimilarResponse, VideoHitsOut
from duomo.store.library import MODALITIES

router = APIRouter(prefix="/api", tags=["search"])


def thumbnail_url(name: str) -> str | None:
    return f"/api/thumbs/{name}" if name else None


def media_url(video_id: str) -> str:
    return f"/api/videos/{video_id}/media"


def video_hits_out(results) -> list[VideoHitsOut]:
    """``LibrarySearcher`` results -> response models."""
    return [VideoHitsOut(video_id=result.video_id, name=Path(result.path).name, score=result.score,
                         media_url=media_url(result.video_id),
                         hits=[HitOut(modality=hit.modality, start_sec=hit.start_sec, end_sec=hit.end_sec,
                                      score=hit.score, text=hit.text, segment_idx=hit.segment_idx,
                                      thumbnail_url=thumbnail_url(hit.thumbnail)) for hit in result.hits])
            for result in results]


@router.get("/search", response_model=SearchResponse)
def search(q: str = Query(min_length=1, max_length=500, description="words to look for"),
           k: int = Query(10, ge=1, le=100, description="videos to return"),
           modality: str = Query("all", pattern="^(" + "|".join(MODALITIES) + ")$",
                                 description="speech, text (on screen), visual (needs a model library) or all"),
           library=Depends(get_library)) -> SearchResponse:
    """Videos matching ``q``, best first, each with its best hits (time, matched text, thumbnail)."""
    results = library.searcher.search(q, k=k, modality=modality)
    return SearchResponse(query=q, modality=modality, results=video_hits_out(results))


@router.get("/videos/{video_id}/similar", response_model=SimilarResponse)
def similar(video_id: str, k: int = Query(10, ge=1, le=100),
            at_sec: float | None = Query(None, ge=0, description="compare the segment at this time, not the video"),
            by: str = Query("both", pattern="^(picture|words|both)$",
                            description="compare what videos show, what they say and write, or both (segments: picture)"),
            library=Depends(get_library)) -> SimilarResponse:
    """Videos like ``video_id`` by what they show and say (or, with ``at_sec``, segments that
    look like the one at that time)."""
    record = find_record(library.store, video_id)
    label, results = library.searcher.similar(record.video_id, k=k, at_sec=at_sec, by=by)
    matched = Path(record.path).name + (label.rsplit(")", 1)[-1] if at_sec is not None else "")
    return SimilarResponse(video_id=record.video_id, matched=matched.strip(), results=video_hits_out(results))
