"""Numba kernels of the shingling (shingles.py): the NumPy steps there, written as loops."""

from __future__ import annotations

import numpy as np

try:  # Numba runs the per-character loops; the NumPy path gives identical results, slower.
    import numba
except ImportError:  # pragma: no cover - workers without numba
    numba = None

# Bits of CharTables.packed: 0-20 the mapped code point, 29 context, 30 maps to several code
# points, 31 the mapped code point is a word character.
_PACKED_CONTEXT = np.uint32(1 << 29)
_PACKED_MULTI = np.uint32(1 << 30)
_PACKED_WORD = np.uint32(1 << 31)
_PACKED_CODEPOINT = np.uint32((1 << 21) - 1)
_ZERO32 = np.uint32(0)
# Mixed with the span length so that spans of different lengths never share a pre-image.
_LENGTH_MIX = np.uint64(0xC2B2AE3D27D4EB4F)
_ONE = np.uint64(1)
# MurmurHash3's 64-bit finalizer.
_FMIX64_SHIFT = np.uint64(33)
_FMIX64_M1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX64_M2 = np.uint64(0xC4CEB9FE1A85EC53)


def _scan_kernel(raw, doc_starts, lengths, packed, map_len, flags):  # pragma: no cover
    """Flag the documents holding a context character; return the mapped length."""
    total = 0
    for d in range(doc_starts.shape[0]):
        for i in range(doc_starts[d], doc_starts[d] + lengths[d]):
            v = packed[raw[i]]
            if v & _PACKED_CONTEXT:
                flags[d] = True
            total += map_len[raw[i]] if v & _PACKED_MULTI else 1
    return total


def _map_kernel(  # pragma: no cover - numba
    raw,
    doc_starts,
    lengths,
    keep,
    packed,
    word,
    map_len,
    map_start,
    pool,
    mapped,
    mapped_starts,
    mapped_lens,
):
    """NFKC + lower per code point; each output is a code point with the word bit set."""
    pos = 0
    for d in range(doc_starts.shape[0]):
        mapped_starts[d] = pos
        for i in range(doc_starts[d], doc_starts[d] + lengths[d]):
            c = raw[i]
            v = packed[c]
            if keep[d]:  # already normalised by the whole-text functions
                mapped[pos] = c | (_PACKED_WORD if word[c] else _ZERO32)
                pos += 1
            elif v & _PACKED_MULTI:
                for j in range(map_len[c]):
                    m = pool[map_start[c] + j]
                    mapped[pos] = m | (_PACKED_WORD if word[m] else _ZERO32)
                    pos += 1
            else:
                mapped[pos] = v & (_PACKED_CODEPOINT | _PACKED_WORD)
                pos += 1
        mapped_lens[d] = pos - mapped_starts[d]


def _fold_kernel(  # pragma: no cover - numba
    mapped,
    mapped_starts,
    mapped_lens,
    canon,
    word_starts,
    word_lens,
    word_docs,
    text_starts,
    text_ends,
):
    """Words of the mapped texts, joined by one space: the canonical texts."""
    pos = 0
    nwords = 0
    for d in range(mapped_starts.shape[0]):
        text_starts[d] = pos
        in_word = False
        seen = False
        for i in range(mapped_starts[d], mapped_starts[d] + mapped_lens[d]):
            v = mapped[i]
            if v & _PACKED_WORD:
                if not in_word:
                    if seen:
                        canon[pos] = 32
                        pos += 1
                    word_starts[nwords] = pos
                    word_docs[nwords] = d
                    in_word = True
                    seen = True
                canon[pos] = v & _PACKED_CODEPOINT
                pos += 1
            elif in_word:
                word_lens[nwords] = pos - word_starts[nwords]
                nwords += 1
                in_word = False
        if in_word:
            word_lens[nwords] = pos - word_starts[nwords]
            nwords += 1
        text_ends[d] = pos
    return pos, nwords


def _word_spans_kernel(  # pragma: no cover - numba
    word_starts, word_lens, word_docs, n, starts, ends, docs
):
    count = 0
    first = 0
    total = word_lens.shape[0]
    while first < total:
        stop = first
        while stop < total and word_docs[stop] == word_docs[first]:
            stop += 1
        if stop - first >= n:
            for w in range(first, stop - n + 1):
                starts[count] = word_starts[w]
                ends[count] = word_starts[w + n - 1] + word_lens[w + n - 1]
                docs[count] = word_docs[w]
                count += 1
        else:
            starts[count] = word_starts[first]
            ends[count] = word_starts[stop - 1] + word_lens[stop - 1]
            docs[count] = word_docs[first]
            count += 1
        first = stop
    return count


def _char_spans_kernel(text_starts, text_ends, n, starts, ends, docs):  # pragma: no cover
    count = 0
    for d in range(text_starts.shape[0]):
        length = text_ends[d] - text_starts[d]
        if length >= n:
            for s in range(text_starts[d], text_ends[d] - n + 1):
                starts[count] = s
                ends[count] = s + n
                docs[count] = d
                count += 1
        elif length > 0:
            starts[count] = text_starts[d]
            ends[count] = text_ends[d]
            docs[count] = d
            count += 1
    return count


def _fast_hash_kernel(cps, starts, ends, pw, inv, out):  # pragma: no cover - numba
    prefix = np.empty(cps.shape[0] + 1, dtype=np.uint64)
    acc = np.uint64(0)
    prefix[0] = acc
    for i in range(cps.shape[0]):
        acc += (np.uint64(cps[i]) + _ONE) * pw[i]
        prefix[i + 1] = acc
    for j in range(starts.shape[0]):
        s = starts[j]
        e = ends[j]
        h = (prefix[e] - prefix[s]) * inv[s] + np.uint64(e - s) * _LENGTH_MIX
        h ^= h >> _FMIX64_SHIFT
        h *= _FMIX64_M1
        h ^= h >> _FMIX64_SHIFT
        h *= _FMIX64_M2
        h ^= h >> _FMIX64_SHIFT
        out[j] = h


if numba is not None:
    _jit = numba.njit(cache=True, nogil=True)
    _KERNELS = {
        "scan": _jit(_scan_kernel),
        "map": _jit(_map_kernel),
        "fold": _jit(_fold_kernel),
        "word_spans": _jit(_word_spans_kernel),
        "char_spans": _jit(_char_spans_kernel),
        "fast_hash": _jit(_fast_hash_kernel),
    }
else:  # pragma: no cover
    _KERNELS = {}
