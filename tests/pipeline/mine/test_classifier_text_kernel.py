"""The Numba tokeniser writes exactly the line the regular-expression specification gives."""

from __future__ import annotations

import random

from pipeline.mine.classifier_text import classifier_text, classifier_tokens
from pipeline.mine.classifier_text_kernel import DIGIT, LETTER, SPACE, code_point_classes


def spec(text: str, max_chars: int = 4000) -> str:
    return " ".join(classifier_tokens(text, max_chars))


def test_edge_cases_match_the_specification() -> None:
    cases = [
        "",
        "   \n\t ",
        "\\",
        "\\\\frac",
        "\\Frac12 \\alphaβ \\1 a\\b",
        "x_1 __init__ a__b",
        "2024 7 ² ²³ ① 12abc abc12 ٣٤ 𝟙𝟚",  # digit runs, superscripts, Arabic-Indic, math digits
        "İstanbul ß ﬁ Ｆｕｌｌ",  # lower-casing and NFKC that change lengths
        "数学题 x^{2}—“quoted” … ∑_{i=1}^n",
        "\x00\x0b\x0c\x1c\x85\u2028 spaces",
    ]
    for text in cases:
        assert classifier_text(text) == spec(text), repr(text)
    assert classifier_text("abcdef ghi", max_chars=4) == spec("abcdef ghi", 4) == "abcd"


def test_random_unicode_matches_the_specification() -> None:
    rng = random.Random(5)
    ranges = [(0x20, 0x250), (0x370, 0x3000), (0xFF00, 0xFFEF), (0x1D400, 0x1D7FF)]
    ranges.append((0x2000, 0x2BFF))
    alphabet = [chr(c) for lo, hi in ranges for c in range(lo, hi)] + list("\\ab  \n\t12_$") * 40
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        assert classifier_text(text) == spec(text), repr(text)


def test_every_real_page_matches_the_specification(
    real_page_texts: list[tuple[dict[str, str], str]],
) -> None:
    for row, text in real_page_texts:
        assert classifier_text(text) == spec(text), row["filename"]


def test_class_table_agrees_with_python() -> None:
    classes = code_point_classes()
    assert classes[ord("a")] & 3 == LETTER and classes[ord("é")] & 3 == LETTER
    assert classes[ord("7")] & 3 == DIGIT and classes[ord("٣")] & 3 == DIGIT
    assert classes[ord(" ")] & 3 == SPACE and classes[0x2028] & 3 == SPACE
    assert classes[ord("_")] & 3 == 0 and classes[ord("$")] & 3 == 0


def test_a_lone_surrogate_becomes_the_replacement_character() -> None:
    # JSON seeds can carry "\ud800": it must not stop training (a line fastText cannot read).
    assert classifier_text("abc \ud800 déf") == spec("abc \ud800 déf") == "abc \ufffd déf"
