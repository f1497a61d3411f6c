"""The decontamination normalisation: what must match, what must not, and Chinese."""

from __future__ import annotations

import json

import pytest

from pipeline.decontaminate.normalize import (
    CJK,
    COMMAND,
    DIGIT,
    LETTER,
    gram_spans,
    gram_spans_kinds,
    gram_string,
    grams,
    normalize_latex,
    word_letters,
)
from tests.helpers import require_shared


@pytest.mark.parametrize(
    "variant",
    [r"\frac 1 2", r"\frac12", r"\dfrac{1}{2}", r"\tfrac12", r"$\frac{1}{2}$", r"\frac{ 1 }{ 2 }"],
)
def test_latex_fraction_spellings_match(variant: str) -> None:
    assert grams(variant) == grams(r"\frac{1}{2}") == ["\\frac", "1", "2"]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (r"\frac ab", r"\frac{a}{b}"),
        (r"\left( x + 1 \right)^{2}", r"(x+1)^2"),
        (r"\Big[ x \Big]", "[x]"),
        (r"\text{ dollars}", "dollars"),
        (r"\mathrm{d}x", "d x"),
        (r"\displaystyle\sum_{i=1}^{n} i", r"\sum_{i = 1}^n i"),
        (r"\dbinom{8}{4}", r"\binom84"),
        # Re-braced LaTeX: a group of one gram is that gram.
        ("x^{2} + y_{i}", "x^2 + y_i"),
        (r"\sqrt{2}", r"\sqrt2"),
        (r"\frac{1}2", r"\frac1{2}"),
        (r"{{x}}^{ {2} }", "x^2"),
        (r"\text{apples each}", "apples each"),
        (r"a \, b \; c \! d", "a b c d"),
        ("2x+3y", "2 x + 3 y"),
        ("Janet\u2019s ducks", "janet's   DUCKS"),
        ("x\u00b2", "x^2"),  # superscript two (NFKD)
        ("\uff21\uff22\uff23\uff11\uff12", "abc12"),  # full-width forms
        ("\ufb01nd", "find"),  # the fi ligature
        ("Stra\u00dfe", "strasse"),  # casefold
        ("caf\u00e9", "cafe\u0301"),  # precomposed vs combining accent
    ],
)
def test_formatting_differences_vanish(a: str, b: str) -> None:
    assert grams(a) == grams(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # TeX reads `\frac 12 3` as \frac{1}{2}3: a different number than \frac{12}{3}.
        (r"\frac{12}{3}", r"\frac 12 3"),
        (r"x \rightarrow y", "x y"),  # longer control words are kept
        ("1234", "12 34"),
        ("the cat", "thecat"),
        # Control words are grams of their own, not words: `\sin` is not `sin`.
        (r"\sin x", "sin x"),
        # A group of several grams keeps its braces: its extent is structure.
        (r"\sqrt{b^2-4ac}", r"\sqrt b^2-4ac"),
    ],
)
def test_real_differences_stay(a: str, b: str) -> None:
    assert grams(a) != grams(b)


def test_chinese_each_ideograph_is_a_gram() -> None:
    text = "妈咪买了3盒茶叶，一盒茶叶有6小包，一共买了多少小包茶叶？"
    g = grams(text)
    assert g[:6] == ["妈", "咪", "买", "了", "3", "盒"]
    assert len(g) == 26  # 24 ideographs + two digits; the full-width punctuation separates
    # Spaces between characters, full-width digits and Western punctuation change nothing.
    spaced = " ".join("妈咪买了") + "３盒茶叶, 一盒茶叶有６小包. 一共买了多少小包茶叶?"
    assert grams(spaced) == g


def test_cjk_mixed_with_latin_and_kana() -> None:
    assert grams("abc中文def") == ["abc", "中", "文", "def"]
    assert grams("x2の値") == ["x", "2", "の", "値"]
    # Dakuten is a combining mark after decomposition: が folds to か, consistently.
    assert grams("が") == grams("か\u3099")


def test_latex_rewrite_keeps_length_on_real_math_texts() -> None:
    path = require_shared("benchmarks", "math_hendrycks", "test.jsonl")
    with path.open(encoding="utf-8") as fh:
        records = [json.loads(line) for _, line in zip(range(1500), fh, strict=False)]
    for record in records:
        for text in (record["problem"], record["solution"]):
            assert len(normalize_latex(text)) == len(text)


def test_spans_point_into_the_original_text() -> None:
    text = r"Find $\dfrac{1}{2} + \left(x^{2}\right)$ — 妈咪 ＡＢ"
    spans = gram_spans(text)
    assert [g for g, _, _ in spans] == ["find", "\\frac", "1", "2", "x", "2", "妈", "咪", "ab"]
    for gram, begin, end in spans:
        # `\dfrac` is rewritten ` \frac` (same length): its span starts one character late.
        expected = "dfrac" if gram == "\\frac" else gram
        assert gram_string(text[begin:end]) == expected
    # Brace-less arguments are rewritten with one mark character for the command: the first
    # argument's offset may shift by one character, the grams are exact.
    assert [g for g, _, _ in gram_spans(r"\frac12")] == ["\\frac", "1", "2"]
    assert gram_spans(r"\frac12")[-1][1:] == (6, 7)


def test_empty_and_punctuation_only() -> None:
    assert grams("") == []
    assert grams(" \n\t.,;!?$$\\{}") == []


def test_control_words_and_braces_are_grams() -> None:
    numerator = ["{", "b", "\\pm", "\\sqrt", "{", "b", "2", "4", "ac", "}", "}"]
    denominator = ["{", "2", "a", "}"]
    assert grams(r"x = \frac{-b \pm \sqrt{b^2-4ac}}{2a}") == [
        "x",
        "\\frac",
        *numerator,
        *denominator,
    ]
    # `\{` is a literal brace (set notation), not a group; `\\` is a line break.
    assert grams(r"\{1, 2\} \\frac") == ["1", "2", "frac"]
    # Unbalanced braces: a lone `}` separates, an unclosed `{` stays a gram.
    assert grams("a } b { c d") == ["a", "b", "{", "c", "d"]


def test_word_letters() -> None:
    spans = gram_spans_kinds(r"Find $x$ in \sqrt{12} 中")
    assert [word_letters(g, k) for g, _, _, k in spans] == [4, 0, 2, 0, 0, 2]
    assert [k for _, _, _, k in spans] == [LETTER, LETTER, LETTER, COMMAND, DIGIT, CJK]
