"""Normalisation, shingling and shingle hashing (pipeline/dedup/shingles.py), on real page texts."""

from __future__ import annotations

import gzip
import unicodedata

import numpy as np
import pytest
from datasketch.hashfunc import sha1_hash32, sha1_hash64

from pipeline.dedup import shingles as sh
from pipeline.dedup.shingles import hash_shingles, normalize, shingle_batch, shingles
from tests.helpers import require_shared

BACKENDS = [
    "numpy",
    pytest.param("numba", marks=pytest.mark.skipif(sh.numba is None, reason="no numba")),
]

# Strings where per-character mapping and whole-text NFKC + lower could differ, and others that
# exercise the tables' edges.
TRICKY = [
    "e\u0301te\u0301 ÉTÉ",  # decomposed accents compose under NFKC
    "ΟΔΟΣ Σ ϹΑΣ",  # capital sigma lower-cases by context (final sigma)
    "\u1100\u1161\u11a8 한국",  # conjoining Hangul jamo compose into a syllable
    "ﬁ ½ ㎢ x² 𝑥 ＡＢＣ …",  # compatibility mappings to several code points
    "İstanbul ß ẞ",  # lower() to two code points
    "\ud800 lone surrogate",
    "",
    "  \t\n ",
    "\u0301start with a combining mark",
    "কো কো",  # Bengali vowel sign: a word character (mark)
    "snake_case stays one word",
]


def reference_normalize(text: str) -> str:
    """The documented normalisation, written plainly: NFKC, lower, words of word characters."""
    words, current = [], []
    for ch in unicodedata.normalize("NFKC", text).lower():
        if ch.isalnum() or ch == "_" or unicodedata.category(ch)[0] == "M":
            current.append(ch)
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    return " ".join(words)


@pytest.fixture(scope="module")
def page_texts() -> list[str]:
    """Main-content text of every real page (resiliparse), as the pool extracts it."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    texts = []
    for path in sorted(require_shared("html").rglob("*")):
        if path.name.endswith(".html.gz"):
            body = gzip.decompress(path.read_bytes())
        elif path.suffix == ".html":
            body = path.read_bytes()
        else:
            continue
        texts.append(
            extract_plain_text(bytes_to_str(body, detect_encoding(body)), main_content=True)
        )
    assert len(texts) > 500
    return texts


def test_normalize_examples():
    assert (
        normalize("  The Cauchy–Schwarz\tinequality: |<u,v>|² ≤ <u,u>·<v,v>.")
        == "the cauchy schwarz inequality u v 2 u u v v"
    )
    assert normalize(r"$\frac{a}{b}$ ﬁne 𝑥ᵢ ＡＢＣ") == "frac a b fine xi abc"
    assert normalize("Hello,   WORLD!!\n\nHello world") == "hello world hello world"
    assert normalize("") == normalize(" ... ") == ""


@pytest.mark.parametrize("backend", BACKENDS)
def test_normalize_equals_whole_text_functions(page_texts, backend):
    texts = TRICKY + page_texts[::3] + TRICKY
    batch = shingle_batch(texts, "word", 5, backend)
    for doc, text in enumerate(texts):
        assert batch.canonical(doc) == reference_normalize(text), text[:80]


def test_word_shingles():
    assert shingles("a b c d e f", "word", 5) == ["a b c d e", "b c d e f"]
    # Fewer words than n: the whole text is the one shingle; no words: no shingle.
    assert shingles("Only three words.", "word", 5) == ["only three words"]
    assert shingles(" ;; ", "word", 5) == []
    assert shingles("x y z", "word", 1) == ["x", "y", "z"]


def test_char_shingles():
    assert shingles("Ab, cd!", "char", 4) == ["ab c", "b cd"]
    assert shingles("ab", "char", 4) == ["ab"]
    assert shingles("", "char", 4) == []


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("kind", "n"), [("word", 5), ("word", 2), ("char", 5), ("char", 24)])
def test_batch_shingles_stay_inside_their_document(backend, kind, n):
    texts = ["one two three", "", "four five six seven eight nine", "ten", "  "]
    batch = shingle_batch(texts, kind, n, backend)
    assert batch.num_docs == len(texts)
    for doc, text in enumerate(texts):
        assert batch.shingle_strings(doc) == shingles(text, kind, n)
        alone = shingle_batch([text], kind, n, backend)
        assert alone.shingle_strings(0) == batch.shingle_strings(doc)


@pytest.mark.skipif(sh.numba is None, reason="no numba")
@pytest.mark.parametrize(("kind", "n"), [("word", 5), ("char", 9)])
def test_numba_and_numpy_agree_on_real_pages(page_texts, kind, n):
    texts = TRICKY + page_texts[:100]
    a = shingle_batch(texts, kind, n, "numpy")
    b = shingle_batch(texts, kind, n, "numba")
    assert np.array_equal(a.doc_offsets, b.doc_offsets)
    for doc in range(len(texts)):
        assert a.shingle_strings(doc) == b.shingle_strings(doc)
    for bits in (32, 64):
        assert np.array_equal(
            hash_shingles(a, "fast", bits, "numpy"), hash_shingles(b, "fast", bits, "numba")
        )


@pytest.mark.parametrize("backend", BACKENDS)
def test_fast_hash_does_not_depend_on_the_batch(page_texts, backend):
    one, two = page_texts[10], page_texts[20]

    def hashes(texts, doc):
        batch = shingle_batch(texts, "word", 5, backend)
        rows = slice(batch.doc_offsets[doc], batch.doc_offsets[doc + 1])
        return hash_shingles(batch, "fast", 64, backend)[rows]

    alone = hashes([one], 0)
    assert np.array_equal(alone, hashes([two, one], 1))
    assert np.array_equal(alone, hashes(["", two, "x", one, two], 3))


def test_sha1_hash_is_datasketchs(page_texts):
    batch = shingle_batch(page_texts[:5] + TRICKY, "word", 5)
    strings = [s for doc in range(batch.num_docs) for s in batch.shingle_strings(doc)]
    data = [s.encode("utf-8", "surrogatepass") for s in strings]
    assert hash_shingles(batch, "sha1", 32).tolist() == [sha1_hash32(d) for d in data]
    assert hash_shingles(batch, "sha1", 64).tolist() == [sha1_hash64(d) for d in data]


def test_fast_hash_collides_like_sha1(page_texts):
    """On every distinct shingle of the real pages: no 64-bit collision, 32-bit collisions as
    many as a random function gives (and as sha1_hash32 gives), and uniform values."""
    batch = shingle_batch(page_texts, "word", 5)
    strings = [s for doc in range(batch.num_docs) for s in batch.shingle_strings(doc)]
    first_seen: dict[str, int] = {}
    for row, string in enumerate(strings):
        first_seen.setdefault(string, row)
    first = np.fromiter(first_seen.values(), dtype=np.int64)
    n = len(first)
    assert n > 300_000
    fast64 = hash_shingles(batch, "fast", 64)[first]
    assert len(np.unique(fast64)) == n
    expected = n * (n - 1) / 2 / 2**32  # birthday: expected colliding pairs
    for kind in ("fast", "sha1"):
        values = hash_shingles(batch, kind, 32)[first]
        collisions = n - len(np.unique(values))
        assert abs(collisions - expected) < 6 * np.sqrt(expected) + 1, (kind, collisions)
        counts = np.bincount(values >> np.uint32(26), minlength=64)  # top 6 bits
        chi2 = float(((counts - n / 64) ** 2 / (n / 64)).sum())
        assert chi2 < 130, (kind, chi2)  # 63 degrees of freedom: p < 1e-6 above 130


# --- the per-code-point tables: built in chunks, cached between processes -------------------


def test_char_tables_cache_round_trips_and_a_damaged_file_is_rebuilt(tmp_path, monkeypatch):
    import numpy as np

    from pipeline.dedup import shingles

    path = tmp_path / "__pycache__" / "tables.npz"
    monkeypatch.setattr(shingles, "char_tables_cache_path", lambda: path)
    built = shingles.char_tables.__wrapped__()  # no file yet: built, then saved
    assert path.is_file()
    loaded = shingles._load_cached_tables(path)
    assert loaded is not None
    for name in shingles._TABLE_FIELDS:
        assert np.array_equal(getattr(loaded, name), getattr(built, name)), name
        assert getattr(loaded, name).dtype == getattr(built, name).dtype, name
    # The in-process tables (whatever this process loaded) are the same tables.
    for name in shingles._TABLE_FIELDS:
        assert np.array_equal(getattr(shingles.char_tables(), name), getattr(built, name)), name

    path.write_bytes(b"half a file from a killed process")
    assert shingles._load_cached_tables(path) is None
    again = shingles.char_tables.__wrapped__()
    assert np.array_equal(again.packed, built.packed)
    assert shingles._load_cached_tables(path) is not None  # replaced by a whole file
    assert not list(path.parent.glob("*.tmp"))


def test_char_tables_build_in_bounded_memory():
    # Mapping all 1.1M code points in one normalize call held ~270 MB of one-character strings
    # above the process's steady RSS, in every worker; chunks of 65,536 keep the build small.
    import tracemalloc

    from pipeline.dedup import shingles

    tracemalloc.start()
    try:
        shingles._build_char_tables()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    tables_bytes = 17 * 2**20  # the seven arrays themselves, 0x110000 entries each
    assert peak < tables_bytes + 40 * 2**20, f"build peaked at {peak / 2**20:.0f} MiB"
