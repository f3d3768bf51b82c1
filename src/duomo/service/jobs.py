"""Indexing jobs for uploaded videos: a queue and one worker thread that runs ``index_paths``
on each file in turn (one job at a time), with progress per stage and the final report."""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from duomo.library.analyze import IndexSettings

logger = logging.getLogger(__name__)


@dataclass
class Job:
    job_id: str
    path: str
    status: str = "queued"
    """queued, running, done or failed."""
    progress: dict[str, list[int]] = field(default_factory=dict)
    """stage -> [done, total] (visual, speech, write)."""
    report: dict[str, Any] | None = None
    """``IndexReport.to_dict()`` once finished."""
    error: str | None = None
    video_id: str | None = None
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None


class _JobProgress:
    """``IndexProgress`` that records counts on the job."""

    def __init__(self, job: Job, lock: threading.Lock):
        self.job = job
        self.lock = lock

    def start(self, stage: str, total: int) -> None:
        with self.lock:
            self.job.progress[stage] = [0, total]

    def advance(self, stage: str) -> None:
        with self.lock:
            if stage in self.job.progress:
                self.job.progress[stage][0] += 1


class IndexJobs:
    """Runs indexing jobs on a background thread; ``on_indexed`` is called after each job that
    wrote to the library (the service reopens its searcher there)."""

    def __init__(self, db_dir: str | Path, settings: IndexSettings, *, workers: int | None = None,
                 on_indexed: Callable[[], None] | None = None):
        self.db_dir = Path(db_dir)
        self.settings = settings
        self.workers = workers
        self.on_indexed = on_indexed
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="duomo-index-jobs", daemon=True)
        self._thread.start()

    def submit(self, path: str | Path) -> Job:
        job = Job(job_id=uuid.uuid4().hex[:12], path=str(path))
        with self._lock:
            self._jobs[job.job_id] = job
        self._queue.put(job)
        return job

    def get(self, job_id: str) -> Job | None:
        """A snapshot of the job (safe to read while it runs)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            return Job(**{**job.__dict__, "progress": {k: list(v) for k, v in job.progress.items()}})

    def all(self) -> list[Job]:
        with self._lock:
            ids = list(self._jobs)
        return [job for job in (self.get(i) for i in ids) if job is not None]

    def stop(self, timeout_sec: float = 30.0) -> None:
        """Finish the running job (if any), drop the queued ones, end the thread."""
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(None)
        self._thread.join(timeout_sec)

    def _work(self) -> None:
        from duomo.library.analyze import video_id_for
        from duomo.library.index import index_paths

        while (job := self._queue.get()) is not None:
            with self._lock:
                job.status = "running"
            try:
                report = index_paths([job.path], self.db_dir, settings=self.settings, workers=self.workers,
                                     progress=_JobProgress(job, self._lock))
                if report.indexed and self.on_indexed is not None:
                    self.on_indexed()
                with self._lock:
                    job.report = report.to_dict()
                    if report.failed:
                        job.status, job.error = "failed", report.failed[0][1]
                    else:
                        job.status, job.video_id = "done", video_id_for(job.path)
            except Exception as err:  # the worker thread must survive any one job
                logger.exception("indexing %s failed", job.path)
                with self._lock:
                    job.status, job.error = "failed", f"{job.path}: {type(err).__name__}: {err}"
            finally:
                with self._lock:
                    job.finished_at = time.time()
