"""On-screen text (OCR) in video frames with RapidOCR; the models load when a reader is built."""

from duomo.ocr.reader import TextBox, TextReader

__all__ = ["TextBox", "TextReader"]
