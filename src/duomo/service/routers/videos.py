"""The videos of the library: list, details (shots, segments, transcript, on-screen text), the
media file with range requests, thumbnails, and uploads that start an indexing job."""

from __future__ import annotations

import logging
import mimetypes
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from duomo.errors import MediaError
from duomo.service.deps import find_record, get_jobs, get_settings, get_store
from duomo.service.routers.jobs import job_out
from duomo.service.routers.search import media_url, thumbnail_url
from duomo.service.schemas import JobOut, Segment, TextSpan, TranscriptLine, VideoDetail, VideoSummary
from duomo.service.uploads import UploadRefused, receive_upload, sanitize_filename, unique_path

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["videos"])

MEDIA_TYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm",
               ".mkv": "video/x-matroska", ".avi": "video/x-msvideo", ".ts": "video/mp2t", ".mpg": "video/mpeg",
               ".mpeg": "video/mpeg", ".3gp": "video/3gpp", ".flv": "video/x-flv", ".wmv": "video/x-ms-wmv"}


def summary_of(record) -> dict:
    segments = record.details.get("segments") or []
    return dict(video_id=record.video_id, name=Path(record.path).name, path=record.path,
                duration_sec=record.duration_sec, width=record.width, height=record.height, fps=record.fps,
                has_audio=record.has_audio, num_segments=record.num_segments, size=record.size,
                indexed_at=record.indexed_at, media_url=media_url(record.video_id),
                thumbnail_url=thumbnail_url(segments[0]["thumbnail"]) if segments else None)


@router.get("/videos", response_model=list[VideoSummary])
def list_videos(store=Depends(get_store)) -> list[VideoSummary]:
    """Every indexed video, by path."""
    return [VideoSummary(**summary_of(record)) for record in store.videos()]


@router.get("/videos/{video_id}", response_model=VideoDetail)
def describe_video(video_id: str, store=Depends(get_store)) -> VideoDetail:
    """One video: metadata, shots, segments with thumbnails, transcript with word times, on-screen text."""
    record = find_record(store, video_id)
    details = record.details
    return VideoDetail(
        **summary_of(record),
        shots=[tuple(shot) for shot in details.get("shots", [])],
        segments=[Segment(idx=s["idx"], start_sec=s["start"], end_sec=s["end"], shot=s.get("shot", 0),
                          thumbnail_url=thumbnail_url(s.get("thumbnail", ""))) for s in details.get("segments", [])],
        transcript=[TranscriptLine(start_sec=line["start"], end_sec=line["end"], text=line["text"],
                                   words=[tuple(w) for w in line.get("words", [])])
                    for line in details.get("transcript", [])],
        ocr=[TextSpan(start_sec=span["start"], end_sec=span["end"], text=span["text"])
             for span in details.get("ocr", [])])


@router.get("/videos/{video_id}/media", response_class=FileResponse,
            responses={206: {"description": "the requested byte range"}, 416: {"description": "range not satisfiable"}})
def video_media(video_id: str, store=Depends(get_store)) -> FileResponse:
    """The video file, for playback: supports ``Range: bytes=...`` (206 with ``Content-Range``,
    416 for a range past the end). Only files of indexed videos, looked up by id, are served."""
    record = find_record(store, video_id)
    path = Path(record.path)
    if not path.is_file():
        raise HTTPException(410, f"{path.name}: the file is gone since it was indexed")
    media_type = MEDIA_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media_type, content_disposition_type="inline", filename=path.name)


@router.get("/thumbs/{name:path}", response_class=FileResponse)
def thumbnail(name: str, store=Depends(get_store)) -> FileResponse:
    """A segment thumbnail (JPEG) by the name the search and video responses give."""
    path = store.thumbnail_path(name)
    if path is None:
        raise HTTPException(404, f"{name}: no such thumbnail")
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})


@router.post("/videos", response_model=JobOut, status_code=202,
             responses={400: {"description": "not a multipart upload, or no file"},
                        413: {"description": "larger than the upload limit"},
                        415: {"description": "not a video"}},
             openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                 "type": "object", "required": ["file"],
                 "properties": {"file": {"type": "string", "format": "binary"}}}}}}})
async def upload_video(request: Request, settings=Depends(get_settings), jobs=Depends(get_jobs)) -> JobOut:
    """Upload a video (multipart field ``file``); it is checked, saved under the library's
    ``uploads/`` and indexed by a background job: poll ``status_url``."""
    folder = settings.upload_dir
    folder.mkdir(parents=True, exist_ok=True)
    try:
        temp, given_name = await receive_upload(request, folder, settings.max_upload_bytes)
    except UploadRefused as err:
        raise HTTPException(err.status, str(err)) from None
    name = sanitize_filename(given_name)
    try:
        await run_in_threadpool(_check_video, temp, name)
    except UploadRefused as err:
        temp.unlink(missing_ok=True)
        raise HTTPException(err.status, str(err)) from None
    target = unique_path(folder, name if Path(name).suffix else name + ".mp4")
    temp.replace(target)
    logger.info("upload saved as %s", target)
    return job_out(jobs.submit(target))


def _check_video(path: Path, name: str) -> None:
    """415 unless ``path`` opens as a video with at least one frame's worth of duration."""
    from duomo.video.probe import probe

    try:
        info = probe(path)
    except MediaError as err:
        raise UploadRefused(415, f"{name}: not a video we can read ({err.reason})") from None
    if not info.num_frames and not info.duration_sec:
        raise UploadRefused(415, f"{name}: the video has no frames")
