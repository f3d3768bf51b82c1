"""``create_app(settings)``: the FastAPI app of ``duomo serve``. Its lifespan opens the library
(creating an empty one if the folder has none), loads the models once and starts the indexing
worker; shutdown stops the worker. Nothing heavy runs at import time."""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from fastapi import FastAPI, Security
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles

from duomo.errors import DuomoError
from duomo.library.analyze import IndexSettings
from duomo.service.auth import TokenGuard
from duomo.service.jobs import IndexJobs
from duomo.service.routers import jobs, predict, search, videos

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
PREDICT_TASKS = ("caption", "qa", "dialog", "classify")


@dataclass
class ServiceSettings:
    """What ``duomo serve`` was started with (its flags map onto these)."""

    db_dir: Path
    """The library folder (made by duomo index; an empty library is created when missing)."""
    models: list[str] = field(default_factory=list)
    """Trained run folders to load for caption / answer / classify (one per task)."""
    token: str | None = None
    """When set, every request but the page shell needs it (Bearer header or ?token=)."""
    max_upload_bytes: int = 512 * 1024 * 1024
    """Uploads larger than this are refused with 413."""
    index_settings: IndexSettings = field(default_factory=IndexSettings)
    """How uploaded videos are indexed."""
    index_workers: int | None = None
    """Worker processes per indexing job (None: one per core)."""

    @property
    def upload_dir(self) -> Path:
        return Path(self.db_dir) / "uploads"


class Library:
    """The open library: one ``LibrarySearcher`` shared by all requests, swapped for a fresh
    one after an indexing job wrote to the folder (its tables then show the new rows)."""

    def __init__(self, db_dir: Path):
        from duomo.library.search import LibrarySearcher

        self.db_dir = Path(db_dir)
        self._lock = threading.Lock()
        self.searcher = LibrarySearcher(self.db_dir)

    def reload(self) -> None:
        from duomo.library.search import LibrarySearcher

        fresh = LibrarySearcher(self.db_dir)
        with self._lock:
            fresh._embedder = self.searcher._embedder  # the MiniLM model does not change with the data
            fresh._predictor = self.searcher._predictor
            self.searcher = fresh

    @property
    def store(self):
        return self.searcher.store


def load_predictors(run_dirs: list[str]) -> dict[str, tuple[str, object]]:
    """task -> (run folder, Predictor) for each run; two runs of one task are refused."""
    from duomo.inference import load

    loaded: dict[str, tuple[str, object]] = {}
    for run_dir in run_dirs:
        predictor = load(run_dir)
        if predictor.task in loaded:
            raise DuomoError(f"{run_dir}: a {predictor.task} model is already loaded from {loaded[predictor.task][0]}; "
                             "give one --model per task")
        loaded[predictor.task] = (str(run_dir), predictor)
    return loaded


def _open_library(db_dir: Path) -> Library:
    if not (Path(db_dir) / "library.json").is_file():
        from duomo.library.index import index_paths

        index_paths([], db_dir)  # nothing to index: just creates the empty library
        logger.info("created an empty library in %s", db_dir)
    return Library(db_dir)


@dataclass
class Resources:
    """What the service opens once: the library and the loaded models."""

    library: Library
    predictors: dict[str, tuple[str, object]]


def open_resources(settings: ServiceSettings) -> Resources:
    """Open the library (creating an empty one when the folder has none), load the text model
    and the ``--model`` runs. Raises ``DuomoError`` for a bad folder or run."""
    db_dir = Path(settings.db_dir)
    if db_dir.exists() and not db_dir.is_dir():
        raise DuomoError(f"{db_dir}: --db must be a library folder, not a file")
    predictors = load_predictors(settings.models)  # first: a bad --model fails before the slower steps
    library = _open_library(db_dir)
    library.searcher.embedder  # load MiniLM now, not on the first search
    return Resources(library=library, predictors=predictors)


def unindexed_uploads(upload_dir: Path, store) -> list[Path]:
    """Saved uploads (in name order) that no committed video of the library comes from: a server
    stopped before their indexing jobs finished. Partial uploads (``.incoming-*``) are not listed."""
    if not upload_dir.is_dir():
        return []
    indexed = {str(Path(record.path).resolve()) for record in store.videos()}
    return [path for path in sorted(upload_dir.iterdir())
            if path.is_file() and not path.name.startswith(".") and str(path.resolve()) not in indexed]


def create_app(settings: ServiceSettings, resources: Resources | None = None) -> FastAPI:
    """The app over ``settings.db_dir``. The library and models open when it starts, unless
    ``resources`` were opened already (the CLI does that first, to report a bad --db or
    --model in one line before the server starts)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        opened = resources or open_resources(settings)
        library, predictors = opened.library, opened.predictors
        settings.upload_dir.mkdir(parents=True, exist_ok=True)
        for partial in settings.upload_dir.glob(".incoming-*"):  # uploads cut off by a stopped server
            partial.unlink(missing_ok=True)
        index_jobs = IndexJobs(settings.db_dir, settings.index_settings, workers=settings.index_workers,
                               on_indexed=library.reload)
        for upload in unindexed_uploads(settings.upload_dir, library.store):
            logger.info("indexing %s, an upload a stopped server had not indexed", upload)
            index_jobs.submit(upload)
        app.state.settings = settings
        app.state.library = library
        app.state.predictors = predictors
        app.state.jobs = index_jobs
        try:
            yield
        finally:
            index_jobs.stop()
            app.state.predictors = {}

    app = FastAPI(
        title="Duomo",
        summary="Search, browse and play an indexed video library; upload videos; caption and answer questions.",
        lifespan=lifespan,
        docs_url=None,
        # with a token, the docs get an "Authorize" button (the check itself is TokenGuard's)
        dependencies=[Security(HTTPBearer(auto_error=False, description="the --token of duomo serve"))]
        if settings.token else None,
    )

    @app.get("/docs", include_in_schema=False)
    def docs(token: str | None = None) -> HTMLResponse:
        # the page reached with ?token=T fetches the schema with it too
        schema_url = app.openapi_url + (f"?{urlencode({'token': token})}" if token else "")
        return get_swagger_ui_html(openapi_url=schema_url, title="Duomo API")
    app.include_router(search.router)
    app.include_router(videos.router)
    app.include_router(jobs.router)
    app.include_router(predict.router)
    @app.exception_handler(DuomoError)
    async def duomo_error(request, err: DuomoError) -> JSONResponse:
        # our errors are about the input (a bad query, an unreadable file): one line, no traceback
        return JSONResponse({"detail": str(err)}, status_code=400)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.add_middleware(TokenGuard, token=settings.token)
    return app
