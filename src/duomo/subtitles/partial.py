"""All-or-nothing output files: write to a temporary file beside the target, rename at the end."""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import os
from pathlib import Path
import tempfile


@contextlib.contextmanager
def partial_file(out: str | Path) -> Iterator[Path]:
    """Yields a fresh temporary path in ``out``'s folder, with ``out``'s extension (muxers pick
    the format from it); renames it to ``out`` when the block ends normally and deletes it when
    the block raises, so ``out`` is either complete or untouched."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=f".part{out.suffix}", dir=out.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; the result is an ordinary file
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
