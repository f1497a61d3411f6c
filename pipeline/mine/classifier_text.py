"""The text a page shows the math classifier: one preprocessing for training and for scoring.

fastText splits on whitespace only, so what counts as a "word" is decided here. The same
function runs when the seed is turned into a training file and when every pool page is scored
(`ScorePages`), so the two always agree; the metadata of every model names the version below.

Steps, in order:

1. Truncation: only the first `max_chars` characters (default 4,000, about 600-700 English
   words) are used; a lone surrogate among them (not encodable as UTF-8) becomes U+FFFD.
   Scoring cost is linear in the number of tokens, and the start of a page is enough to tell a
   math page; a page's score does not depend on its tail.
2. Unicode NFKC normalisation (full-width letters and digits, ligatures and compatibility
   forms become their plain equivalents) and lower-casing.
3. Tokenising, with LaTeX kept: a TeX command (`\\frac`, `\\sqrt`, `\\int`) is one token, every
   other symbol (`$ ^ _ { } = + - ( ) |`, dashes, quotes ...) is its own token, runs of letters
   are words and runs of digits are numbers.
   So `$x^2+\\frac{1}{2}$` becomes `$ x ^ 2 + \\frac { 1 } { 2 } $`: formula structure is visible
   to the word n-grams (3 by default) instead of being glued into rare one-off "words".
4. Numbers: a single digit stays as it is (`x ^ 2` is informative); a run of two or more
   digits becomes the token `NUM`: specific values (years, prices, 1234) carry no topic and
   would only fill the vocabulary with words under minCount.
5. Newlines and all other whitespace become single spaces (fastText reads one example per line).
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np

from pipeline.mine.classifier_text_kernel import line_bytes

# Bumped whenever the output of `classifier_text` changes for some input: a model trained with
# another version must not be used to score (checked when the model is loaded).
PREPROCESSING_VERSION = 1
# Characters of the page used (see the module docstring, step 1).
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
    """The tokens of `text` after steps 1-4 of the module docstring."""
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
