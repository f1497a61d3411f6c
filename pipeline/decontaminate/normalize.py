"""The one normalisation and gram tokenisation used for decontamination (both sides).

Benchmark texts and pages go through the same steps (LaTeX presentation folded, NFKD + case
folding, punctuation dropped, letter/digit/CJK grams, TeX control words and braces as grams), so
formatting cannot hide a copied problem; a change to any step bumps `NORMALIZATION_VERSION`.
`grams` and `gram_spans` are the definition, `word_letters` says how much of a gram is prose
(the evidence rule of ngram_index.py); the steps and known limits: docs/stages/decontaminate.md.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

NORMALIZATION_VERSION = 2

# Character classes after folding. BACKSLASH starts a control-word gram (`\frac`), LBRACE and
# RBRACE are grams of their own (a group of at most one gram loses its braces: `x^{2}` = `x^2`).
SEP, LETTER, DIGIT, CJK, BACKSLASH, LBRACE, RBRACE = 0, 1, 2, 3, 4, 5, 6
# Gram kinds (`gram_spans`): LETTER, DIGIT, CJK, COMMAND, LBRACE, RBRACE.
COMMAND = BACKSLASH

# Noncharacters (never in interchange text) that the LaTeX step writes for a brace-less
# `\frac12` / `\binom12`: each folds to the characters of its control word, so the rewrite
# keeps the text's length and still leaves room for a separator between the two arguments.
FRAC_MARK, BINOM_MARK = "\ufdd0", "\ufdd1"
_MARKS = {FRAC_MARK: "\\frac", BINOM_MARK: "\\binom"}

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
# Text and font wrappers lose their braces with the command: `\text{ apples each}` reads as the
# words it holds (a group of one gram loses its braces anyway).
_WRAPPER = re.compile(
    r"\\(?:text(?:rm|bf|it|normal|sf|tt)?|math(?:rm|bf|it|sf|tt|normal)|[mh]box|operatorname)"
    r"(?![A-Za-z])\s*\{[^{}]*\}"
)
# Control symbols (`\,` `\{` `\\` `\%` `\ `): presentation or escaped punctuation; `\{` is a
# literal brace, not a group.
_CONTROL_SYMBOL = re.compile(r"\\[^A-Za-z]")
# `\frac12`, `\dfrac 1 2`, `\frac ab`: TeX takes one character per brace-less argument.
_BRACELESS = re.compile(
    r"\\(?:[dtc]?(frac)|[dt]?(binom))(?![A-Za-z])(\s*)([0-9A-Za-z])\s*([0-9A-Za-z])"
)
# `\dfrac{` -> ` \frac{`: the backslash moves over the variant letter, so offsets stay aligned.
# (The pattern starts with the literal backslash, which lets the regex engine skip ahead.)
_VARIANT = re.compile(r"\\(?:[dtc](?=frac(?![A-Za-z]))|[dt](?=binom(?![A-Za-z])))")


def _spaces(match: re.Match[str]) -> str:
    return " " * (match.end() - match.start())


def _wrapper(match: re.Match[str]) -> str:
    text = match.group(0)
    brace = text.index("{")
    return " " * (brace + 1) + text[brace + 1 : -1] + " "


def _braceless(match: re.Match[str]) -> str:
    frac, _binom, _gap, first, second = match.groups()
    # One mark character stands for the control word, which leaves room for a separator:
    # `\frac12` (7) -> mark, 3 spaces, `1 2` (7); the last argument keeps its offset (the first
    # may be off by one character; the grams are exact).
    mark = FRAC_MARK if frac else BINOM_MARK
    width = match.end() - match.start()
    return mark + " " * (width - 4) + first + " " + second


def _variant(match: re.Match[str]) -> str:
    return " \\"


def normalize_latex(text: str) -> str:
    """Step 1, length-preserving (offsets into the result are offsets into `text`)."""
    if "\\" not in text:
        return text
    text = _CONTROL_SYMBOL.sub(_spaces, text)  # first: `\\frac` is a line break, then letters
    text = _WRAPPER.sub(_wrapper, text)
    text = _PRESENTATION.sub(_spaces, text)
    text = _BRACELESS.sub(_braceless, text)
    return _VARIANT.sub(_variant, text)


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


_STRUCTURE = {"\\": BACKSLASH, "{": LBRACE, "}": RBRACE}


def fold_char(char: str) -> tuple[tuple[str, int], ...]:
    """Step 2 and the class of each result (LETTER, DIGIT, CJK, BACKSLASH, LBRACE, RBRACE; SEP
    for a separator).

    Empty for a combining mark (it vanishes without separating grams).
    """
    if char in _MARKS:
        word = _MARKS[char]
        return ((word[0], BACKSLASH), *((c, LETTER) for c in word[1:]))
    category = unicodedata.category(char)
    if category in ("Cn", "Cs", "Co"):
        return ((" ", SEP),)
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", char).casefold())
    out: list[tuple[str, int]] = []
    for ch in folded:
        cat = unicodedata.category(ch)
        if cat[0] == "M":
            continue
        if ch in _STRUCTURE:
            out.append((ch, _STRUCTURE[ch]))
        elif _is_cjk(ord(ch)):
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
        if char not in _MARKS and unicodedata.category(char) in ("Cn", "Cs", "Co", "Zs", "Cc"):
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
    return [(g, b, e) for g, b, e, _ in gram_spans_kinds(text)]


def gram_spans_kinds(text: str) -> list[tuple[str, int, int, int]]:
    """(gram, start, end, kind) for every gram; kind LETTER, DIGIT, CJK, COMMAND, LBRACE or
    RBRACE. The reference for the Numba scan (ngram_index_kernel.py)."""
    prepared = normalize_latex(text)
    spans: list[tuple[str, int, int, int]] = []
    groups: list[int] = []  # index in `spans` of each open `{`
    current: list[str] = []
    current_class = SEP
    begin = end = 0

    def flush() -> None:
        # A lone backslash (no letters after it) is no gram.
        if current and not (current_class == COMMAND and len(current) == 1):
            spans.append(("".join(current), begin, end, current_class))
        current.clear()

    for index, char in enumerate(prepared):
        for ch, cls in fold_char(char):
            if cls == LETTER and current_class == COMMAND:
                current.append(ch)
                end = index + 1
            elif cls in (LETTER, DIGIT):
                if cls != current_class:
                    flush()
                    begin = index
                    current_class = cls
                current.append(ch)
                end = index + 1
            else:
                flush()
                current_class = SEP
                if cls == BACKSLASH:
                    current.append(ch)
                    begin, end, current_class = index, index + 1, COMMAND
                elif cls == CJK:
                    spans.append((ch, index, index + 1, CJK))
                elif cls == LBRACE:
                    groups.append(len(spans))
                    spans.append((ch, index, index + 1, LBRACE))
                elif cls == RBRACE and groups:
                    # A group of at most one gram is that gram: `{2}` = `2`, `{}` = nothing.
                    opened = groups.pop()
                    if len(spans) - opened <= 2:
                        del spans[opened]
                    else:
                        spans.append((ch, index, index + 1, RBRACE))
    flush()
    return spans


def word_letters(gram: str, kind: int) -> int:
    """How much prose a gram carries: its letters for a word of two letters or more, 2 for a
    CJK character, 0 otherwise (numbers, single-letter variables, control words, braces)."""
    if kind == CJK:
        return 2
    return len(gram) if kind == LETTER and len(gram) >= 2 else 0


def grams(text: str) -> list[str]:
    """All steps: the text's grams, in order."""
    return [g for g, _, _ in gram_spans(text)]


def gram_string(text: str) -> str:
    """The grams joined by single spaces (the form hashed and shown in reports)."""
    return " ".join(grams(text))
