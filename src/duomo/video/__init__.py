"""Video I/O: probe, decode, sample, stream, extract audio, write; all on PyAV."""
