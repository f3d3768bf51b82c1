"""Duomo's error types: each carries a one-line message a person can act on.

The CLI prints ``str(error)`` and exits non-zero; it never shows a traceback for these.
"""

from __future__ import annotations

from pathlib import Path


class DuomoError(Exception):
    """Base class of every error Duomo raises on purpose (bad input, bad config)."""


class MediaError(DuomoError):
    """A media file that cannot be read as asked: names the file and the reason.

    ``str(err)`` is ``"<path>: <reason>"``.
    """

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):
        # rebuilt from its own arguments when it crosses a process boundary (worker pools)
        return (type(self), (self.path, self.reason))


class ManifestError(DuomoError):
    """A manifest with one or more bad lines; ``problems`` lists every one of them.

    Each problem is ``(line_number, field, message)``; line numbers start at 1, and 0 stands
    for the file as a whole (missing, empty).
    """

    def __init__(self, path: str | Path, problems: list[tuple[int, str, str]]):
        self.path = str(path)
        self.problems = problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(self._line(*problems[0]) + more if problems else f"{self.path}: empty")

    def __reduce__(self):
        return (type(self), (self.path, self.problems))

    def report(self) -> str:
        """All problems, one per line, as ``path:line: field: message`` (``path: message`` for
        problems with the file as a whole, line 0)."""
        return "\n".join(self._line(*problem) for problem in self.problems)

    def _line(self, line_no: int, field: str, message: str) -> str:
        return f"{self.path}:{line_no}: {field}: {message}" if line_no else f"{self.path}: {message}"
