"""Request and response models of the service: its public contract (the OpenAPI docs at /docs)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class HitOut(BaseModel):
    modality: str = Field(description="speech, ocr, caption, visual or video")
    start_sec: float = Field(description="where the match starts (the first matched word for speech)")
    end_sec: float
    score: float
    text: str = Field(description="the matched transcript line or on-screen text ('' for visual hits)")
    segment_idx: int
    thumbnail_url: str | None = Field(description="the segment's thumbnail, or null")


class VideoHitsOut(BaseModel):
    video_id: str
    name: str = Field(description="the file name")
    score: float
    media_url: str
    hits: list[HitOut]


class SearchResponse(BaseModel):
    query: str
    modality: str
    results: list[VideoHitsOut]


class SimilarResponse(BaseModel):
    video_id: str
    matched: str = Field(description="what was compared: the video, or its segment at at_sec")
    results: list[VideoHitsOut]


class VideoSummary(BaseModel):
    video_id: str
    name: str
    path: str
    duration_sec: float
    width: int
    height: int
    fps: float
    has_audio: bool
    num_segments: int
    size: int = Field(description="bytes")
    indexed_at: float = Field(description="Unix time")
    media_url: str
    thumbnail_url: str | None


class Segment(BaseModel):
    idx: int
    start_sec: float
    end_sec: float
    shot: int
    thumbnail_url: str | None


class TranscriptLine(BaseModel):
    start_sec: float
    end_sec: float
    text: str
    words: list[tuple[str, float, float]] = Field(description="[word, start_sec, end_sec]")


class TextSpan(BaseModel):
    start_sec: float
    end_sec: float
    text: str


class VideoDetail(VideoSummary):
    shots: list[tuple[float, float]] = Field(description="[start_sec, end_sec] per shot")
    segments: list[Segment]
    transcript: list[TranscriptLine]
    ocr: list[TextSpan] = Field(description="on-screen text spans")


class JobOut(BaseModel):
    job_id: str
    status: str = Field(description="queued, running, done or failed")
    file: str = Field(description="the saved file's name under the library's uploads/")
    progress: dict[str, list[int]] = Field(description="stage -> [done, total]")
    video_id: str | None = Field(description="the indexed video, once done")
    error: str | None
    report: dict | None = Field(description="the indexing report, once finished")
    status_url: str


class ModelOut(BaseModel):
    task: str
    run_dir: str


class CaptionOut(BaseModel):
    video_id: str
    caption: str
    run_dir: str


class QuestionIn(BaseModel):
    question: str = Field(min_length=1, max_length=500)


class AnswerOut(BaseModel):
    video_id: str
    question: str
    answer: str
    score: float = Field(description="probability of the answer")
    run_dir: str


class LabelScore(BaseModel):
    label: str
    score: float


class ClassifyOut(BaseModel):
    video_id: str
    labels: list[LabelScore]
    top: list[LabelScore]
    run_dir: str


class InfoOut(BaseModel):
    num_videos: int
    models: list[ModelOut]
    max_upload_bytes: int
    visual_search: bool = Field(description="whether words can search pictures (a library indexed with a model)")
