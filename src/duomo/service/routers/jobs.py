"""Status of the indexing jobs that uploads start."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException

from duomo.service.deps import get_jobs
from duomo.service.schemas import JobOut

router = APIRouter(prefix="/api", tags=["jobs"])


def job_out(job) -> JobOut:
    return JobOut(job_id=job.job_id, status=job.status, file=Path(job.path).name, progress=job.progress,
                  video_id=job.video_id, error=job.error, report=job.report, status_url=f"/api/jobs/{job.job_id}")


@router.get("/jobs", response_model=list[JobOut])
def list_jobs(jobs=Depends(get_jobs)) -> list[JobOut]:
    """Every job since the service started, oldest first."""
    return [job_out(job) for job in jobs.all()]


@router.get("/jobs/{job_id}", response_model=JobOut)
def job_status(job_id: str, jobs=Depends(get_jobs)) -> JobOut:
    """Status (queued, running, done, failed), progress per stage and, once finished, the report."""
    job = jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"{job_id}: no such job")
    return job_out(job)
