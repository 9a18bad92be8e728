"""Difficulty classifiers: P(pool answers correctly) from the prompt alone."""
from ponder.router.classifiers.base import (
    FORMAT_VERSION, Classifier, IncompatibleModel, build_classifier, load_classifier, register, registered,
    save_classifier,
)

__all__ = [
    "FORMAT_VERSION", "Classifier", "IncompatibleModel", "build_classifier", "load_classifier", "register",
    "registered", "save_classifier",
]
