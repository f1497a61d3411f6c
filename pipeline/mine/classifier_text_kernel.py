"""The classifier tokeniser (classifier_text.py, steps 3-5): a Numba loop over code points.

Code points are classed by a table built from the regular-expression classes of
`classifier_tokens` (the specification), and one pass writes the line's UTF-8 bytes;
tests/pipeline/mine/test_classifier_text_kernel.py checks byte equality (docs/stages/mine.md).
"""

from __future__ import annotations

import functools
import re

import numba
import numpy as np

# Class of a code point (low 2 bits) and a flag.
OTHER = 0  # a token of its own: [^\w\s] and '_'
LETTER = 1  # [^\W\d_]: runs are one token
DIGIT = 2  # \d: runs are one token
SPACE = 3  # \s: separates tokens
IS_DIGIT_FLAG = 4  # str.isdigit(): a run of 2+ code points starting with one becomes NUM
UNICODE_SIZE = 0x110000
_BACKSLASH = 92


@functools.lru_cache(maxsize=1)
def code_point_classes() -> np.ndarray:
    """uint8[0x110000]: the class of every code point, from Python's own regex classes (~0.3 s)."""
    every = "".join(map(chr, range(UNICODE_SIZE)))
    classes = np.zeros(UNICODE_SIZE, dtype=np.uint8)
    for cls, pattern in ((LETTER, r"[^\W\d_]"), (DIGIT, r"\d"), (SPACE, r"\s")):
        hits = np.fromiter((m.start() for m in re.finditer(pattern, every)), dtype=np.int64)
        classes[hits] = cls
    digits = np.fromiter((i for i, c in enumerate(every) if c.isdigit()), dtype=np.int64)
    classes[digits] |= IS_DIGIT_FLAG
    return classes


@numba.njit(cache=True, nogil=True)
def _put_utf8(out: np.ndarray, pos: int, cp: int) -> int:
    if cp < 0x80:
        out[pos] = cp
        return pos + 1
    if cp < 0x800:
        out[pos] = 0xC0 | (cp >> 6)
        out[pos + 1] = 0x80 | (cp & 0x3F)
        return pos + 2
    if cp < 0x10000:
        out[pos] = 0xE0 | (cp >> 12)
        out[pos + 1] = 0x80 | ((cp >> 6) & 0x3F)
        out[pos + 2] = 0x80 | (cp & 0x3F)
        return pos + 3
    out[pos] = 0xF0 | (cp >> 18)
    out[pos + 1] = 0x80 | ((cp >> 12) & 0x3F)
    out[pos + 2] = 0x80 | ((cp >> 6) & 0x3F)
    out[pos + 3] = 0x80 | (cp & 0x3F)
    return pos + 4


@numba.njit(cache=True, nogil=True)
def _is_ascii_lower(cp: int) -> bool:
    return 97 <= cp <= 122


@numba.njit(cache=True, nogil=True)
def tokens_to_utf8(code_points: np.ndarray, classes: np.ndarray, out: np.ndarray) -> int:
    """Write the space-joined tokens of lower-cased, NFKC-normalised code points to `out` (UTF-8:
    at most 4 bytes per code point plus a space each, so 5 per code point is enough); returns
    the number of bytes written."""
    n = code_points.shape[0]
    pos = 0
    i = 0
    while i < n:
        cp = np.int64(code_points[i])
        cls = classes[cp] & 3
        if cls == SPACE:
            i += 1
            continue
        if pos > 0:
            out[pos] = 32
            pos += 1
        if cp == _BACKSLASH and i + 1 < n and _is_ascii_lower(np.int64(code_points[i + 1])):
            out[pos] = _BACKSLASH
            pos += 1
            i += 1
            while i < n and _is_ascii_lower(np.int64(code_points[i])):
                out[pos] = code_points[i]
                pos += 1
                i += 1
        elif cls in (LETTER, DIGIT):
            start = i
            while i < n and (classes[np.int64(code_points[i])] & 3) == cls:
                i += 1
            if i - start > 1 and classes[cp] & IS_DIGIT_FLAG:
                out[pos] = 78  # NUM
                out[pos + 1] = 85
                out[pos + 2] = 77
                pos += 3
            else:
                for k in range(start, i):
                    pos = _put_utf8(out, pos, np.int64(code_points[k]))
        else:
            pos = _put_utf8(out, pos, cp)
            i += 1
    return pos


def line_bytes(normalised: str) -> np.ndarray:
    """The classifier line of an already truncated, NFKC-normalised, lower-cased text, as UTF-8
    bytes (a view of a fresh buffer). A lone surrogate raises UnicodeEncodeError, as encoding
    the line for fastText would."""
    code_points = np.frombuffer(normalised.encode("utf-32-le"), dtype=np.uint32)
    out = np.empty(5 * len(code_points) + 4, dtype=np.uint8)
    size = tokens_to_utf8(code_points, code_point_classes(), out)
    return out[:size]
