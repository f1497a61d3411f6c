"""A compact hashed n-gram index of benchmark texts, and the page matcher (no Beam here).

DeepSeekMath section 2.1: a page is contaminated when it holds any n-gram (n = 10) of a benchmark
text, or the whole of a text of `min_short` to n-1 grams; a window counts as evidence only when
it carries prose (`is_evidence`: distinct words and their letters), so a formula or a numbered
list anyone writes is never a key. 64-bit keys in sorted arrays with a bucket table and a bit
filter; Numba kernels in ngram_index_kernel.py, identical pure-Python reference functions here.
Keys, evidence, storage and sizes: docs/stages/decontaminate.md.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np

from pipeline.decontaminate.benchmarks import BenchmarkItem
from pipeline.decontaminate.ngram_index_kernel import (
    _FNV_OFFSET,
    _FNV_PRIME,
    _LENGTH_MIX,
    _MASK,
    _POLY,
    _evidence_nb,
    _match_nb,
    _scan_nb,
    _window_keys_nb,
    numba,
)
from pipeline.decontaminate.normalize import (
    NORMALIZATION_VERSION,
    char_tables,
    gram_spans_kinds,
    normalize_latex,
    word_letters,
)

INDEX_FORMAT_VERSION = 1
HASH_VERSION = 1

# A page's full scan (only for pages already found contaminated) stops after this many
# (position, item) hits: enough to name every leaked item of any real page.
MAX_HITS_PER_PAGE = 100_000
# Longest matched span reported, in grams (a whole copied solution can be thousands).
MAX_SPAN_GRAMS = 200

# The evidence rule: a benchmark n-gram is indexed only when it holds at least this many
# distinct words (letter runs of 2+ letters, or CJK characters) with this many letters between
# them (a CJK character counts 2): `x = \frac{-b \pm \sqrt{b^2-4ac}}{2a}` or `1. 2. 3. ... 13.`
# hold none. A short text (min_short..n-1 grams, matched whole) needs SHORT_* of them. The page
# scan needs no test of its own: a page window with an indexed key has the same grams.
EVIDENCE_MIN_WORDS = 4
EVIDENCE_MIN_LETTERS = 16
SHORT_MIN_WORDS = 1
SHORT_MIN_LETTERS = 4
# A text of n grams or more without one window of evidence (a problem that is mostly formula:
# "Find $x$ if $2^{x+1} = 3^{x-1}$.") is matched whole, like a short text, up to this length.
WHOLE_MAX_GRAMS = 40
_EVIDENCE = {
    "whole_max_grams": WHOLE_MAX_GRAMS,
    "min_words": EVIDENCE_MIN_WORDS,
    "min_letters": EVIDENCE_MIN_LETTERS,
    "short_min_words": SHORT_MIN_WORDS,
    "short_min_letters": SHORT_MIN_LETTERS,
}


# --- reference (pure Python) hashing -------------------------------------------------------


def _fmix64_int(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _MASK
    h ^= h >> 33
    h = (h * 0xC4CEB93FE185EC53) & _MASK
    return h ^ (h >> 33)


def gram_hash_reference(gram: str) -> int:
    """64-bit hash of one gram: FNV-1a over its UTF-8 bytes, then fmix64."""
    h = _FNV_OFFSET
    for byte in gram.encode("utf-8"):
        h = ((h ^ byte) * _FNV_PRIME) & _MASK
    return _fmix64_int(h)


def sequence_key_reference(gram_hashes: Sequence[int]) -> int:
    """The key of a gram sequence (an n-gram or a whole short text)."""
    state = 0
    for h in gram_hashes:
        state = (state * _POLY + h) & _MASK
    return _fmix64_int(state ^ ((len(gram_hashes) * _LENGTH_MIX) & _MASK))


def _page_grams_reference(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    spans = gram_spans_kinds(text)
    hashes = np.array([gram_hash_reference(g) for g, _, _, _ in spans], dtype=np.uint64)
    begins = np.array([b for _, b, _, _ in spans], dtype=np.int64)
    ends = np.array([e for _, _, e, _ in spans], dtype=np.int64)
    words = np.array([word_letters(g, k) for g, _, _, k in spans], dtype=np.int32)
    return hashes, begins, ends, words


def _evidence_reference(
    hashes: np.ndarray, words: np.ndarray, length: int, min_words: int, min_letters: int
) -> np.ndarray:
    out = []
    pairs = list(zip(hashes.tolist(), words.tolist(), strict=True))
    for i in range(len(pairs) - length + 1):
        found = {h: w for h, w in pairs[i : i + length] if w}
        out.append(len(found) >= min_words and sum(found.values()) >= min_letters)
    return np.array(out, dtype=np.bool_)


def _window_keys_reference(hashes: np.ndarray, length: int) -> np.ndarray:
    values = [int(h) for h in hashes]
    keys = [sequence_key_reference(values[i : i + length]) for i in range(len(values) - length + 1)]
    return np.array(keys, dtype=np.uint64)


def _lookup_reference(keys: np.ndarray, offsets: np.ndarray, shift: int, key: int) -> range:
    b = key >> shift
    lo, hi = int(offsets[b]), int(offsets[b + 1])
    start = lo + int(np.searchsorted(keys[lo:hi], np.uint64(key), side="left"))
    stop = lo + int(np.searchsorted(keys[lo:hi], np.uint64(key), side="right"))
    return range(start, stop)


def _match_reference(
    hashes: np.ndarray,
    n: int,
    long_keys: np.ndarray,
    long_offsets: np.ndarray,
    long_shift: int,
    short_keys: np.ndarray,
    short_offsets: np.ndarray,
    short_shift: int,
    short_mask: np.ndarray,
    first_only: bool,
    cap: int,
) -> list[tuple[int, int, int, int]]:
    """(position, length, table 0=long 1=short, row) for every hit, in page order."""
    values = [int(h) for h in hashes]
    hits: list[tuple[int, int, int, int]] = []
    longest = max(n, len(short_mask) - 1)
    for i in range(len(values)):
        state = 0
        for length in range(1, min(longest, len(values) - i) + 1):
            state = (state * _POLY + values[i + length - 1]) & _MASK
            tables = []
            if length == n:
                tables.append((0, long_keys, long_offsets, long_shift))
            if length < len(short_mask) and short_mask[length]:
                tables.append((1, short_keys, short_offsets, short_shift))
            key = _fmix64_int(state ^ ((length * _LENGTH_MIX) & _MASK))
            for table, keys, offsets, shift in tables:
                if len(keys) == 0:
                    continue
                for row in _lookup_reference(keys, offsets, shift, key):
                    hits.append((i, length, table, row))
                    if first_only or len(hits) >= cap:
                        return hits
    return hits


def page_grams(
    text: str, use_numba: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(hashes, begins, ends, words) of a text's grams; begins/ends are code point offsets in
    `text`, words the prose letters of each gram (`normalize.word_letters`).

    The Numba path reads `normalize.char_tables()`; the reference path runs
    `normalize.gram_spans_kinds`; both give the same arrays.
    """
    if not (use_numba and numba is not None):
        return _page_grams_reference(text)
    tables = char_tables()
    prepared = normalize_latex(text)
    # UTF-32 gives one array element per code point (Python's own indexing); lone surrogates
    # (possible in decoded web text) pass through and fold to separators.
    cps = np.frombuffer(prepared.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    return _scan_nb(cps, tables.start, tables.length, tables.chars, tables.classes)


def window_keys(hashes: np.ndarray, length: int, use_numba: bool = True) -> np.ndarray:
    """Keys of every `length`-gram window of a gram-hash sequence, in order."""
    if use_numba and numba is not None:
        return _window_keys_nb(hashes, length)
    return _window_keys_reference(hashes, length)


def is_evidence(
    hashes: np.ndarray,
    words: np.ndarray,
    length: int,
    min_words: int = EVIDENCE_MIN_WORDS,
    min_letters: int = EVIDENCE_MIN_LETTERS,
    use_numba: bool = True,
) -> np.ndarray:
    """bool per `length`-gram window: does it carry prose (at least `min_words` distinct words
    holding `min_letters` letters between them)?"""
    if use_numba and numba is not None:
        return _evidence_nb(hashes, words, length, min_words, min_letters)
    return _evidence_reference(hashes, words, length, min_words, min_letters)


# --- the index ------------------------------------------------------------------------------


def _bucket_table(keys: np.ndarray) -> tuple[np.ndarray, int]:
    """(offsets, shift): rows of bucket b are offsets[b]:offsets[b+1], b = key >> shift.

    About two keys per bucket (2^bits >= len/2): a miss, the usual case, costs one or two
    comparisons; the table adds 4 bytes per bucket (~2 bytes per key).
    """
    bits = max(1, int(np.ceil(np.log2(max(2, len(keys) // 2)))))
    bits = min(bits, 32)
    shift = 64 - bits
    buckets = (keys >> np.uint64(shift)).astype(np.int64)
    offsets = np.searchsorted(buckets, np.arange((1 << bits) + 1), side="left")
    return offsets.astype(np.uint32 if len(keys) < 2**32 else np.int64), shift


def _bloom(keys: np.ndarray, bits_per_key: int) -> np.ndarray:
    """A one-hash bit filter on the low key bits (the buckets use the high bits).

    With 8 bits per key ~12% of the bits are set, so ~88% of the lookups of a clean page stop
    at one read of a table 1/8 the size of the keys (1 MiB for a million keys), which stays in
    cache where the bucket table and the keys would not.
    """
    nbits = 1 << max(12, int(np.ceil(np.log2(max(1, len(keys) * bits_per_key)))))
    words = np.zeros(nbits // 64, dtype=np.uint64)
    bits = keys & np.uint64(nbits - 1)
    np.bitwise_or.at(
        words, (bits >> np.uint64(6)).astype(np.int64), np.uint64(1) << (bits & np.uint64(63))
    )
    return words


@dataclass(frozen=True, slots=True)
class ItemMatch:
    """One benchmark item found in a page."""

    benchmark: str
    item_id: str
    rule: str
    """`ngram` (shares an n-gram with the item) or `exact_short` (contains a short text)."""
    windows: int
    """Page positions where one of the item's n-grams (or short texts) starts."""
    span: str
    """The longest stretch of the page covered by the item's matches: the page's own text
    from the first matched gram to the last (at most MAX_SPAN_GRAMS grams)."""


@dataclass(frozen=True, slots=True)
class PageMatch:
    """The verdict on a contaminated page: its items, the best match first."""

    items: tuple[ItemMatch, ...]

    @property
    def primary(self) -> ItemMatch:
        return self.items[0]


@dataclass(frozen=True)
class IndexStats:
    """How the benchmark texts were indexed."""

    items: int = 0
    texts: int = 0
    long_texts: int = 0
    """Texts of n grams or more (matched by n-gram)."""
    short_texts: int = 0
    """Texts of min_short..n-1 grams (matched exactly)."""
    ignored_texts: int = 0
    """Texts under min_short grams (never matched)."""
    whole_texts: int = 0
    """Texts of n to WHOLE_MAX_GRAMS grams without one n-gram of evidence (matched whole)."""
    no_evidence_texts: int = 0
    """Texts of min_short grams or more that carry no evidence (never matched)."""
    long_windows: int = 0
    """n-gram windows of the long texts; `long_keys` holds those with evidence."""
    per_benchmark_items: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class BenchmarkIndex:
    """Sorted 64-bit keys of benchmark n-grams and short texts, with the item of each key."""

    n: int
    min_short: int
    long_keys: np.ndarray
    long_items: np.ndarray
    long_offsets: np.ndarray
    long_shift: int
    short_keys: np.ndarray
    short_items: np.ndarray
    short_offsets: np.ndarray
    short_shift: int
    short_mask: np.ndarray
    """bool[max(n, WHOLE_MAX_GRAMS + 1)]: short_mask[L] is True when some text matched whole
    (a short text, or a long one without evidence) has L grams."""
    short_first: np.ndarray
    """uint64, sorted: the prefix state of every text matched whole: `h0 * P + h1` over its
    first two grams (`h0` for a one-gram text)."""
    long_bloom: np.ndarray
    short_bloom: np.ndarray
    short_first_bloom: np.ndarray
    benchmarks: tuple[str, ...]
    item_benchmark: np.ndarray
    """int32 per item: index into `benchmarks`."""
    item_ids: tuple[str, ...]
    stats: IndexStats

    # -- building --

    @classmethod
    def build(
        cls, items: Iterable[BenchmarkItem], n: int = 10, min_short: int = 3
    ) -> BenchmarkIndex:
        """Index every text of every item (n-grams of long texts; short texts whole)."""
        if n < 2 or not 1 <= min_short <= n:
            raise ValueError(f"need n >= 2 and 1 <= min_short <= n, got n={n}, min={min_short}")
        benchmarks: dict[str, int] = {}
        item_benchmark: list[int] = []
        item_ids: list[str] = []
        long_parts: list[np.ndarray] = []
        long_item_parts: list[np.ndarray] = []
        short_keys: list[int] = []
        short_items: list[int] = []
        short_first: set[int] = set()
        short_mask = np.zeros(max(n, WHOLE_MAX_GRAMS + 1), dtype=np.bool_)
        counts = {
            "texts": 0,
            "long": 0,
            "short": 0,
            "ignored": 0,
            "no_evidence": 0,
            "windows": 0,
            "whole": 0,
        }
        per_benchmark: dict[str, int] = {}
        for item in items:
            b = benchmarks.setdefault(item.benchmark, len(benchmarks))
            per_benchmark[item.benchmark] = per_benchmark.get(item.benchmark, 0) + 1
            row = len(item_ids)
            item_ids.append(item.item_id)
            item_benchmark.append(b)
            for _, text in item.texts:
                counts["texts"] += 1
                hashes, _, _, words = page_grams(text)
                if len(hashes) >= n:
                    keys = window_keys(hashes, n)
                    counts["windows"] += len(keys)
                    keys = keys[
                        is_evidence(hashes, words, n, EVIDENCE_MIN_WORDS, EVIDENCE_MIN_LETTERS)
                    ]
                    if len(keys):
                        long_parts.append(keys)
                        long_item_parts.append(np.full(len(keys), row, dtype=np.int32))
                        counts["long"] += 1
                        continue
                whole = len(hashes)
                if whole < min_short:
                    counts["ignored"] += 1
                elif (
                    whole >= max(n, WHOLE_MAX_GRAMS + 1)
                    or not is_evidence(hashes, words, whole, SHORT_MIN_WORDS, SHORT_MIN_LETTERS)[0]
                ):
                    counts["no_evidence"] += 1
                else:
                    short_keys.append(sequence_key_reference([int(h) for h in hashes]))
                    # The prefix state after two grams (one for a one-gram text): the kernel's
                    # filter on where a whole text can start.
                    prefix = int(hashes[0])
                    if whole >= 2:
                        prefix = (prefix * _POLY + int(hashes[1])) & _MASK
                    short_first.add(prefix)
                    short_items.append(row)
                    short_mask[whole] = True
                    counts["short" if whole < n else "whole"] += 1
        long_keys, long_items = _sorted_unique(long_parts, long_item_parts)
        s_keys, s_items = _sorted_unique(
            [np.array(short_keys, dtype=np.uint64)], [np.array(short_items, dtype=np.int32)]
        )
        long_offsets, long_shift = _bucket_table(long_keys)
        short_offsets, short_shift = _bucket_table(s_keys)
        first = np.array(sorted(short_first), dtype=np.uint64)
        return cls(
            n=n,
            min_short=min_short,
            long_keys=long_keys,
            long_items=long_items,
            long_offsets=long_offsets,
            long_shift=long_shift,
            short_keys=s_keys,
            short_items=s_items,
            short_offsets=short_offsets,
            short_shift=short_shift,
            short_mask=short_mask,
            long_bloom=_bloom(long_keys, 8),
            short_first=first,
            short_bloom=_bloom(s_keys, 16),
            short_first_bloom=_bloom(first, 16),
            benchmarks=tuple(benchmarks),
            item_benchmark=np.array(item_benchmark, dtype=np.int32),
            item_ids=tuple(item_ids),
            stats=IndexStats(
                items=len(item_ids),
                texts=counts["texts"],
                long_texts=counts["long"],
                short_texts=counts["short"],
                ignored_texts=counts["ignored"],
                whole_texts=counts["whole"],
                no_evidence_texts=counts["no_evidence"],
                long_windows=counts["windows"],
                per_benchmark_items=per_benchmark,
            ),
        )

    # -- matching --

    def _hits(self, hashes: np.ndarray, first_only: bool, use_numba: bool) -> np.ndarray:
        """int64 (hits, 4): position, length, table (0 long, 1 short), row in that table."""
        if use_numba and numba is not None:
            out = np.empty((1 if first_only else MAX_HITS_PER_PAGE, 4), dtype=np.int64)
            count = _match_nb(
                hashes,
                self.n,
                self.long_keys,
                self.long_offsets,
                np.uint64(self.long_shift),
                self.long_bloom,
                self.short_keys,
                self.short_offsets,
                np.uint64(self.short_shift),
                self.short_bloom,
                self.short_first_bloom,
                self.short_mask,
                int(np.flatnonzero(self.short_mask).max(initial=0)),
                first_only,
                out,
            )
            return out[:count]
        hits = _match_reference(
            hashes,
            self.n,
            self.long_keys,
            self.long_offsets,
            self.long_shift,
            self.short_keys,
            self.short_offsets,
            self.short_shift,
            self.short_mask,
            first_only,
            MAX_HITS_PER_PAGE,
        )
        return np.array(hits, dtype=np.int64).reshape(-1, 4)

    def contains_benchmark_text(self, text: str, use_numba: bool = True) -> bool:
        """True when the page has any benchmark n-gram or short text (stops at the first)."""
        hashes = page_grams(text, use_numba)[0]
        return len(self._hits(hashes, True, use_numba)) > 0

    def match(self, text: str, use_numba: bool = True) -> PageMatch | None:
        """None for a clean page; else every item found, the one with most windows first."""
        hashes, begins, ends, _ = page_grams(text, use_numba)
        if len(self._hits(hashes, True, use_numba)) == 0:
            return None
        hits = self._hits(hashes, False, use_numba)
        per_item: dict[int, list[tuple[int, int, int]]] = {}
        for pos, length, table, row in hits.tolist():
            item = int((self.long_items if table == 0 else self.short_items)[row])
            per_item.setdefault(item, []).append((pos, length, table))
        found: list[tuple[int, int, ItemMatch]] = []
        for item, item_hits in per_item.items():
            starts = sorted({(pos, length) for pos, length, _ in item_hits})
            span_start, span_end = _longest_covered(starts)
            span_end = min(span_end, span_start + MAX_SPAN_GRAMS)
            rule = "ngram" if any(t == 0 for _, _, t in item_hits) else "exact_short"
            match = ItemMatch(
                benchmark=self.benchmarks[int(self.item_benchmark[item])],
                item_id=self.item_ids[item],
                rule=rule,
                windows=len(starts),
                span=text[int(begins[span_start]) : int(ends[span_end - 1])],
            )
            found.append((-len(starts), starts[0][0], match))
        found.sort(key=lambda t: (t[0], t[1], t[2].benchmark, t[2].item_id))
        return PageMatch(tuple(m for _, _, m in found))

    # -- size and persistence --

    def memory_bytes(self) -> int:
        """Bytes held by the arrays (the item-id strings are counted by their UTF-8 length)."""
        arrays = (
            self.long_keys,
            self.long_items,
            self.long_offsets,
            self.short_keys,
            self.short_items,
            self.short_offsets,
            self.short_mask,
            self.long_bloom,
            self.short_bloom,
            self.short_first,
            self.short_first_bloom,
            self.item_benchmark,
        )
        return sum(a.nbytes for a in arrays) + sum(len(i.encode()) for i in self.item_ids)

    def meta(self) -> dict[str, Any]:
        return {
            "index_format_version": INDEX_FORMAT_VERSION,
            "hash_version": HASH_VERSION,
            "normalization_version": NORMALIZATION_VERSION,
            "n": self.n,
            "min_short": self.min_short,
            "evidence": _EVIDENCE,
            "long_shift": self.long_shift,
            "short_shift": self.short_shift,
            "benchmarks": list(self.benchmarks),
            "item_ids": list(self.item_ids),
            "stats": {
                "items": self.stats.items,
                "texts": self.stats.texts,
                "long_texts": self.stats.long_texts,
                "short_texts": self.stats.short_texts,
                "ignored_texts": self.stats.ignored_texts,
                "whole_texts": self.stats.whole_texts,
                "no_evidence_texts": self.stats.no_evidence_texts,
                "long_windows": self.stats.long_windows,
                "per_benchmark_items": self.stats.per_benchmark_items,
                "long_keys": len(self.long_keys),
                "short_keys": len(self.short_keys),
                "memory_bytes": self.memory_bytes(),
            },
        }

    def save(self, fh: BinaryIO) -> None:
        """Write as an uncompressed .npz (arrays + a JSON `meta` entry) to a binary file."""
        buffer = io.BytesIO()
        np.savez(
            buffer,
            long_keys=self.long_keys,
            long_items=self.long_items,
            long_offsets=self.long_offsets,
            short_keys=self.short_keys,
            short_items=self.short_items,
            short_offsets=self.short_offsets,
            short_mask=self.short_mask,
            short_first=self.short_first,
            item_benchmark=self.item_benchmark,
            meta=np.frombuffer(json.dumps(self.meta()).encode("utf-8"), dtype=np.uint8),
        )
        fh.write(buffer.getvalue())

    @classmethod
    def load(cls, fh: BinaryIO) -> BenchmarkIndex:
        """Read what `save` wrote; ValueError when the format or hash versions differ."""
        with np.load(io.BytesIO(fh.read()), allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
        expected = (INDEX_FORMAT_VERSION, HASH_VERSION, NORMALIZATION_VERSION, _EVIDENCE)
        got = (
            meta["index_format_version"],
            meta["hash_version"],
            meta["normalization_version"],
            meta.get("evidence"),
        )
        if got != expected:
            raise ValueError(f"index versions {got} != this code's {expected}: rebuild the index")
        s = meta["stats"]
        return cls(
            n=meta["n"],
            min_short=meta["min_short"],
            long_shift=meta["long_shift"],
            short_shift=meta["short_shift"],
            benchmarks=tuple(meta["benchmarks"]),
            item_ids=tuple(meta["item_ids"]),
            stats=IndexStats(
                items=s["items"],
                texts=s["texts"],
                long_texts=s["long_texts"],
                short_texts=s["short_texts"],
                ignored_texts=s["ignored_texts"],
                whole_texts=s["whole_texts"],
                no_evidence_texts=s["no_evidence_texts"],
                long_windows=s["long_windows"],
                per_benchmark_items=s["per_benchmark_items"],
            ),
            long_bloom=_bloom(arrays["long_keys"], 8),
            short_bloom=_bloom(arrays["short_keys"], 16),
            short_first_bloom=_bloom(arrays["short_first"], 16),
            **arrays,
        )


def _sorted_unique(
    key_parts: list[np.ndarray], item_parts: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Keys sorted, each (key, item) pair once."""
    if not key_parts:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int32)
    keys = np.concatenate(key_parts).astype(np.uint64, copy=False)
    items = np.concatenate(item_parts).astype(np.int32, copy=False)
    order = np.lexsort((items, keys))
    keys, items = keys[order], items[order]
    if len(keys):
        keep = np.ones(len(keys), dtype=np.bool_)
        keep[1:] = (keys[1:] != keys[:-1]) | (items[1:] != items[:-1])
        keys, items = keys[keep], items[keep]
    return np.ascontiguousarray(keys), np.ascontiguousarray(items)


def _longest_covered(windows: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """(start, end) of the longest union of overlapping gram windows (position, length)."""
    best = (0, 0)
    start, end = windows[0][0], windows[0][0] + windows[0][1]
    for pos, length in windows[1:]:
        if pos <= end:
            end = max(end, pos + length)
            continue
        if end - start > best[1] - best[0]:
            best = (start, end)
        start, end = pos, pos + length
    if end - start > best[1] - best[0]:
        best = (start, end)
    return best
