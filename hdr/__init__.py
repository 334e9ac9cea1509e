"""hdr: handwritten digit recognition that reads real photos, scans and sketches."""
from hdr.preprocess import BlankImageError, InvalidImageError, preprocess
from hdr.recognizer import Prediction, Recognizer

__all__ = ["BlankImageError", "InvalidImageError", "Prediction", "Recognizer", "preprocess"]
