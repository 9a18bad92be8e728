"""Outcome tables: which model answered which prompt correctly.

Format (RouteLLM's): a CSV with a ``prompt`` column and one boolean column per
model (``True``/``False``, also ``1``/``0``, ``yes``/``no``, any case). Several
files load into one ``OutcomeTable`` that remembers each row's file, so
cross-validation can group by file. Every problem raises ``OutcomeError``
naming the file, the column and the (1-based, header = row 1) row.
"""
from __future__ import annotations

import csv
import dataclasses
import os
import pathlib
import sys
from typing import Iterable, Sequence

import numpy as np

from ponder.common.errors import FailedPrecondition

PROMPT_COLUMN = "prompt"
TRUE_WORDS = frozenset({"true", "1", "yes", "t", "y", "1.0"})
FALSE_WORDS = frozenset({"false", "0", "no", "f", "n", "0.0"})


class OutcomeError(FailedPrecondition):
    """An outcome table cannot be used; names the file and, where known, column and row."""

    def __init__(self, file: str, problem: str, column: str | None = None, row: int | None = None):
        self.file, self.problem, self.column, self.row = file, problem, column, row
        where = file
        if row is not None:
            where += f", row {row}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {problem}")


@dataclasses.dataclass
class OutcomeTable:
    """Prompts with per-model correctness; ``files[i]`` is the file row i came from."""

    prompts: list[str]
    outcomes: dict[str, np.ndarray]
    files: list[str]
    # Free-text columns kept beside the outcomes (e.g. a model's responses), aligned with prompts.
    texts: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.prompts)

    def labels(self, column: str) -> np.ndarray:
        return self.outcomes[column]

    def subset(self, idx: Sequence[int] | np.ndarray) -> "OutcomeTable":
        idx = np.asarray(idx, dtype=np.int64)
        return OutcomeTable(
            prompts=[self.prompts[i] for i in idx],
            outcomes={k: v[idx] for k, v in self.outcomes.items()},
            files=[self.files[i] for i in idx],
            texts={k: [v[i] for i in idx] for k, v in self.texts.items()},
        )


def parse_bool(cell: str) -> bool | None:
    v = cell.strip().lower()
    if v in TRUE_WORDS:
        return True
    if v in FALSE_WORDS:
        return False
    return None


def _raise_field_limit() -> None:
    # Long prompts (whole documents) exceed csv's default 128 KiB field limit.
    limit = sys.maxsize
    while True:
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:
            limit //= 10


def load_outcomes(paths: Iterable[str | os.PathLike[str]], columns: Sequence[str],
                  prompt_column: str = PROMPT_COLUMN, text_columns: Sequence[str] = ()) -> OutcomeTable:
    """Read outcome CSVs keeping ``columns`` (each must be boolean in every row) and the free-text
    ``text_columns`` (any value, e.g. a model's responses).

    Raises OutcomeError for an unreadable or empty file, a missing column, an
    empty prompt or a non-boolean cell.
    """
    _raise_field_limit()
    paths = [pathlib.Path(p) for p in paths]
    if not paths:
        raise OutcomeError("<outcomes>", "no outcome files given")
    if not columns:
        raise OutcomeError(str(paths[0]), "no model columns requested")
    prompts: list[str] = []
    files: list[str] = []
    values: dict[str, list[bool]] = {c: [] for c in columns}
    texts: dict[str, list[str]] = {c: [] for c in text_columns}
    for path in paths:
        name = str(path)
        try:
            fh = open(path, newline="", encoding="utf-8")
        except OSError as e:
            raise OutcomeError(name, f"cannot read: {e.strerror or e}") from None
        with fh:
            reader = csv.reader(fh)
            try:
                header = next(reader)
            except StopIteration:
                raise OutcomeError(name, "file is empty (no header row)") from None
            except (csv.Error, UnicodeDecodeError) as e:
                raise OutcomeError(name, f"not a readable CSV: {e}", row=1) from None
            header = [h.strip() for h in header]
            wanted = [prompt_column, *columns, *text_columns]
            missing = [c for c in wanted if c not in header]
            if missing:
                raise OutcomeError(name, f"missing column; the header has {header}", column=missing[0])
            pos = {c: header.index(c) for c in wanted}
            width = len(header)
            n_before = len(prompts)
            row_no = 1
            try:
                for row_no, row in enumerate(reader, start=2):
                    if not row or all(not c.strip() for c in row):
                        continue
                    if len(row) != width:
                        raise OutcomeError(name, f"has {len(row)} cells, the header has {width}", row=row_no)
                    prompt = row[pos[prompt_column]]
                    if not prompt.strip():
                        raise OutcomeError(name, "empty prompt", column=prompt_column, row=row_no)
                    for c in columns:
                        b = parse_bool(row[pos[c]])
                        if b is None:
                            raise OutcomeError(
                                name, f"expected a boolean (True/False), got {row[pos[c]]!r}", column=c, row=row_no
                            )
                        values[c].append(b)
                    for c in text_columns:
                        texts[c].append(row[pos[c]])
                    prompts.append(prompt)
                    files.append(name)
            except (csv.Error, UnicodeDecodeError) as e:
                raise OutcomeError(name, f"not a readable CSV: {e}", row=row_no + 1) from None
            if len(prompts) == n_before:
                raise OutcomeError(name, "has a header but no data rows")
    return OutcomeTable(
        prompts=prompts, outcomes={c: np.asarray(v, dtype=bool) for c, v in values.items()}, files=files, texts=texts
    )


def require_both_classes(table: OutcomeTable, column: str, source: str) -> None:
    """A classifier cannot learn from a column that is all True or all False."""
    y = table.labels(column)
    if y.all() or not y.any():
        value = bool(y[0]) if len(y) else None
        raise OutcomeError(source, f"only one class: every row is {value}; need both True and False rows", column=column)


def shared_data_dir() -> pathlib.Path:
    """``<repo>/../shared/data`` for benchmarks and tests."""
    return pathlib.Path(__file__).resolve().parents[4].parent / "shared" / "data"
