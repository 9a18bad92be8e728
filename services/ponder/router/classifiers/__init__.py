"""Difficulty classifiers: P(pool answers correctly) from the prompt alone.

Importing the package registers the built-in kinds (one line each below).
"""
from ponder.router.classifiers.base import (
    FORMAT_VERSION, META_FILE, Classifier, IncompatibleModel, build_classifier, gain_target, load_classifier, register,
    registered, save_classifier,
)
from ponder.router.classifiers import linear, trees, embedding, minilm_gbt, neighbours, factorisation  # noqa: E402,F401,I001

__all__ = [
    "FORMAT_VERSION", "META_FILE", "Classifier", "IncompatibleModel", "build_classifier", "gain_target", "load_classifier", "register",
    "registered", "save_classifier",
]
