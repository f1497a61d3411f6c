"""Numba kernels of the benchmark n-gram index (ngram_index.py): the same uint64 arithmetic
as its pure-Python reference functions; None where Numba is not installed."""

from __future__ import annotations

import numpy as np

from pipeline.decontaminate.normalize import CJK, COMMAND, DIGIT, LBRACE, LETTER, RBRACE

try:
    import numba
except ImportError:  # pragma: no cover - workers without numba use the reference path
    numba = None

_MASK = (1 << 64) - 1
# 64-bit FNV-1a over a gram's UTF-8 bytes.
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_POLY = 0x9E3779B97F4A7C15  # odd: multiplication by it is a bijection mod 2^64
_LENGTH_MIX = 0xC2B2AE3D27D4EB4F
_CJK = CJK
_LETTER = LETTER
_DIGIT = DIGIT
_COMMAND = COMMAND
_LBRACE = LBRACE
_RBRACE = RBRACE

_scan_nb = _window_keys_nb = _match_nb = _evidence_nb = None

if numba is not None:
    _U = numba.uint64

    @numba.njit(cache=True, nogil=True)
    def _fmix64_nb(h):  # pragma: no cover - compiled
        h ^= h >> _U(33)
        h *= _U(0xFF51AFD7ED558CCD)
        h ^= h >> _U(33)
        h *= _U(0xC4CEB93FE185EC53)
        return h ^ (h >> _U(33))

    @numba.njit(cache=True, nogil=True)
    def _fnv_utf8_nb(h, cp):  # pragma: no cover - compiled
        """FNV-1a over the UTF-8 bytes of one code point."""
        if cp < 0x80:
            return (h ^ _U(cp)) * _U(_FNV_PRIME)
        if cp < 0x800:
            h = (h ^ _U(0xC0 | (cp >> 6))) * _U(_FNV_PRIME)
            return (h ^ _U(0x80 | (cp & 0x3F))) * _U(_FNV_PRIME)
        if cp < 0x10000:
            h = (h ^ _U(0xE0 | (cp >> 12))) * _U(_FNV_PRIME)
            h = (h ^ _U(0x80 | ((cp >> 6) & 0x3F))) * _U(_FNV_PRIME)
            return (h ^ _U(0x80 | (cp & 0x3F))) * _U(_FNV_PRIME)
        h = (h ^ _U(0xF0 | (cp >> 18))) * _U(_FNV_PRIME)
        h = (h ^ _U(0x80 | ((cp >> 12) & 0x3F))) * _U(_FNV_PRIME)
        h = (h ^ _U(0x80 | ((cp >> 6) & 0x3F))) * _U(_FNV_PRIME)
        return (h ^ _U(0x80 | (cp & 0x3F))) * _U(_FNV_PRIME)

    @numba.njit(cache=True, nogil=True)
    def _scan_nb(cps, t_start, t_length, t_chars, t_classes):  # pragma: no cover - compiled
        """Grams of a code point array: (hashes, begins, ends, words), as
        normalize.gram_spans_kinds and normalize.word_letters define them."""
        n = cps.shape[0]
        hashes = np.empty(n + 1, dtype=np.uint64)
        begins = np.empty(n + 1, dtype=np.int64)
        ends = np.empty(n + 1, dtype=np.int64)
        words = np.empty(n + 1, dtype=np.int32)
        groups = np.empty(n + 1, dtype=np.int64)  # gram index of each open `{`
        depth = 0
        count = 0
        current = 0  # kind of the open gram; 0 (SEP) = none open
        h = _U(_FNV_OFFSET)
        begin = 0
        end = 0
        letters = 0
        for index in range(n):
            cp = cps[index]
            if cp >= 0x110000:
                cp = 0x20
            first = t_start[cp]
            for k in range(first, first + t_length[cp]):
                cls = t_classes[k]
                ch = t_chars[k]
                if cls == _LETTER and current == _COMMAND:
                    h = _fnv_utf8_nb(h, ch)
                    letters += 1
                    end = index + 1
                    continue
                if cls == _LETTER or cls == _DIGIT:  # noqa: SIM109 - plain compares for Numba
                    if cls != current:
                        if current != 0 and not (current == _COMMAND and letters == 0):
                            hashes[count] = _fmix64_nb(h)
                            begins[count] = begin
                            ends[count] = end
                            words[count] = letters if current == _LETTER and letters >= 2 else 0
                            count += 1
                        h = _U(_FNV_OFFSET)
                        begin = index
                        current = cls
                        letters = 0
                    h = _fnv_utf8_nb(h, ch)
                    letters += 1
                    end = index + 1
                    continue
                # Anything else closes the open gram.
                if current != 0 and not (current == _COMMAND and letters == 0):
                    hashes[count] = _fmix64_nb(h)
                    begins[count] = begin
                    ends[count] = end
                    words[count] = letters if current == _LETTER and letters >= 2 else 0
                    count += 1
                current = 0
                if cls == _COMMAND:
                    h = _fnv_utf8_nb(_U(_FNV_OFFSET), ch)
                    begin = index
                    end = index + 1
                    letters = 0
                    current = _COMMAND
                elif cls == _CJK:
                    hashes[count] = _fmix64_nb(_fnv_utf8_nb(_U(_FNV_OFFSET), ch))
                    begins[count] = index
                    ends[count] = index + 1
                    words[count] = 2
                    count += 1
                elif cls == _LBRACE:
                    groups[depth] = count
                    depth += 1
                    hashes[count] = _fmix64_nb(_fnv_utf8_nb(_U(_FNV_OFFSET), ch))
                    begins[count] = index
                    ends[count] = index + 1
                    words[count] = 0
                    count += 1
                elif cls == _RBRACE and depth > 0:
                    depth -= 1
                    opened = groups[depth]
                    if count - opened == 1:  # `{}`: nothing
                        count = opened
                    elif count - opened == 2:  # `{x}`: x
                        hashes[opened] = hashes[opened + 1]
                        begins[opened] = begins[opened + 1]
                        ends[opened] = ends[opened + 1]
                        words[opened] = words[opened + 1]
                        count = opened + 1
                    else:
                        hashes[count] = _fmix64_nb(_fnv_utf8_nb(_U(_FNV_OFFSET), ch))
                        begins[count] = index
                        ends[count] = index + 1
                        words[count] = 0
                        count += 1
        if current != 0 and not (current == _COMMAND and letters == 0):
            hashes[count] = _fmix64_nb(h)
            begins[count] = begin
            ends[count] = end
            words[count] = letters if current == _LETTER and letters >= 2 else 0
            count += 1
        return hashes[:count], begins[:count], ends[:count], words[:count]

    @numba.njit(cache=True, nogil=True)
    def _evidence_nb(hashes, words, length, min_words, min_letters):  # pragma: no cover
        """bool per `length`-gram window: at least `min_words` distinct words (grams with
        words > 0) holding at least `min_letters` letters between them."""
        m = hashes.shape[0] - length + 1
        if m <= 0:
            return np.zeros(0, dtype=np.bool_)
        out = np.zeros(m, dtype=np.bool_)
        for i in range(m):
            distinct = 0
            letters = 0
            for j in range(i, i + length):
                if words[j] == 0:
                    continue
                seen = False
                for k in range(i, j):
                    if words[k] != 0 and hashes[k] == hashes[j]:
                        seen = True
                        break
                if not seen:
                    distinct += 1
                    letters += words[j]
            out[i] = distinct >= min_words and letters >= min_letters
        return out

    @numba.njit(cache=True, nogil=True)
    def _window_keys_nb(hashes, length):  # pragma: no cover - compiled
        m = hashes.shape[0] - length + 1
        if m <= 0:
            return np.zeros(0, dtype=np.uint64)
        out = np.empty(m, dtype=np.uint64)
        mix = _U(length) * _U(_LENGTH_MIX)
        for i in range(m):
            state = _U(0)
            for j in range(length):
                state = state * _U(_POLY) + hashes[i + j]
            out[i] = _fmix64_nb(state ^ mix)
        return out

    @numba.njit(cache=True, nogil=True)
    def _probe_nb(keys, offsets, shift, key, i, length, table, out, count):  # pragma: no cover
        """Append (i, length, table, row) for every row holding `key`; the new count.

        Called only after the bit filter passed: array arguments cost reference counting per
        call, so the filter test itself is written inline in the caller.
        """
        b = key >> shift
        for row in range(offsets[b], offsets[b + _U(1)]):
            k = keys[row]
            if k == key:
                if count < out.shape[0]:
                    out[count, 0] = i
                    out[count, 1] = length
                    out[count, 2] = table
                    out[count, 3] = row
                count += 1
            elif k > key:
                break
        return count

    @numba.njit(cache=True, nogil=True)
    def _match_nb(  # pragma: no cover - compiled
        hashes,
        n,
        long_keys,
        long_offsets,
        long_shift,
        long_bloom,
        short_keys,
        short_offsets,
        short_shift,
        short_bloom,
        short_first_bloom,
        short_mask,
        max_short,
        first_only,
        out,
    ):
        m = hashes.shape[0]
        cap = out.shape[0]
        count = 0
        has_long = long_keys.shape[0] > 0
        has_short = short_keys.shape[0] > 0
        long_bits = _U(long_bloom.shape[0] * 64 - 1)
        short_bits = _U(short_bloom.shape[0] * 64 - 1)
        first_bits = _U(short_first_bloom.shape[0] * 64 - 1)
        # Short texts (the rare case): only where a short text's first gram could start.
        if has_short:
            for i in range(m):
                # Where a whole text can start: its prefix state (two grams) is in the filter.
                one = False
                if short_mask[1]:
                    bit = hashes[i] & first_bits
                    one = ((short_first_bloom[bit >> _U(6)] >> (bit & _U(63))) & _U(1)) != _U(0)
                if not one:
                    if i + 1 >= m:
                        continue
                    bit = (hashes[i] * _U(_POLY) + hashes[i + 1]) & first_bits
                    if ((short_first_bloom[bit >> _U(6)] >> (bit & _U(63))) & _U(1)) == _U(0):
                        continue
                state = _U(0)
                for length in range(1, min(max_short, m - i) + 1):
                    state = state * _U(_POLY) + hashes[i + length - 1]
                    if not short_mask[length]:
                        continue
                    key = _fmix64_nb(state ^ (_U(length) * _U(_LENGTH_MIX)))
                    bit = key & short_bits
                    if (short_bloom[bit >> _U(6)] >> (bit & _U(63))) & _U(1):
                        count = _probe_nb(
                            short_keys, short_offsets, short_shift, key, i, length, 1, out, count
                        )
                        if count > 0 and (first_only or count >= cap):
                            return min(count, cap)
        if not has_long or m < n:
            return min(count, cap)
        # n-grams: a rolling polynomial, state_{i+1} = (state_i - h_i * P^(n-1)) * P + h_{i+n},
        # equal to the direct fold mod 2^64 and O(1) per position.
        top = _U(1)
        for _ in range(n - 1):
            top = top * _U(_POLY)
        mix = _U(n) * _U(_LENGTH_MIX)
        state = _U(0)
        for j in range(n):
            state = state * _U(_POLY) + hashes[j]
        for i in range(m - n + 1):
            if i > 0:
                state = (state - hashes[i - 1] * top) * _U(_POLY) + hashes[i + n - 1]
            key = _fmix64_nb(state ^ mix)
            bit = key & long_bits
            if (long_bloom[bit >> _U(6)] >> (bit & _U(63))) & _U(1):
                count = _probe_nb(long_keys, long_offsets, long_shift, key, i, n, 0, out, count)
                if count > 0 and (first_only or count >= cap):
                    return min(count, cap)
        return min(count, cap)
