"""Text features for the fast classifier: numpy only, no tokenizer.

Two parts, both computed from the prompt's UTF-8 bytes:

- **hashed character n-grams**: bytes are normalised (letters lower-cased,
  every digit mapped to ``0`` so numbers generalise, whitespace collapsed to
  one kind), each n-gram is hashed into ``2**hash_bits`` buckets. A prompt's
  sparse vector is the n-gram count per bucket divided by the number of
  n-grams (so a linear score is the mean of the n-gram weights).
- **structural features** (dense, all ``log1p`` of counts or ratios in [0, 1]):
  length, words, lines, digits, numbers, maths symbols, clause markers,
  sentences, question marks, capitals, negations, long words, brackets,
  quotes, non-ASCII share, mean word length and type/token ratio.
- **extended features** (``EXTENDED_NAMES``, for the tree models): the
  structural ones plus layout and readability counts that need no
  vocabulary beyond a list of English function words: list items
  (lines opening with ``A.``, ``1)``, ``-`` ...), the longest digit run,
  words per sentence, long-word and function-word shares, markup bytes
  (``\\ $ _ # & @``), mean and spread of line lengths, the first line's
  length and the number of distinct words.

Everything is vectorised so a 1,000-token prompt costs well under a
millisecond on one core.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

STRUCTURAL_NAMES = (
    "log_chars", "log_words", "log_lines", "log_digits", "log_numbers", "log_math", "log_clauses",
    "log_sentences", "log_questions", "log_capitals", "log_negations", "log_long_words", "log_brackets",
    "log_quotes", "non_ascii_share", "digit_share", "capital_share", "mean_word_len", "type_token_ratio",
    "log_longest_line", "log_blank_lines",
)

EXTRA_NAMES = (
    "log_list_items", "log_longest_digit_run", "log_words_per_sentence", "long_word_share",
    "function_word_share", "log_markup", "log_mean_line", "line_len_cv", "log_first_line", "log_distinct_words",
)
EXTENDED_NAMES = STRUCTURAL_NAMES + EXTRA_NAMES

# Byte classes for one-pass counting.
_OTHER, _LOWER, _UPPER, _DIGIT, _SPACE, _NEWLINE, _MATH, _CLAUSE, _SENT, _QUEST, _BRACKET, _QUOTE, _HIGH = range(13)
_CLASS = np.full(256, _OTHER, dtype=np.uint8)
_CLASS[ord("a"):ord("z") + 1] = _LOWER
_CLASS[ord("A"):ord("Z") + 1] = _UPPER
_CLASS[ord("0"):ord("9") + 1] = _DIGIT
for _c in " \t\r\x0b\x0c":
    _CLASS[ord(_c)] = _SPACE
_CLASS[ord("\n")] = _NEWLINE
for _c in "+-*/=<>^%|~":
    _CLASS[ord(_c)] = _MATH
for _c in ",;:":
    _CLASS[ord(_c)] = _CLAUSE
for _c in ".!":
    _CLASS[ord(_c)] = _SENT
_CLASS[ord("?")] = _QUEST
for _c in "()[]{}":
    _CLASS[ord(_c)] = _BRACKET
for _c in "\"'`":
    _CLASS[ord(_c)] = _QUOTE
_CLASS[128:] = _HIGH

# Normalisation for n-grams: lower-case letters, digits -> '0', all whitespace -> ' '.
_NORM = np.arange(256, dtype=np.uint32)
_NORM[ord("A"):ord("Z") + 1] += 32
_NORM[ord("0"):ord("9") + 1] = ord("0")
for _c in " \t\r\n\x0b\x0c":
    _NORM[ord(_c)] = ord(" ")

_IS_WORD = np.zeros(256, dtype=bool)
_IS_WORD[[_LOWER, _UPPER, _DIGIT, _HIGH]] = True

_NEGATIONS = frozenset("not no never none neither nor except false incorrect least without".split())
_CLAUSE_WORDS = frozenset("which that because if when while although whereas unless since".split())
# Punctuation -> space, so str.split() yields bare lower-case words.
_WORD_TABLE = str.maketrans({c: " " for c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"})
_FUNCTION_WORDS = frozenset(
    "a an the of and or to in on at by for with from as is are was were be been being it its this that these "
    "those which who whom what there their they he she we you i not no but if then so than".split()
)
_HASH_MUL = np.uint32(2654435761)
_MARKUP = np.zeros(256, dtype=bool)
for _c in "\\$_#&@":
    _MARKUP[ord(_c)] = True
# Bytes that open a list item when followed by ``.`` or ``)``, and bullets that open one alone.
_ENUM = np.zeros(256, dtype=bool)
_ENUM[ord("A"):ord("Z") + 1] = True
_ENUM[ord("a"):ord("z") + 1] = True
_ENUM[ord("0"):ord("9") + 1] = True
_BULLET = np.zeros(256, dtype=bool)
_BULLET[[ord("-"), ord("*")]] = True


def _bytes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8", "replace"), dtype=np.uint8)


def ngram_buckets(text: str, orders: tuple[int, ...], hash_bits: int) -> np.ndarray:
    """Bucket index of every character n-gram of the given orders (with repeats); int64."""
    b = _NORM[_bytes(text)]
    if len(b) > 1:
        # Collapse runs of spaces so layout does not change the n-grams.
        keep = np.empty(len(b), dtype=bool)
        keep[0] = True
        np.logical_not((b[1:] == 32) & (b[:-1] == 32), out=keep[1:])
        b = b[keep]
    shift = np.uint32(32 - hash_bits)
    out = []
    with np.errstate(over="ignore"):
        for n in orders:
            if len(b) < n:
                continue
            h = np.full(len(b) - n + 1, np.uint32(n * 0x9E3779B1 & 0xFFFFFFFF), dtype=np.uint32)
            for k in range(n):
                h = (h ^ b[k:len(b) - n + 1 + k]) * np.uint32(16777619)
            out.append((h * _HASH_MUL) >> shift)
    if not out:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate(out).astype(np.int64)


def structural(text: str) -> np.ndarray:
    """The STRUCTURAL_NAMES features of one prompt, float64."""
    return _features(text, extended=False)


def extended(text: str) -> np.ndarray:
    """The EXTENDED_NAMES features of one prompt (STRUCTURAL_NAMES first), float64."""
    return _features(text, extended=True)


def _features(text: str, extended: bool) -> np.ndarray:
    raw = _bytes(text)
    n = len(raw)
    cls = _CLASS[raw]
    cnt = np.bincount(cls, minlength=13).astype(np.float64)
    word = _IS_WORD[cls]
    starts = np.flatnonzero(word[1:] & ~word[:-1]) + 1 if n > 1 else np.zeros(0, dtype=np.int64)
    n_words = len(starts) + (1 if n and word[0] else 0)
    digit = cls == _DIGIT
    n_numbers = int(np.count_nonzero(digit[1:] & ~digit[:-1])) + (1 if n and digit[0] else 0)
    nl = np.flatnonzero(cls == _NEWLINE)
    bounds = np.empty(len(nl) + 2, dtype=np.int64)  # np.r_ costs ~25 µs a call; this path runs per request
    bounds[0], bounds[1:-1], bounds[-1] = -1, nl, n
    line_lens = np.diff(bounds) - 1
    longest = float(line_lens.max()) if len(line_lens) else 0.0
    blank = float(np.count_nonzero(line_lens == 0)) if len(nl) else 0.0
    letters = cnt[_LOWER] + cnt[_UPPER]
    words = text.lower().translate(_WORD_TABLE).split()
    n_clean = len(words)
    wlens = np.fromiter(map(len, words), dtype=np.int64, count=n_clean)
    mean_wlen = float(int(wlens.sum()) / n_clean) if n_clean else 0.0
    counts = Counter(words)  # one C pass; the word-list features below read it
    get = counts.get
    distinct = len(counts)
    ttr = (distinct / n_clean) if n_clean else 1.0
    long_words = int(np.count_nonzero(wlens >= 9))
    negations = sum(get(w, 0) for w in _NEGATIONS)
    clause_words = sum(get(w, 0) for w in _CLAUSE_WORDS)
    log = np.log1p
    base = [
        log(n), log(n_words), log(cnt[_NEWLINE] + 1), log(cnt[_DIGIT]), log(n_numbers), log(cnt[_MATH]),
        log(cnt[_CLAUSE] + clause_words), log(cnt[_SENT]), log(cnt[_QUEST]),
        log(cnt[_UPPER]), log(negations), log(long_words), log(cnt[_BRACKET]),
        log(cnt[_QUOTE]), cnt[_HIGH] / max(n, 1), cnt[_DIGIT] / max(n, 1), cnt[_UPPER] / max(letters, 1),
        log(mean_wlen), ttr, log(longest), log(blank),
    ]
    if not extended:
        return np.array(base, dtype=np.float64)
    # List items: a line opening (after indentation) with a bullet, or a letter/digit then "." or ")".
    items = 0
    if n:
        line_starts = np.empty(len(nl) + 1, dtype=np.int64)
        line_starts[0], line_starts[1:] = 0, nl + 1
        line_starts = line_starts[line_starts < n]
        first = raw[line_starts]
        nxt = raw[np.minimum(line_starts + 1, n - 1)]
        items = int(np.count_nonzero(_BULLET[first] | (_ENUM[first] & ((nxt == 46) | (nxt == 41)))))
    if n_numbers:
        padded = np.zeros(n + 2, dtype=np.int8)
        padded[1:-1] = digit
        edges = np.flatnonzero(np.diff(padded))
        digit_run = float((edges[1::2] - edges[::2]).max())
    else:
        digit_run = 0.0
    filled = line_lens[line_lens > 0]
    mean_line = float(filled.mean()) if len(filled) else 0.0
    line_cv = float(filled.std() / mean_line) if len(filled) > 1 else 0.0
    function_words = sum(get(w, 0) for w in _FUNCTION_WORDS)
    sentences = cnt[_SENT] + cnt[_QUEST]
    return np.array(base + [
        log(items), log(digit_run), log(n_words / (sentences + 1.0)), long_words / max(n_clean, 1),
        function_words / max(n_clean, 1), log(np.count_nonzero(_MARKUP[raw])), log(mean_line), line_cv,
        log(line_lens[0] if len(line_lens) else 0), log(distinct),
    ], dtype=np.float64)


class SparseRows:
    """Rows of bucket indices with per-entry values, CSR-like (duplicates allowed)."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, n_cols: int):
        self.indptr, self.indices, self.values, self.n_cols = indptr, indices, values, n_cols
        self.row_of = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    def take(self, rows: np.ndarray) -> "SparseRows":
        """The given rows, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        lens = np.diff(self.indptr)[rows]
        starts = self.indptr[rows]
        pos = np.repeat(starts - np.r_[0, np.cumsum(lens)[:-1]], lens) + np.arange(lens.sum())
        return SparseRows(np.r_[0, np.cumsum(lens)], self.indices[pos], self.values[pos], self.n_cols)

    def dot(self, w: np.ndarray) -> np.ndarray:
        """X @ w, shape (n_rows,)."""
        return np.bincount(self.row_of, weights=w[self.indices] * self.values, minlength=self.n_rows)

    def tdot(self, r: np.ndarray) -> np.ndarray:
        """X.T @ r, shape (n_cols,)."""
        return np.bincount(self.indices, weights=r[self.row_of] * self.values, minlength=self.n_cols)

    def column_counts(self) -> np.ndarray:
        """Rows in which each column occurs at least once."""
        pairs = np.unique(self.row_of.astype(np.int64) * self.n_cols + self.indices)
        return np.bincount(pairs % self.n_cols, minlength=self.n_cols)


def sparse_ngrams(texts: list[str], orders: tuple[int, ...], hash_bits: int) -> SparseRows:
    rows = [ngram_buckets(t, orders, hash_bits) for t in texts]
    lens = np.array([len(r) for r in rows], dtype=np.int64)
    indptr = np.r_[0, np.cumsum(lens)]
    indices = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    values = np.repeat(1.0 / np.maximum(lens, 1), lens)
    return SparseRows(indptr, indices, values, 1 << hash_bits)


def structural_matrix(texts: list[str]) -> np.ndarray:
    return np.vstack([structural(t) for t in texts]) if texts else np.zeros((0, len(STRUCTURAL_NAMES)))


def extended_matrix(texts: list[str]) -> np.ndarray:
    return np.vstack([extended(t) for t in texts]) if texts else np.zeros((0, len(EXTENDED_NAMES)))
