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


class ManifestError(DuomoError):
    """A manifest with one or more bad lines; ``problems`` lists every one of them.

    Each problem is ``(line_number, field, message)``; line numbers start at 1.
    """

    def __init__(self, path: str | Path, problems: list[tuple[int, str, str]]):
        self.path = str(path)
        self.problems = problems
        first = problems[0] if problems else (0, "", "empty")
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{self.path}:{first[0]}: {first[1]}: {first[2]}{more}")

    def report(self) -> str:
        """All problems, one per line, as ``path:line: field: message``."""
        return "\n".join(f"{self.path}:{n}: {f}: {m}" for n, f, m in self.problems)
