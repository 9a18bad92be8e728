"""The difficulty-classifier plug-in kind.

A classifier predicts, from the prompt alone, a calibrated probability that
each of its targets (a pool, or a model column of an outcome table) answers
correctly. One interface: ``fit`` on prompts and boolean outcomes,
``predict_proba`` → array (n_prompts, n_targets) in [0, 1]. Kinds register by
name (a duplicate name fails); ``build_classifier`` makes one from a name and
a params mapping, with typed pydantic params. The package's ``__init__``
imports the built-in kinds, so importing any part of the package fills the
registry; this module imports none of them.

A trained classifier lives in a model directory: ``model.json`` (format
version, kind, the kind's own array-format version, params, targets,
calibration, report) plus the kind's own arrays. ``load_classifier`` refuses
a directory of another format version, an unknown kind or another version of
that kind's arrays with ``IncompatibleModel`` saying why.
"""
from __future__ import annotations

import abc
import json
import pathlib
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ValidationError

from ponder.common.errors import ConfigError, FailedPrecondition
from ponder.router.classifiers.calibration import Calibrator
from ponder.router.classifiers.guard import LengthGuard, fit_guard

FORMAT_VERSION = 1
META_FILE = "model.json"


def gain_target(base: str, over: str) -> str:
    """Name of the head predicting that ``over`` answers correctly and ``base`` does not."""
    return f"{over}>{base}"


class IncompatibleModel(FailedPrecondition):
    """A model directory this version of ponder cannot load."""

    def __init__(self, path: str, reason: str):
        self.path, self.reason = path, reason
        super().__init__(f"cannot load classifier from {path}: {reason}")


class Classifier(abc.ABC):
    """Predicts P(target answers correctly) per prompt; subclasses implement the raw scores."""

    name: ClassVar[str]
    Params: ClassVar[type[BaseModel]]
    # Version of what save_arrays writes; bump it when a saved directory could be misread.
    kind_version: ClassVar[int] = 1

    def __init__(self, params: BaseModel):
        self.params = params
        self.targets: list[str] = []
        self.calibrators: list[Calibrator] = []
        self.report: dict[str, Any] = {}
        # The no-harm guard (``guard``): None until ``fit_guarded`` fits one.
        self.guard: LengthGuard | None = None

    @abc.abstractmethod
    def fit(self, texts: list[str], labels: dict[str, np.ndarray]) -> "Classifier":
        """Train one output per key of ``labels``: arrays aligned with ``texts``, boolean, or
        float with 1/0 for correct/wrong and NaN where that target has no outcome."""

    @abc.abstractmethod
    def raw_scores(self, texts: list[str]) -> np.ndarray:
        """Uncalibrated scores, shape (n, n_targets); higher means more likely correct."""

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Calibrated probabilities, shape (n, n_targets), in [0, 1]."""
        raw = self.raw_scores(texts)
        out = np.empty_like(raw)
        for j, cal in enumerate(self.calibrators):
            out[:, j] = cal(raw[:, j])
        return self.guard.apply(out, texts, self.targets) if self.guard is not None else out

    def fit_guarded(self, texts: list[str], labels: dict[str, np.ndarray], roles: tuple[str, str],
                    groups: list[str] | None = None, folds: int = 3, seed: int = 0) -> "Classifier":
        """``fit`` plus the no-harm guard on the pair ``roles`` = (weak, strong) (``guard.fit_guard``): inner
        cross-validation of fresh classifiers of this kind and params decides how far to shrink the pair's
        gain towards the length-only prior; ``report["guard"]`` says what it chose and why. Costs ``folds``
        extra fits on (folds-1)/folds of the rows; ValueError when a role is not among ``labels``."""
        guard = fit_guard(lambda: type(self)(self.params), texts, labels, roles, groups, folds, seed)
        self.fit(texts, labels)
        self.guard = guard
        self.report["guard"] = guard.report
        return self

    def gain_score(self, texts: list[str], weak: str, strong: str) -> np.ndarray:
        """Expected gain of the strong target over the weak one per prompt, in [-1, 1]; shape (n,).

        With the gain heads ``gain_target(weak, strong)`` (strong right, weak
        wrong) and ``gain_target(strong, weak)`` among the targets: the
        difference of their calibrated probabilities, P(s ∧ ¬w) - P(w ∧ ¬s),
        which equals P(s) - P(w) but is learnt from the prompts where the two
        disagree, so a prompt both get wrong (or right) scores 0. Without
        them: P(s) - P(w) from the two per-target heads. KeyError names a
        missing target.
        """
        for t in (weak, strong):
            if t not in self.targets:
                raise KeyError(f"no target {t!r}; the model predicts {self.targets}")
        p = self.predict_proba(texts)
        up, down = gain_target(weak, strong), gain_target(strong, weak)
        if up in self.targets and down in self.targets:
            return p[:, self.targets.index(up)] - p[:, self.targets.index(down)]
        return p[:, self.targets.index(strong)] - p[:, self.targets.index(weak)]

    def predict(self, text: str) -> dict[str, float]:
        """One prompt → {target: probability}."""
        p = self.predict_proba([text])[0]
        return {t: float(v) for t, v in zip(self.targets, p)}

    @abc.abstractmethod
    def save_arrays(self, directory: pathlib.Path) -> None:
        """Write the kind's learned state into ``directory``."""

    @abc.abstractmethod
    def load_arrays(self, directory: pathlib.Path) -> None:
        """Read what ``save_arrays`` wrote."""


_REGISTRY: dict[str, type[Classifier]] = {}


def register(cls: type[Classifier]) -> type[Classifier]:
    if cls.name in _REGISTRY:
        raise ValueError(f"classifier {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def registered() -> list[str]:
    return sorted(_REGISTRY)


def build_classifier(name: str, params: dict[str, Any] | None = None, field: str = "classifier") -> Classifier:
    """A fresh classifier; an unknown name or bad params → ConfigError with the field path."""
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ConfigError("classifier", [(f"{field}.name", f"unknown classifier {name!r}; known: {sorted(_REGISTRY)}")])
    try:
        p = cls.Params.model_validate(params or {})
    except ValidationError as e:
        problems = [(f"{field}.params." + ".".join(str(x) for x in err["loc"]), err["msg"]) for err in e.errors()]
        raise ConfigError("classifier", problems) from None
    return cls(p)


def save_classifier(clf: Classifier, directory: str | pathlib.Path) -> pathlib.Path:
    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    clf.save_arrays(d)
    meta = {
        "format_version": FORMAT_VERSION,
        "kind": clf.name,
        "kind_version": clf.kind_version,
        "params": clf.params.model_dump(mode="json"),
        "targets": clf.targets,
        "calibrators": [c.to_dict() for c in clf.calibrators],
        "report": clf.report,
        "guard": clf.guard.to_dict() if clf.guard is not None else None,
    }
    # Metadata last: a directory without it is an interrupted save, never a half-loaded model.
    tmp = d / (META_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True))
    tmp.replace(d / META_FILE)
    return d


def load_classifier(directory: str | pathlib.Path) -> Classifier:
    """Load a model directory; IncompatibleModel when it is missing, corrupt or of another version."""
    d = pathlib.Path(directory)
    path = str(d)
    meta_path = d / META_FILE
    if not meta_path.is_file():
        raise IncompatibleModel(path, f"no {META_FILE} (not a model directory, or the save was interrupted)")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as e:
        raise IncompatibleModel(path, f"{META_FILE} is unreadable: {e}") from None
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise IncompatibleModel(
            path, f"format version {version!r}, this ponder reads version {FORMAT_VERSION}; retrain with `ponder router train`"
        )
    kind = meta.get("kind")
    cls = _REGISTRY.get(kind)
    if cls is None:
        raise IncompatibleModel(path, f"unknown classifier kind {kind!r}; known: {sorted(_REGISTRY)}")
    kind_version = meta.get("kind_version", 1)
    if kind_version != cls.kind_version:
        raise IncompatibleModel(
            path, f"{kind} arrays of version {kind_version!r}, this ponder reads version {cls.kind_version}; "
            "retrain with `ponder router train`"
        )
    try:
        clf = cls(cls.Params.model_validate(meta.get("params", {})))
        clf.targets = list(meta["targets"])
        clf.calibrators = [Calibrator.from_dict(c) for c in meta["calibrators"]]
        clf.report = meta.get("report", {})
        clf.load_arrays(d)
        clf.guard = LengthGuard.from_dict(meta["guard"]) if meta.get("guard") else None
    except (KeyError, ValueError, TypeError, OSError) as e:
        raise IncompatibleModel(path, f"{type(e).__name__}: {e}") from None
    if len(clf.calibrators) != len(clf.targets):
        raise IncompatibleModel(path, f"{len(clf.targets)} targets but {len(clf.calibrators)} calibrators")
    if clf.guard is not None and not {clf.guard.weak, clf.guard.strong} <= set(clf.targets):
        raise IncompatibleModel(path, f"the guard's pair {clf.guard.weak}, {clf.guard.strong} is not among the "
                                f"targets {clf.targets}")
    return clf
