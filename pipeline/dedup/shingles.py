"""Text normalisation and shingling for near-duplicate detection, over a batch of documents.

`normalize`: NFKC, lower-case, every non-word character a separator, one space between words.
Shingles are word (default 5) or character n-grams, hashed by `sha1` (datasketch's) or the
`fast` polynomial hash; the Numba and NumPy implementations agree. Details: docs/stages/dedup.md.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import tempfile
import threading
import unicodedata
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from pipeline.dedup.shingles_kernel import (
    _FMIX64_M1,
    _FMIX64_M2,
    _FMIX64_SHIFT,
    _KERNELS,
    _LENGTH_MIX,
    _ONE,
    _PACKED_CONTEXT,
    _PACKED_MULTI,
    _PACKED_WORD,
    _ZERO32,
    numba,
)

ShingleKind = Literal["word", "char"]
HashKind = Literal["fast", "sha1"]
Backend = Literal["numba", "numpy"]
SHINGLE_KINDS: tuple[str, ...] = ("word", "char")
HASH_KINDS: tuple[str, ...] = ("fast", "sha1")
BACKENDS: tuple[str, ...] = ("numba", "numpy")

_SPACE = 32
# Separates documents in the joined batch: a non-word character that maps to itself.
_DOC_SEPARATOR = "\n"

# Polynomial base of the fast hash: odd, so it has an inverse modulo 2^64, which is what lets
# one prefix sum serve every span.
_POLY_BASE = 0x9E3779B97F4A7C15
_POLY_BASE_INV = pow(_POLY_BASE, -1, 1 << 64)
_FMIX32 = (np.uint32(16), np.uint32(0x85EBCA6B), np.uint32(13), np.uint32(0xC2B2AE35))


def default_backend() -> Backend:
    return "numba" if numba is not None else "numpy"


def resolve_backend(backend: Backend | None) -> Backend:
    if backend is None:
        return default_backend()
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "numba" and numba is None:
        raise RuntimeError("backend='numba' asked for, but numba is not installed")
    return backend


# --- per-code-point tables ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CharTables:
    """Per-code-point tables (0..0x10FFFF) that normalise a text with array lookups."""

    word: np.ndarray
    """bool: a word character (letter, digit, "_", combining mark)."""
    map_len: np.ndarray
    """uint8: length of NFKC(c).lower() in code points (1 for nearly every c)."""
    map_first: np.ndarray
    """uint32: first code point of NFKC(c).lower()."""
    map_start: np.ndarray
    """int32: where NFKC(c).lower() starts in `pool` (read when map_len > 1)."""
    pool: np.ndarray
    """uint32: the mappings of the code points that map to more than one code point."""
    context: np.ndarray
    """bool: mapping c on its own may differ from whole-text NFKC + lower for a text that
    contains c (c starts with a combining mark or composes with its predecessor, or NFKC(c)
    holds a capital sigma, which `lower` maps by context)."""
    packed: np.ndarray
    """uint32: the above in one lookup for the Numba loops: bits 0-20 the mapped code point
    (when it is one), bit 29 context, bit 30 maps to several, bit 31 the mapped code point is
    a word character."""


def _composition_seconds() -> set[str]:
    """Characters that canonical composition can join to a preceding starter."""
    seconds = {chr(cp) for cp in range(0x1161, 0x1176)}  # Hangul vowel jamo (L + V -> LV)
    seconds.update(chr(cp) for cp in range(0x11A8, 0x11C3))  # Hangul final jamo (LV + T)
    for cp in range(sys.maxunicode + 1):
        decomposition = unicodedata.decomposition(chr(cp))
        if decomposition and not decomposition.startswith("<"):
            parts = decomposition.split()
            if len(parts) == 2:
                seconds.add(chr(int(parts[1], 16)))
    return seconds


# Code points per normalize call while building the tables: bounds the build's temporaries
# (lists of one-character strings, ~60 bytes each) to ~15 MB; the whole range at once peaked at
# ~270 MB above the process's steady RSS.
_TABLE_CHUNK = 1 << 16
# Bump when the tables' layout or the way they are built changes (invalidates cached files).
CHAR_TABLES_VERSION = 1
_TABLE_FIELDS = ("word", "map_len", "map_first", "map_start", "pool", "context", "packed")


def _build_char_tables() -> CharTables:
    """The tables from Python's Unicode database, in chunks of code points (about 1.5 s)."""
    size = sys.maxunicode + 1
    seconds = _composition_seconds()
    word = np.zeros(size, dtype=bool)
    map_len = np.ones(size, dtype=np.uint8)
    map_first = np.arange(size, dtype=np.uint32)
    map_start = np.zeros(size, dtype=np.int32)
    context = np.zeros(size, dtype=bool)
    pool: list[int] = []
    for low in range(0, size, _TABLE_CHUNK):
        # NFKC, NFKD and lower() act on "\n"-separated characters independently (a newline is
        # a starter that nothing composes with), so one call each maps a chunk at once.
        # Surrogates and "\n" itself map to themselves.
        cps = [
            cp
            for cp in range(low, min(size, low + _TABLE_CHUNK))
            if cp != 10 and not 0xD800 <= cp <= 0xDFFF
        ]
        if not cps:
            continue
        joined = "\n".join(map(chr, cps))
        compatible = unicodedata.normalize("NFKC", joined)
        parts = compatible.split("\n")
        mapped = compatible.lower().split("\n")
        decomposed = unicodedata.normalize("NFKD", joined).split("\n")
        for cp, part, target, nfkd in zip(cps, parts, mapped, decomposed, strict=True):
            ch = chr(cp)
            if ch.isalnum() or ch == "_" or unicodedata.category(ch)[0] == "M":
                word[cp] = True
            if target != ch:
                map_first[cp] = ord(target[0])
                if len(target) > 1:
                    map_len[cp] = len(target)
                    map_start[cp] = len(pool)
                    pool.extend(map(ord, target))
            head = nfkd[0]
            if unicodedata.combining(head) or head in seconds or "\u03a3" in part:
                context[cp] = True
    packed = np.where(map_len > 1, _PACKED_MULTI, map_first).astype(np.uint32)
    packed |= np.where((map_len == 1) & word[map_first], _PACKED_WORD, _ZERO32)
    packed |= np.where(context, _PACKED_CONTEXT, _ZERO32)
    pool_array = np.array(pool, dtype=np.uint32)
    return CharTables(word, map_len, map_first, map_start, pool_array, context, packed)


def char_tables_cache_path() -> Path:
    """Where the built tables are kept between processes: beside the module, as Numba keeps
    its compiled kernels (`__pycache__`), named by everything that decides their content."""
    name = (
        f"char_tables-v{CHAR_TABLES_VERSION}-unicode{unicodedata.unidata_version}"
        f"-max{sys.maxunicode:x}.npz"
    )
    return Path(__file__).resolve().parent / "__pycache__" / name


def _load_cached_tables(path: Path) -> CharTables | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in _TABLE_FIELDS}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None  # absent, or half written by a process that died: rebuild
    size = sys.maxunicode + 1
    if any(len(arrays[name]) != size for name in _TABLE_FIELDS if name != "pool"):
        return None
    return CharTables(**arrays)


def _save_tables(tables: CharTables, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **{name: getattr(tables, name) for name in _TABLE_FIELDS})
        os.replace(tmp, path)  # atomic: a reader sees the old file, none, or the whole new one
    except OSError:
        pass  # a read-only install: every process builds its own tables, nothing else changes


@functools.cache
def char_tables() -> CharTables:
    """The tables, once per process: read from the cache file (a few ms) or built from Python's
    Unicode database (about 1.5 s) and cached for the next process.

    Mapping each code point c to NFKC(c).lower() on its own equals NFKC then `lower` of the
    whole text unless the text holds a `context` character: canonical reordering and
    composition only act across character boundaries through combining marks or composing
    characters, and `lower` is context-free except for the final sigma.
    """
    path = char_tables_cache_path()
    tables = _load_cached_tables(path)
    if tables is None:
        tables = _build_char_tables()
        _save_tables(tables, path)
    return tables


# --- the batch ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShingleBatch:
    """The shingles of a batch of documents, as spans into one array of canonical text.

    Document d's canonical text is `codepoints[text_starts[d]:text_ends[d]]`; its shingles are
    rows `doc_offsets[d]:doc_offsets[d + 1]` of `starts`/`ends`, each a span of `codepoints`.
    """

    codepoints: np.ndarray
    """uint32: the canonical texts of the batch, one code point per character."""
    text_starts: np.ndarray
    """int64 per document: where its canonical text starts in `codepoints`."""
    text_ends: np.ndarray
    """int64 per document: where its canonical text ends (exclusive)."""
    starts: np.ndarray
    """int64 per shingle: start of its span in `codepoints`."""
    ends: np.ndarray
    """int64 per shingle: end of its span (exclusive)."""
    doc_offsets: np.ndarray
    """int64, one more than the documents: shingles of document d are rows
    doc_offsets[d]:doc_offsets[d+1]."""

    @property
    def num_docs(self) -> int:
        return len(self.text_starts)

    @property
    def shingle_counts(self) -> np.ndarray:
        """Shingles per document (0 for a document without words)."""
        return np.diff(self.doc_offsets)

    def canonical(self, doc: int) -> str:
        """Document `doc`'s canonical (normalised) text."""
        span = self.codepoints[self.text_starts[doc] : self.text_ends[doc]]
        return span.tobytes().decode("utf-32-le", "surrogatepass")

    def shingle_strings(self, doc: int) -> list[str]:
        """Document `doc`'s shingles as strings, in text order (repeats kept)."""
        text = self.canonical(doc)
        base = int(self.text_starts[doc])
        rows = slice(self.doc_offsets[doc], self.doc_offsets[doc + 1])
        return [
            text[s - base : e - base]
            for s, e in zip(self.starts[rows].tolist(), self.ends[rows].tolist(), strict=True)
        ]


@dataclass(frozen=True, slots=True)
class _Words:
    """Canonical text of a batch and its words (the stage before shingling)."""

    canon: np.ndarray  # uint32 canonical texts
    text_starts: np.ndarray  # int64 per document
    text_ends: np.ndarray  # int64 per document
    word_starts: np.ndarray  # int64 per word, into canon
    word_lens: np.ndarray  # int64 per word
    word_docs: np.ndarray  # int64 per word


def _exclusive_cumsum(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts), dtype=np.int64)
    if len(counts) > 1:
        np.cumsum(counts[:-1], out=out[1:])
    return out


def _encode(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Code points of the texts joined by the separator, each text's start and length."""
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    # "surrogatepass" keeps lone surrogates (some decoders leave them in page text) as code
    # points instead of failing.
    joined = _DOC_SEPARATOR.join(texts).encode("utf-32-le", "surrogatepass")
    return np.frombuffer(joined, dtype=np.uint32), _exclusive_cumsum(lengths + 1), lengths


@dataclass(frozen=True, slots=True)
class _Encoded:
    """A batch's texts as code points, ready to map."""

    raw: np.ndarray  # uint32 code points of the texts joined by the separator
    doc_starts: np.ndarray  # int64 per text
    lengths: np.ndarray  # int64 per text
    keep: np.ndarray  # bool per text: already normalised by the whole-text functions
    mapped_len: int  # code points after mapping (Numba path; 0 on the NumPy path)


def _scan(raw, doc_starts, lengths, backend: Backend) -> tuple[np.ndarray, int]:
    """Indices of the texts holding a `context` character, and the mapped length."""
    tables = char_tables()
    if backend == "numba":
        flags = np.zeros(len(doc_starts), dtype=bool)
        total = _KERNELS["scan"](raw, doc_starts, lengths, tables.packed, tables.map_len, flags)
        return np.flatnonzero(flags), int(total)
    positions = np.flatnonzero(tables.context[raw])
    return np.unique(np.searchsorted(doc_starts, positions, side="right") - 1), 0


def _prepare(texts: Sequence[str], backend: Backend) -> _Encoded:
    """Encode the texts; those with a `context` character are normalised with the whole-text
    functions first (their code points are then final: no table mapping)."""
    raw, doc_starts, lengths = _encode(texts)
    keep = np.zeros(len(texts), dtype=bool)
    docs, mapped_len = _scan(raw, doc_starts, lengths, backend)
    if len(docs):
        keep[docs] = True
        texts = [
            unicodedata.normalize("NFKC", t).lower() if k else t
            for t, k in zip(texts, keep.tolist(), strict=True)
        ]
        raw, doc_starts, lengths = _encode(texts)
        _, mapped_len = _scan(raw, doc_starts, lengths, backend)
    return _Encoded(raw, doc_starts, lengths, keep, mapped_len)


def _words_numpy(enc: _Encoded) -> _Words:
    raw, doc_starts, lengths, keep = enc.raw, enc.doc_starts, enc.lengths, enc.keep
    tables = char_tables()
    num_docs = len(lengths)
    first = tables.map_first[raw]
    lens = tables.map_len[raw]
    if keep.any():
        # The separator after each text goes with it; the last text has none.
        kept = np.repeat(keep, lengths + 1)[: len(raw)]
        first[kept] = raw[kept]
        lens[kept] = 1
    multi = np.flatnonzero(lens > 1)
    if len(multi):
        # Rare (ligatures, "½", "…"): repeat each mapped first code point by its mapping's
        # length, then write the full mappings over the repeats.
        lens = lens.astype(np.int64)
        new_pos = _exclusive_cumsum(lens)
        cps = np.repeat(first, lens)
        multi_lens = lens[multi]
        within = np.arange(int(multi_lens.sum())) - np.repeat(
            _exclusive_cumsum(multi_lens), multi_lens
        )
        targets = np.repeat(new_pos[multi], multi_lens) + within
        sources = np.repeat(tables.map_start[raw[multi]].astype(np.int64), multi_lens) + within
        cps[targets] = tables.pool[sources]
        doc_starts = np.append(new_pos, len(cps))[doc_starts]
    else:
        cps = first

    is_word = tables.word[cps]
    steps = np.diff(is_word.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    old_starts = np.flatnonzero(steps == 1)
    word_lens = np.flatnonzero(steps == -1) - old_starts
    word_docs = np.searchsorted(doc_starts, old_starts, side="right") - 1
    # Canonical text: every word followed by one space; word w moves to word_starts[w].
    word_starts = _exclusive_cumsum(word_lens + 1)
    canon = np.full(int((word_lens + 1).sum()), _SPACE, dtype=np.uint32)
    src = np.flatnonzero(is_word)
    canon[src + np.repeat(word_starts - old_starts, word_lens)] = cps[src]

    words_per_doc = np.bincount(word_docs, minlength=num_docs)
    has_words = words_per_doc > 0
    first_word = np.minimum(_exclusive_cumsum(words_per_doc), max(len(word_lens) - 1, 0))
    last_word = np.maximum(first_word + words_per_doc - 1, 0)
    if len(word_lens):
        text_starts = np.where(has_words, word_starts[first_word], 0)
        text_ends = np.where(has_words, word_starts[last_word] + word_lens[last_word], 0)
    else:
        text_starts = text_ends = np.zeros(num_docs, dtype=np.int64)
    return _Words(canon, text_starts, text_ends, word_starts, word_lens, word_docs)


def _words_numba(enc: _Encoded) -> _Words:
    tables = char_tables()
    num_docs = len(enc.lengths)
    mapped = np.empty(enc.mapped_len, dtype=np.uint32)
    mapped_starts = np.empty(num_docs, dtype=np.int64)
    mapped_lens = np.empty(num_docs, dtype=np.int64)
    _KERNELS["map"](
        enc.raw,
        enc.doc_starts,
        enc.lengths,
        enc.keep,
        tables.packed,
        tables.word,
        tables.map_len,
        tables.map_start,
        tables.pool,
        mapped,
        mapped_starts,
        mapped_lens,
    )
    # Canonical length <= mapped length (a space stands in for at least one separator), and a
    # text of mapped length L has at most ceil(L / 2) words.
    canon = np.empty(enc.mapped_len, dtype=np.uint32)
    max_words = enc.mapped_len // 2 + num_docs + 1
    word_starts = np.empty(max_words, dtype=np.int64)
    word_lens = np.empty(max_words, dtype=np.int64)
    word_docs = np.empty(max_words, dtype=np.int64)
    text_starts = np.empty(num_docs, dtype=np.int64)
    text_ends = np.empty(num_docs, dtype=np.int64)
    size, words = _KERNELS["fold"](
        mapped,
        mapped_starts,
        mapped_lens,
        canon,
        word_starts,
        word_lens,
        word_docs,
        text_starts,
        text_ends,
    )
    return _Words(
        canon[:size],
        text_starts,
        text_ends,
        word_starts[:words],
        word_lens[:words],
        word_docs[:words],
    )


def _spans_numpy(words: _Words, kind: ShingleKind, n: int) -> tuple[np.ndarray, ...]:
    """(starts, ends, shingle docs) of every shingle, in text order."""
    num_docs = len(words.text_starts)
    if kind == "char":
        lengths = words.text_ends - words.text_starts
        counts = np.where(lengths >= n, lengths - n + 1, (lengths > 0).astype(np.int64))
        docs = np.repeat(np.arange(num_docs), counts)
        within = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(
            _exclusive_cumsum(counts), counts
        )
        starts = words.text_starts[docs] + within
        return starts, starts + np.minimum(lengths[docs], n), docs
    word_docs, num_words = words.word_docs, len(words.word_lens)
    first = np.arange(max(num_words - n + 1, 0))
    # An n-gram is a shingle only if its first and last words are in the same document.
    first = first[word_docs[first] == word_docs[first + n - 1]]
    last = first + n - 1
    per_doc = np.bincount(word_docs, minlength=num_docs)
    short = np.flatnonzero((per_doc > 0) & (per_doc < n))
    if len(short):
        first_word = _exclusive_cumsum(per_doc)
        first = np.concatenate([first, first_word[short]])
        last = np.concatenate([last, first_word[short] + per_doc[short] - 1])
        order = np.argsort(first, kind="stable")  # back into text order
        first, last = first[order], last[order]
    ends = words.word_starts[last] + words.word_lens[last]
    return words.word_starts[first], ends, word_docs[first]


def _spans_numba(words: _Words, kind: ShingleKind, n: int) -> tuple[np.ndarray, ...]:
    num_docs = len(words.text_starts)
    capacity = len(words.canon) + num_docs if kind == "char" else len(words.word_lens)
    starts = np.empty(capacity, dtype=np.int64)
    ends = np.empty(capacity, dtype=np.int64)
    docs = np.empty(capacity, dtype=np.int64)
    if kind == "char":
        count = _KERNELS["char_spans"](words.text_starts, words.text_ends, n, starts, ends, docs)
    else:
        count = _KERNELS["word_spans"](
            words.word_starts, words.word_lens, words.word_docs, n, starts, ends, docs
        )
    return starts[:count], ends[:count], docs[:count]


def shingle_batch(
    texts: Sequence[str],
    kind: ShingleKind = "word",
    n: int = 5,
    backend: Backend | None = None,
) -> ShingleBatch:
    """Normalise `texts` and cut them into shingles (docs/stages/dedup.md).

    `backend` None: Numba when installed, else NumPy (identical results).
    """
    if kind not in SHINGLE_KINDS:
        raise ValueError(f"shingle kind must be one of {SHINGLE_KINDS}, got {kind!r}")
    if n < 1:
        raise ValueError(f"shingle size n must be >= 1, got {n}")
    backend = resolve_backend(backend)
    encoded = _prepare(texts, backend)
    if backend == "numba":
        words = _words_numba(encoded)
        starts, ends, docs = _spans_numba(words, kind, n)
    else:
        words = _words_numpy(encoded)
        starts, ends, docs = _spans_numpy(words, kind, n)
    doc_offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(np.bincount(docs, minlength=len(texts)), out=doc_offsets[1:])
    return ShingleBatch(words.canon, words.text_starts, words.text_ends, starts, ends, doc_offsets)


def normalize(text: str) -> str:
    """The canonical form of `text` (docs/stages/dedup.md, "Normalisation")."""
    return shingle_batch([text], "word", 1).canonical(0)


def shingles(text: str, kind: ShingleKind = "word", n: int = 5) -> list[str]:
    """The shingles of one text, in text order (repeats kept)."""
    return shingle_batch([text], kind, n).shingle_strings(0)


# --- hashing ------------------------------------------------------------------------------


def fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer on a uint64 array: a bijection that spreads every input
    bit over every output bit."""
    h = h ^ (h >> _FMIX64_SHIFT)
    h = h * _FMIX64_M1
    h = h ^ (h >> _FMIX64_SHIFT)
    h = h * _FMIX64_M2
    return h ^ (h >> _FMIX64_SHIFT)


def fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer on a uint32 array (datasketch's affine32 pre-mix)."""
    s16, m1, s13, m2 = _FMIX32
    h = h ^ (h >> s16)
    h = h * m1
    h = h ^ (h >> s13)
    h = h * m2
    return h ^ (h >> s16)


_powers_lock = threading.Lock()
_powers: tuple[np.ndarray, np.ndarray] = (np.ones(1, np.uint64), np.ones(1, np.uint64))


def _base_powers(length: int) -> tuple[np.ndarray, np.ndarray]:
    """(B^i, B^-i) mod 2^64 for i < length (at least), from a per-process cache that grows by
    doubling."""
    global _powers
    pw, inv = _powers
    if len(pw) >= length:
        return pw, inv
    with _powers_lock:
        size = max(length, 2 * len(_powers[0]), 1 << 16)
        pw = np.full(size, _POLY_BASE, dtype=np.uint64)
        inv = np.full(size, _POLY_BASE_INV, dtype=np.uint64)
        pw[0] = inv[0] = 1
        # Unsigned multiplication wraps: the arithmetic modulo 2^64 wanted here.
        np.multiply.accumulate(pw, out=pw)
        np.multiply.accumulate(inv, out=inv)
        _powers = (pw, inv)
    return pw, inv


def hash_fast(batch: ShingleBatch, bits: int = 32, backend: Backend | None = None) -> np.ndarray:
    """The fast hash of every shingle: uint32 (bits=32) or uint64 (bits=64).

    With prefix sums P[j] = sum_{i<j} (c_i + 1) B^i over the batch's code points, a span's sum
    is (P[e] - P[s]) B^-s, whatever its position.
    """
    backend = resolve_backend(backend)
    cps = batch.codepoints
    pw, inv = _base_powers(len(cps) + 1)
    if backend == "numba":
        hashed = np.empty(len(batch.starts), dtype=np.uint64)
        _KERNELS["fast_hash"](cps, batch.starts, batch.ends, pw, inv, hashed)
    else:
        prefix = np.zeros(len(cps) + 1, dtype=np.uint64)
        np.cumsum((cps.astype(np.uint64) + _ONE) * pw[: len(cps)], out=prefix[1:])
        spans = (prefix[batch.ends] - prefix[batch.starts]) * inv[batch.starts]
        lengths = (batch.ends - batch.starts).astype(np.uint64)
        hashed = fmix64(spans + lengths * _LENGTH_MIX)
    return hashed.astype(np.uint32) if bits == 32 else hashed


def hash_sha1(batch: ShingleBatch, bits: int = 32) -> np.ndarray:
    """datasketch's `sha1_hash32` (bits=32) or `sha1_hash64` (bits=64) of every shingle's
    UTF-8 bytes: the first 4 or 8 bytes of the SHA-1 digest, little-endian."""
    sha1 = hashlib.sha1
    digests = b"".join(
        sha1(s.encode("utf-8", "surrogatepass")).digest()
        for doc in range(batch.num_docs)
        for s in batch.shingle_strings(doc)
    )
    head = np.frombuffer(digests, dtype=np.uint8).reshape(-1, 20)[:, : bits // 8]
    return np.ascontiguousarray(head).view("<u4" if bits == 32 else "<u8").ravel().copy()


def hash_shingles(
    batch: ShingleBatch,
    hash_kind: HashKind = "fast",
    bits: int = 32,
    backend: Backend | None = None,
) -> np.ndarray:
    """Hashes of every shingle of the batch (the two kinds: docs/stages/dedup.md)."""
    if bits not in (32, 64):
        raise ValueError(f"bits must be 32 or 64, got {bits}")
    if hash_kind == "fast":
        return hash_fast(batch, bits, backend)
    if hash_kind == "sha1":
        return hash_sha1(batch, bits)
    raise ValueError(f"hash_kind must be one of {HASH_KINDS}, got {hash_kind!r}")
