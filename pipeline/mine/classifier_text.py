"""The text a page shows the math classifier: one preprocessing for training and for scoring.

Steps: (1) the first `max_chars` characters; (2) NFKC and lower-case; (3) tokens, a TeX command
whole and every other symbol its own token; (4) digit runs of 2+ become `NUM`; (5) whitespace to
single spaces. Every model records `PREPROCESSING_VERSION`. Why each step: docs/stages/mine.md.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np

from pipeline.mine.classifier_text_kernel import line_bytes

# Bumped whenever the output of `classifier_text` changes for some input: a model trained with
# another version must not be used to score (checked when the model is loaded).
PREPROCESSING_VERSION = 1
# Characters of the page used (docs/stages/mine.md, classifier text, step 1).
DEFAULT_MAX_CHARS = 4000
# Upper-case, so no lower-cased word of a page can collide with it.
NUMBER_TOKEN = "NUM"

# TeX command | letters (no digits, no underscore) | digits | any other single non-space symbol.
# Lone surrogates cannot be written as UTF-8 (a fastText line, a training file): step 1 replaces
# them with U+FFFD, a symbol token of its own.
_LONE_SURROGATE_RE = re.compile("[\ud800-\udfff]")
REPLACEMENT_CHARACTER = "\ufffd"
_TOKEN_RE = re.compile(r"\\[a-z]+|[^\W\d_]+|\d+|[^\w\s]|_")


def classifier_tokens(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> list[str]:
    """The tokens of `text` after steps 1-4 (docs/stages/mine.md, classifier text)."""
    head = _LONE_SURROGATE_RE.sub(REPLACEMENT_CHARACTER, text[:max_chars])
    if not head.isascii():  # NFKC leaves ASCII unchanged; skipping it saves time
        head = unicodedata.normalize("NFKC", head)
    tokens = _TOKEN_RE.findall(head.lower())
    return [NUMBER_TOKEN if len(t) > 1 and t[0].isdigit() else t for t in tokens]


def classifier_text(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """One line of space-separated tokens: what fastText trains on and scores.

    Equal to `" ".join(classifier_tokens(text, max_chars))` (tested), computed by the Numba
    tokeniser of pipeline/mine/classifier_text_kernel.py, ~4x faster than the regular expression."""
    return bytes(classifier_line_bytes(text, max_chars)).decode("utf-8")


def classifier_line_bytes(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> np.ndarray:
    """`classifier_text` as UTF-8 bytes (uint8 array): what the scoring table reads."""
    head = text[:max_chars]
    # NFKC leaves ASCII and already normalised text unchanged; the checks cost ~5 us a page.
    if not head.isascii() and not unicodedata.is_normalized("NFKC", head):
        head = unicodedata.normalize("NFKC", head)
    try:
        return line_bytes(head.lower())
    except UnicodeEncodeError:  # a lone surrogate (JSON can carry one): step 1's replacement
        return line_bytes(_LONE_SURROGATE_RE.sub(REPLACEMENT_CHARACTER, head).lower())


def preprocessing_description(max_chars: int) -> dict[str, object]:
    """What the model metadata records about the preprocessing."""
    return {
        "version": PREPROCESSING_VERSION,
        "max_chars": max_chars,
        "steps": [
            "truncate to max_chars characters",
            "NFKC, lower-case",
            "tokens: TeX commands, letter runs, digit runs, single symbols",
            f"digit runs of 2+ digits -> {NUMBER_TOKEN}",
            "join with single spaces (one line)",
        ],
    }
