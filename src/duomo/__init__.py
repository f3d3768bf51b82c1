"""Duomo: understand videos by fusing what they show, say and write."""

from duomo.errors import DuomoError, ManifestError, MediaError

__version__ = "0.1.0"
__all__ = ["DuomoError", "ManifestError", "MediaError", "__version__", "load"]


def load(run_dir, **kwargs):
    """The Predictor of a trained run folder: ``duomo.load("runs/qa").answer(video, question)``.

    Imports torch on first use only, so ``import duomo`` stays light.
    """
    from duomo.inference import load as load_run

    return load_run(run_dir, **kwargs)
