"""The one normalisation and gram tokenisation used for decontamination (both sides).

Benchmark texts and pages go through the same steps (LaTeX presentation folded, NFKD + case
folding, punctuation dropped, letter/digit/CJK grams), so formatting cannot hide a copied
problem; a change to any step bumps `NORMALIZATION_VERSION`. `grams` and `gram_spans` are the
definition; the steps and known limits: docs/stages/decontaminate.md.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

NORMALIZATION_VERSION = 1

# Character classes after folding.
SEP, LETTER, DIGIT, CJK = 0, 1, 2, 3

_CJK_RANGES: tuple[tuple[int, int], ...] = (
    (0x3005, 0x3005),  # ideographic iteration mark
    (0x3007, 0x3007),  # ideographic number zero
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3400, 0x4DBF),  # CJK Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xF900, 0xFAFF),  # CJK Compatibility Ideographs
    (0x20000, 0x3134F),  # CJK Extensions B-G
)

# Control words that only change presentation; matched case-sensitively as TeX does, with the
# lookahead keeping longer words (`\rightarrow`, `\textcircled`) intact.
_PRESENTATION_WORDS = (
    "left",
    "right",
    "middle",
    "big",
    "Big",
    "bigg",
    "Bigg",
    "bigl",
    "Bigl",
    "biggl",
    "Biggl",
    "bigr",
    "Bigr",
    "biggr",
    "Biggr",
    "bigm",
    "Bigm",
    "biggm",
    "Biggm",
    "displaystyle",
    "textstyle",
    "scriptstyle",
    "quad",
    "qquad",
    "text",
    "textrm",
    "textbf",
    "textit",
    "textnormal",
    "textsf",
    "texttt",
    "mathrm",
    "mathbf",
    "mathit",
    "mathsf",
    "mathtt",
    "mathnormal",
    "mbox",
    "hbox",
    "operatorname",
)
_PRESENTATION = re.compile(r"\\(?:" + "|".join(_PRESENTATION_WORDS) + r")(?![A-Za-z])")
# `\frac12`, `\dfrac 1 2`, `\frac ab`: TeX takes one character per brace-less argument.
_BRACELESS = re.compile(
    r"\\(?:[dtc]?(frac)|[dt]?(binom))(?![A-Za-z])(\s*)([0-9A-Za-z])\s*([0-9A-Za-z])"
)
# `\dfrac{` -> `\ frac{`: the variant letter becomes a space, so offsets stay aligned. (The
# pattern starts with the literal backslash, which lets the regex engine skip ahead quickly.)
_VARIANT = re.compile(r"\\(?:[dtc](?=frac(?![A-Za-z]))|[dt](?=binom(?![A-Za-z])))")


def _spaces(match: re.Match[str]) -> str:
    return " " * (match.end() - match.start())


def _braceless(match: re.Match[str]) -> str:
    frac, binom, gap, first, second = match.groups()
    command = frac or binom
    # Without the backslash there is room for the separators: `\frac12` (7) -> `frac1 2` (7),
    # `\frac ab` (8) -> `frac a b` (8); a letter argument always had a space before it in TeX.
    # (Offsets inside such a rewrite may be off by one character; the grams are exact.)
    text = command + (" " if first.isalpha() or gap else "") + first + " " + second
    return text.ljust(match.end() - match.start())


def normalize_latex(text: str) -> str:
    """Step 1, length-preserving (offsets into the result are offsets into `text`)."""
    if "\\" not in text:
        return text
    text = _PRESENTATION.sub(_spaces, text)
    text = _BRACELESS.sub(_braceless, text)
    return _VARIANT.sub("\\\\ ", text)


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def fold_char(char: str) -> tuple[tuple[str, int], ...]:
    """Step 2 and the class of each result (LETTER, DIGIT, CJK; SEP for a separator).

    Empty for a combining mark (it vanishes without separating grams).
    """
    category = unicodedata.category(char)
    if category in ("Cn", "Cs", "Co"):
        return ((" ", SEP),)
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", char).casefold())
    out: list[tuple[str, int]] = []
    for ch in folded:
        cat = unicodedata.category(ch)
        if cat[0] == "M":
            continue
        if _is_cjk(ord(ch)):
            out.append((ch, CJK))
        elif cat[0] == "L":
            out.append((ch, LETTER))
        elif cat[0] == "N":
            out.append((ch, DIGIT))
        else:
            out.append((" ", SEP))
    return tuple(out)


@dataclass(frozen=True)
class CharTables:
    """`fold_char` for every code point, as arrays a Numba kernel can read.

    Code point c folds to `chars[start[c]:start[c] + length[c]]` with classes `classes[...]`.
    """

    start: np.ndarray  # uint32 per code point
    length: np.ndarray  # uint8 per code point
    chars: np.ndarray  # uint32 code points
    classes: np.ndarray  # uint8 per folded code point


# Code points with the same fold as a plain separator share one table entry.
_MAX_CODE_POINT = 0x110000


@lru_cache(maxsize=1)
def char_tables() -> CharTables:
    """Built once per process (~0.5 s); ~5.6 MB."""
    start = np.zeros(_MAX_CODE_POINT, dtype=np.uint32)
    length = np.ones(_MAX_CODE_POINT, dtype=np.uint8)
    chars: list[int] = [0x20]
    classes: list[int] = [SEP]
    for cp in range(_MAX_CODE_POINT):
        char = chr(cp)
        if unicodedata.category(char) in ("Cn", "Cs", "Co", "Zs", "Cc"):
            continue  # start 0, length 1: the shared separator
        folded = fold_char(char)
        if len(folded) == 1 and folded[0][1] == SEP:
            continue
        start[cp] = len(chars)
        length[cp] = len(folded)
        for ch, cls in folded:
            chars.append(ord(ch))
            classes.append(cls)
    return CharTables(
        start=start,
        length=length,
        chars=np.array(chars, dtype=np.uint32),
        classes=np.array(classes, dtype=np.uint8),
    )


def gram_spans(text: str) -> list[tuple[str, int, int]]:
    """(gram, start, end) for every gram, offsets in code points of the original `text`."""
    prepared = normalize_latex(text)
    spans: list[tuple[str, int, int]] = []
    current: list[str] = []
    current_class = SEP
    begin = end = 0

    def flush() -> None:
        if current:
            spans.append(("".join(current), begin, end))
            current.clear()

    for index, char in enumerate(prepared):
        for ch, cls in fold_char(char):
            if cls == SEP:
                flush()
                current_class = SEP
            elif cls == CJK:
                flush()
                spans.append((ch, index, index + 1))
                current_class = SEP
            else:
                if cls != current_class:
                    flush()
                    begin = index
                    current_class = cls
                current.append(ch)
                end = index + 1
    flush()
    return spans


def grams(text: str) -> list[str]:
    """All steps: the text's grams, in order."""
    return [g for g, _, _ in gram_spans(text)]


def gram_string(text: str) -> str:
    """The grams joined by single spaces (the form hashed and shown in reports)."""
    return " ".join(grams(text))
