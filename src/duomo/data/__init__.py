"""Data: the manifest format, datasets and batching."""
