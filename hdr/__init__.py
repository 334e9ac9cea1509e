"""hdr: handwritten digit recognition that reads real photos, scans and sketches."""
from hdr.loading import InvalidImageError
from hdr.preprocess import BlankImageError, preprocess
from hdr.recognizer import Prediction, Recognizer

__all__ = ["BlankImageError", "InvalidImageError", "Prediction", "Recognizer", "preprocess"]
