"""Duomo: understand videos by fusing what they show, say and write."""

from duomo.errors import DuomoError, ManifestError, MediaError

__version__ = "0.1.0"
__all__ = ["DuomoError", "ManifestError", "MediaError", "__version__"]
