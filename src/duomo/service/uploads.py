"""Receiving an uploaded video: the multipart body is parsed as it streams in and the file part
written to a temporary file, stopping at the size limit; the name is reduced to a safe base name."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

MAX_NAME_CHARS = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class UploadRefused(Exception):
    """An upload that is not accepted: ``status`` is the HTTP status, ``str(err)`` the reason."""

    def __init__(self, status: int, reason: str):
        self.status = status
        super().__init__(reason)


def sanitize_filename(name: str, default: str = "upload.mp4") -> str:
    """A file name safe to create in one folder: the last path part (either slash), only letters,
    digits, ``.``, ``_`` and ``-``, no leading dots, at most ``MAX_NAME_CHARS`` (extension kept).

    ``"../../etc/passwd"`` -> ``"passwd"``; ``"C:\\clips\\My Holiday (1).mp4"`` -> ``"My_Holiday_1_.mp4"``.
    """
    base = re.split(r"[\\/]", name or "")[-1]
    base = _UNSAFE.sub("_", base).lstrip("._-")
    if not base:
        return default
    stem, dot, ext = base.rpartition(".")
    if not dot or not stem:
        stem, ext = base, ""
    ext = ext[:10]
    stem = stem[: MAX_NAME_CHARS - len(ext) - 1].rstrip(".") or "upload"
    return f"{stem}.{ext}" if ext else stem


def unique_path(folder: Path, name: str) -> Path:
    """``folder / name``, or ``name-1``, ``name-2``, ... before the extension if taken."""
    candidate = folder / name
    stem, suffix = candidate.stem, candidate.suffix
    n = 1
    while candidate.exists():
        candidate = folder / f"{stem}-{n}{suffix}"
        n += 1
    return candidate


async def receive_upload(request: Request, folder: Path, max_bytes: int, field_name: str = "file") -> tuple[Path, str]:
    """Stream the multipart ``field_name`` part of ``request`` into a new temporary file in
    ``folder``. Returns (temporary file, the name the client gave). Raises ``UploadRefused``:
    413 past ``max_bytes``, 400 for a body that is not a multipart upload with that field."""
    limit_text = _size_text(max_bytes)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + 64 * 1024:
        raise UploadRefused(413, f"the upload is {_size_text(int(declared))}, over the {limit_text} limit")
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise UploadRefused(400, f"send the video as multipart/form-data in a field named {field_name!r}")

    handle = tempfile.NamedTemporaryFile(dir=folder, prefix=".incoming-", suffix=".part", delete=False)
    temp = Path(handle.name)
    state = {"header": b"", "headers": {}, "in_file": False, "filename": None, "written": 0, "over": False,
             "found": False}

    def on_header_field(data, start, end):
        state["header"] += data[start:end]

    def on_header_value(data, start, end):
        key = state["header"].lower()
        state["headers"][key] = state["headers"].get(key, b"") + data[start:end]

    def on_header_end():
        state["header"] = b""

    def on_headers_finished():
        _, options = parse_options_header(state["headers"].get(b"content-disposition", b""))
        is_file = options.get(b"name") == field_name.encode() and not state["found"]
        state["in_file"] = is_file
        if is_file:
            state["found"] = True
            state["filename"] = options.get(b"filename", b"").decode("utf-8", "replace")

    def on_part_data(data, start, end):
        if not state["in_file"] or state["over"]:
            return
        state["written"] += end - start
        if state["written"] > max_bytes:
            state["over"] = True
            return
        handle.write(data[start:end])

    def on_part_end():
        state["in_file"] = False
        state["headers"] = {}

    parser = MultipartParser(boundary, {
        "on_header_field": on_header_field, "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data, "on_part_end": on_part_end,
    })
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes + 1024 * 1024:  # headers and other fields cannot need this much
                state["over"] = True
            if state["over"]:
                raise UploadRefused(413, f"the upload is over the {limit_text} limit")
            parser.write(chunk)
        parser.finalize()
        if state["over"]:
            raise UploadRefused(413, f"the upload is over the {limit_text} limit")
        if not state["found"]:
            raise UploadRefused(400, f"no file in the form field {field_name!r}")
        if state["written"] == 0:
            raise UploadRefused(400, f"{sanitize_filename(state['filename'])}: the file is empty")
    except UploadRefused:
        handle.close()
        temp.unlink(missing_ok=True)
        raise
    except Exception as err:  # python-multipart's parse errors: a malformed body
        handle.close()
        temp.unlink(missing_ok=True)
        raise UploadRefused(400, f"the upload is not a valid multipart body ({err})") from None
    handle.close()
    return temp, state["filename"] or ""


def _size_text(num_bytes: int) -> str:
    mb = num_bytes / (1024 * 1024)
    return f"{mb:.0f} MB" if mb >= 10 else f"{mb:.2g} MB" if mb >= 0.01 else f"{num_bytes} bytes"
