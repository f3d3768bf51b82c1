"""``duomo serve --db DIR``: the REST service and web page over an indexed library (uvicorn)."""

from __future__ import annotations

import argparse
import os

from rich.console import Console
from rich.markup import escape

from duomo.errors import DuomoError

TOKEN_ENV = "DUOMO_TOKEN"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("serve", help="serve a library: search, play, upload (web page and REST API)")
    parser.add_argument("--db", required=True, help="library folder made by duomo index (an empty one is created)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--model", action="append", default=[], metavar="RUN_DIR",
                        help="trained run to caption / answer / classify with (repeatable, one per task)")
    parser.add_argument("--token", help=f"access token every request must carry (default: ${TOKEN_ENV}, else none)")
    parser.add_argument("--max-upload-mb", type=float, default=512, help="largest upload accepted (default 512)")
    parser.add_argument("--segment-sec", type=float, default=5.0, help="segment length when indexing uploads")
    parser.add_argument("--no-speech", action="store_true", help="index uploads without speech recognition")
    parser.add_argument("--no-ocr", action="store_true", help="index uploads without on-screen text")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from duomo.service.app import ServiceSettings, create_app, open_resources
    except ImportError as err:
        raise DuomoError(f"duomo serve needs the serve extra ({err.name} is missing): pip install 'duomo[serve]'") from None
    from duomo.library.analyze import IndexSettings

    if args.max_upload_mb <= 0:
        raise DuomoError("--max-upload-mb: must be more than 0")
    token = args.token or os.environ.get(TOKEN_ENV) or None
    settings = ServiceSettings(
        db_dir=args.db, models=list(args.model), token=token, max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        index_settings=IndexSettings(segment_sec=args.segment_sec, use_speech=not args.no_speech,
                                     use_ocr=not args.no_ocr))
    console = Console(stderr=True)
    with console.status("opening the library and loading models"):
        resources = open_resources(settings)
    app = create_app(settings, resources)
    shown = "localhost" if args.host in ("127.0.0.1", "::1") else args.host
    console.print(f"duomo serve: library {escape(str(args.db))} at http://{shown}:{args.port}/ "
                  f"(API docs at /docs){', access token required' if token else ''}")
    if args.host not in ("127.0.0.1", "::1", "localhost") and not token:
        console.print("[yellow]warning:[/yellow] listening beyond this machine without an access token (--token)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
