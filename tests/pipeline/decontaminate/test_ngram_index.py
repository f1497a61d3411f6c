"""The hashed n-gram index: the paper's rule, the short-text rule, Chinese, the Numba kernels
against the pure-Python reference, persistence and memory on the full benchmark list."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import numpy as np
import pytest

from pipeline.decontaminate.benchmarks import BenchmarkItem, load_benchmarks
from pipeline.decontaminate.ngram_index import (
    WHOLE_MAX_GRAMS,
    BenchmarkIndex,
    gram_hash_reference,
    is_evidence,
    page_grams,
    sequence_key_reference,
    window_keys,
)
from pipeline.decontaminate.normalize import gram_spans
from pipeline.extract.extractors import extract_page, get_extractor
from tests.helpers import require_shared

FILLER = (
    "The weather was pleasant and the market was busy with people buying bread and cheese. "
    "Afterwards we walked along the river and talked about the football match."
)


def item(item_id: str, *texts: str, benchmark: str = "toy") -> BenchmarkItem:
    return BenchmarkItem(benchmark, item_id, tuple((f"t{i}", t) for i, t in enumerate(texts)))


def jsonl(*parts: str) -> list[dict]:
    path = require_shared("benchmarks", *parts)
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def full_index(shared_data: Path) -> BenchmarkIndex:
    bench = shared_data / "benchmarks"
    return BenchmarkIndex.build(load_benchmarks(sorted(str(p) for p in bench.iterdir())))


@pytest.fixture(scope="module")
def some_pages(html_labels: list[dict[str, str]], shared_data: Path) -> list[str]:
    extractor = get_extractor("resiliparse")
    rows = [r for r in html_labels if r["label"] == "not-math"][::25]
    return [
        extract_page((shared_data / r["filename"]).read_text("utf-8", "replace"), extractor).text
        for r in rows
    ]


# --- the rule ---------------------------------------------------------------------------------

QUESTION = (
    "A bakery sells muffins for 3 dollars each and cookies for 2 dollars each. "
    "How much do 4 muffins and 5 cookies cost?"
)


def test_ten_grams_remove_nine_do_not() -> None:
    index = BenchmarkIndex.build([item("q1", QUESTION)])
    words = QUESTION.split()
    assert index.match(f"{FILLER} {' '.join(words[3:13])} {FILLER}") is not None  # 10 grams
    assert index.match(f"{FILLER} {' '.join(words[3:12])} {FILLER}") is None  # 9 grams
    match = index.match(f"{FILLER} {' '.join(words[3:13])} {FILLER}")
    assert match is not None
    assert (match.primary.item_id, match.primary.rule) == ("q1", "ngram")
    assert match.primary.span == " ".join(words[3:13])


def test_short_text_rule() -> None:
    index = BenchmarkIndex.build(
        [
            item("short4", r"Compute $\dbinom{31}{28}$."),  # 4 grams: exact match
            item("short3", "Add 45 and 30"),  # 4 grams
            item("tiny", "Solve x"),  # 2 grams: ignored
            item("nine", "one two three four five six seven eight nine"),  # n-1 grams
        ]
    )
    assert index.stats.short_texts == 3
    assert index.stats.ignored_texts == 1
    hit = index.match(f"{FILLER} Exercise: compute \\binom{{31}}{{28}} now. {FILLER}")
    assert hit is not None
    assert (hit.primary.item_id, hit.primary.rule) == ("short4", "exact_short")
    # Part of the short text, or the text with a gram inserted, is no match.
    assert index.match(f"{FILLER} compute \\binom{{31}} {FILLER}") is None
    assert index.match(f"{FILLER} compute the \\binom{{31}}{{28}} {FILLER}") is None
    assert index.match(f"{FILLER} compute \\binom{{31}}{{29}} {FILLER}") is None
    # Gram boundaries: `add 45 and 300` does not contain the text `add 45 and 30`.
    assert index.match("We add 45 and 300 apples.") is None
    assert index.match("We add 45 and 30 apples.") is not None
    # Texts under min_short grams never match.
    assert index.match("Solve x, then solve y.") is None
    # A text of exactly n-1 grams is matched exactly, not by n-grams.
    nine = index.match("count: One, two, three, four, five, six, seven, eight, nine!")
    assert nine is not None and nine.primary.rule == "exact_short"
    # The Numba kernel (with its first-gram filter) and the reference agree on every case.
    for page in (
        f"{FILLER} Exercise: compute \\binom{{31}}{{28}} now. {FILLER}",
        f"{FILLER} compute \\binom{{31}} {FILLER}",
        "We add 45 and 300 apples. We add 45 and 30 apples.",
        "count: One, two, three, four, five, six, seven, eight, nine!",
    ):
        assert index.match(page) == index.match(page, use_numba=False)


def test_rule_bounds_are_options() -> None:
    text = "alpha beta gamma delta epsilon zeta eta theta"  # 8 grams
    page = f"{FILLER} alpha beta gamma delta epsilon {FILLER}"  # its first 5 grams
    assert BenchmarkIndex.build([item("a", text)], n=10).match(page) is None
    n5 = BenchmarkIndex.build([item("a", text)], n=5)
    match = n5.match(page)
    assert match is not None and match.primary.rule == "ngram"
    # min_short above the text's length: the text is ignored.
    ignored = BenchmarkIndex.build([item("a", text)], n=10, min_short=9)
    assert ignored.stats.ignored_texts == 1
    assert ignored.match(text) is None
    with pytest.raises(ValueError):
        BenchmarkIndex.build([], n=1)


def test_every_item_on_a_page_is_named_most_windows_first() -> None:
    other = (
        "Tom has 7 red balloons and 9 blue balloons at the fair. "
        "He gives 3 balloons to his sister. How many balloons does he keep?"
    )
    index = BenchmarkIndex.build([item("bakery", QUESTION), item("balloons", other)])
    page = f"{FILLER}\n{other}\n{FILLER}\n{' '.join(QUESTION.split()[:12])}\n{FILLER}"
    match = index.match(page)
    assert match is not None
    assert [m.item_id for m in match.items] == ["balloons", "bakery"]
    assert match.items[0].windows > match.items[1].windows
    assert match.items[0].span == other.rstrip("?")  # from the first to the last matched gram


def test_shared_ngram_names_each_item() -> None:
    formula = (
        r"the roots of this quadratic equation follow from the usual formula "
        r"$x = \frac{-b \pm \sqrt{b^2 - 4ac}}{2a}$ as usual"
    )
    index = BenchmarkIndex.build(
        [item("p1", "First problem. " + formula), item("p2", "Second problem. " + formula)]
    )
    match = index.match(
        r"Recall: the roots of this quadratic equation follow from the usual formula "
        r"$x=\dfrac{-b\pm\sqrt{b^{2}-4ac}}{2a}$."
    )
    assert match is not None
    assert sorted(m.item_id for m in match.items) == ["p1", "p2"]
    # The formula alone is no evidence: anyone writes it (the evidence rule).
    assert index.match(r"Recall: $x=\dfrac{-b\pm\sqrt{b^{2}-4ac}}{2a}$.") is None


# --- the evidence rule -----------------------------------------------------------------------


def test_formulas_and_numbered_lists_are_no_evidence() -> None:
    solution = (
        r"By the quadratic formula, $x = \frac{-b \pm \sqrt{b^2-4ac}}{2a}$, so "
        r"the roots are $x = 1$ and $x = 2$. Counting the cases 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, "
        r"11, 12, 13 gives $\boxed{13}$ possibilities for the committee."
    )
    index = BenchmarkIndex.build([item("s", solution)])
    # A formula anyone writes, or a numbered list, is kept ...
    assert index.match(r"The Quadratic Formula: \[x = \frac{-b \pm \sqrt{b^2-4ac}}{2a}\]") is None
    assert index.match(FILLER + "\n" + "\n".join(f"{i}." for i in range(1, 14))) is None
    # ... a real stretch of the solution is not.
    match = index.match(
        f"{FILLER} the cases 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13 gives "
        f"$\\boxed{{13}}$ possibilities for the committee. {FILLER}"
    )
    assert match is not None and match.primary.rule == "ngram"


def test_a_formula_problem_is_matched_whole() -> None:
    problem = r"Find $x$ if $\frac{2^{x+1}}{3} = \sqrt{4^{x-1}} + 7$."
    index = BenchmarkIndex.build([item("f", problem)])
    assert 10 <= len(gram_spans(problem)) <= WHOLE_MAX_GRAMS
    assert index.stats.whole_texts == 1 and len(index.long_keys) == 0
    match = index.match(
        f"{FILLER} Homework: FIND $x$ IF $\\dfrac{{2^{{x+1}}}}3=\\sqrt{{4^{{x-1}}}}+7$! "
    )
    assert match is not None and match.primary.rule == "exact_short"
    assert index.match(r"so $\frac{2^{x+1}}{3} = \sqrt{4^{x-1}} + 7$ holds") is None


def test_evidence_kernel_equals_the_reference(some_pages: list[str]) -> None:
    for text in [*some_pages[:6], r"We have $x = \frac{1}{2}$ and so on, 1, 2, 3, 4, 5, 6."]:
        hashes, _, _, words = page_grams(text)
        for length, w, letters in ((10, 4, 16), (5, 2, 6), (10, 1, 4)):
            np.testing.assert_array_equal(
                is_evidence(hashes, words, length, w, letters),
                is_evidence(hashes, words, length, w, letters, use_numba=False),
            )


# --- real benchmark items ---------------------------------------------------------------------


def test_real_items_planted_in_filler_are_found(full_index: BenchmarkIndex) -> None:
    gsm = jsonl("gsm8k", "test.jsonl")[11]
    math = jsonl("math_hendrycks", "test.jsonl")[42]
    cmath = jsonl("cmath", "test.jsonl")[500]
    cases = {
        ("gsm8k", "11"): gsm["question"].upper().replace(" ", "  \n"),
        ("math_hendrycks/test", "42"): math["solution"],
        ("cmath", "500"): " ".join(cmath["question"]),
    }
    for (benchmark, item_id), planted in cases.items():
        match = full_index.match(f"{FILLER}\n{planted}\n{FILLER}")
        assert match is not None, item_id
        assert (benchmark, item_id) in {(m.benchmark, m.item_id) for m in match.items}


def test_chinese_pages(full_index: BenchmarkIndex) -> None:
    questions = [r["question"] for r in jsonl("cmath", "test.jsonl")]
    question = questions[100]
    assert len(gram_spans(question)) >= 10
    # Full-width digits, spaces between characters, Western punctuation: still found.
    variant = " ".join(question).translate(
        str.maketrans("0123456789，？", "０１２３４５６７８９,?")
    )
    page = f"今天我们在公园里散步，天气很好。{variant}大家都很开心。"
    match = full_index.match(page)
    assert match is not None
    assert ("cmath", "100") in {(m.benchmark, m.item_id) for m in match.items}
    # Nine consecutive characters of a question are not enough for the 10-gram rule (CMATH
    # questions are all 10+ grams, so none is matched as a short text).
    assert all(len(gram_spans(q)) >= 10 for q in questions)
    # A plain Chinese page without benchmark text is kept.
    clean = "今天我们在公园里散步，天气很好，大家都很开心。晚上我们一起吃饭，聊了很多有趣的事情。"
    assert full_index.match(clean) is None


def test_nine_cmath_characters_are_not_enough() -> None:
    question = jsonl("cmath", "test.jsonl")[0]["question"]
    index = BenchmarkIndex.build([item("0", question)])
    chars = [g for g, _, _ in gram_spans(question)]
    assert index.match("今天" + "".join(chars[:9]) + "很好") is None
    assert index.match("今天" + "".join(chars[:10]) + "很好") is not None


# --- kernels against the reference ------------------------------------------------------------


def test_numba_kernels_equal_the_reference(full_index: BenchmarkIndex, some_pages: list[str]):
    rng = random.Random(5)
    texts = [
        t
        for it in load_benchmarks([str(require_shared("benchmarks", "cmath"))])[:50]
        for _, t in it.texts
    ]
    texts += [r["solution"] for r in rng.sample(jsonl("math_hendrycks", "test.jsonl"), 40)]
    texts += [*some_pages, "", "   ", "x", "a\ud800b"]  # the last has a lone surrogate
    for text in texts:
        fast = page_grams(text)
        slow = page_grams(text, use_numba=False)
        for a, b in zip(fast, slow, strict=True):
            np.testing.assert_array_equal(a, b)
        assert [gram_hash_reference(g) for g, _, _ in gram_spans(text)] == fast[0].tolist()
        keys = window_keys(fast[0], 10)
        np.testing.assert_array_equal(keys, window_keys(fast[0], 10, use_numba=False))
        if len(fast[0]) >= 10:
            assert int(keys[0]) == sequence_key_reference([int(h) for h in fast[0][:10]])
    gsm = jsonl("gsm8k", "test.jsonl")
    for page in some_pages[:8]:
        planted = (
            page[: len(page) // 2] + gsm[len(page) % 1319]["question"] + page[len(page) // 2 :]
        )
        assert full_index.match(planted) == full_index.match(planted, use_numba=False)


# --- persistence and size ---------------------------------------------------------------------


def test_save_and_load_round_trip(full_index: BenchmarkIndex, some_pages: list[str]) -> None:
    buffer = io.BytesIO()
    full_index.save(buffer)
    buffer.seek(0)
    loaded = BenchmarkIndex.load(buffer)
    assert loaded.meta() == full_index.meta()
    np.testing.assert_array_equal(loaded.long_keys, full_index.long_keys)
    gsm = jsonl("gsm8k", "test.jsonl")
    for page in (some_pages[0] + gsm[3]["answer"], some_pages[1] + gsm[5]["question"]):
        match = loaded.match(page)
        assert match is not None
        assert match == full_index.match(page)


def test_an_index_from_other_code_versions_is_refused(full_index: BenchmarkIndex) -> None:
    small = BenchmarkIndex.build([item("a", QUESTION)])
    buffer = io.BytesIO()
    small.save(buffer)
    data = dict(np.load(io.BytesIO(buffer.getvalue())))
    meta = json.loads(data["meta"].tobytes())
    meta["normalization_version"] = 0
    data["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    tampered = io.BytesIO()
    np.savez(tampered, **data)
    tampered.seek(0)
    with pytest.raises(ValueError, match="rebuild the index"):
        BenchmarkIndex.load(tampered)


def test_full_benchmark_list_index_is_small(full_index: BenchmarkIndex, shared_data: Path) -> None:
    stats = full_index.meta()["stats"]
    # one item per JSONL row of every benchmark file
    rows = sum(
        sum(1 for line in path.open(encoding="utf-8") if line.strip())
        for path in (shared_data / "benchmarks").rglob("*.jsonl")
    )
    assert stats["items"] == rows
    assert stats["long_windows"] > 1_000_000
    # Most windows carry evidence; the rest (formulas, lists of numbers) are no keys.
    assert 0.5 * stats["long_windows"] < stats["long_keys"] < stats["long_windows"]
    # ~19 MB: 8 bytes per key + 4 per item reference + the bucket table and bit filter.
    assert full_index.memory_bytes() < 32 * 1024 * 1024
