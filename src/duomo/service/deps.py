"""Dependencies of the route handlers: what the lifespan opened, read from ``app.state``
(the seams tests override with ``app.dependency_overrides``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import HTTPException, Request

if TYPE_CHECKING:
    from duomo.service.app import Library, ServiceSettings
    from duomo.service.jobs import IndexJobs
    from duomo.store.library import LibraryStore, VideoRecord


def get_settings(request: Request) -> "ServiceSettings":
    return request.app.state.settings


def get_library(request: Request) -> "Library":
    return request.app.state.library


def get_store(request: Request) -> "LibraryStore":
    return request.app.state.library.store


def get_jobs(request: Request) -> "IndexJobs":
    return request.app.state.jobs


def get_predictors(request: Request) -> dict:
    """task -> (run folder, Predictor) of the models loaded with ``--model``."""
    return request.app.state.predictors


def find_record(store: "LibraryStore", video_id: str) -> "VideoRecord":
    """The committed video ``video_id``, or 404."""
    record = store.video(video_id)
    if record is None:
        raise HTTPException(404, f"{video_id}: no such video in the library")
    return record
