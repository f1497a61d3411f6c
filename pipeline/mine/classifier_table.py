"""Exact fast scoring for the math classifier: fastText's log-odds as a mean of per-row scalars.

For a two-label softmax model, logit = mean_i s[id_i] with s = E @ (w_math - w_other): an 8 MB
table instead of the 2 GB model, equal to fastText up to float rounding. `_line_logit` reproduces
fastText 0.9's word splitting and n-gram hashing. Derivation: docs/stages/mine.md.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any, BinaryIO

import numba
import numpy as np

TABLE_FORMAT = "mathcorpus.classifier_table"
TABLE_VERSION = 1
END_OF_SENTENCE = "</s>"
# fastText's default label prefix (`-label`); our classifier never changes it.
LABEL_PREFIX = "__label__"
# Rows of the input matrix multiplied by d per step while building the table: 64k x 256 float32
# is a 64 MiB slice, so building never holds a second copy of the 2 GB matrix.
BUILD_CHUNK_ROWS = 65_536
# fastText's constants (src/dictionary.cc).
_FNV_OFFSET = np.uint32(2166136261)
_FNV_PRIME = np.uint32(16777619)
_NGRAM_MULTIPLIER = np.uint64(116049371)


@numba.njit(cache=True, nogil=True)
def _fnv1a(data: np.ndarray, start: int, end: int) -> np.uint32:
    h = _FNV_OFFSET
    for i in range(start, end):
        byte = np.int64(data[i])
        if byte >= 128:  # fastText hashes `int8_t(c)`: bytes >= 0x80 are sign-extended
            byte -= 256
        h = np.uint32(h ^ np.uint32(byte & 0xFFFFFFFF))
        h = np.uint32(h * _FNV_PRIME)
    return h


@numba.njit(cache=True, nogil=True)
def _word_id(
    data: np.ndarray,
    start: int,
    end: int,
    h: np.uint32,
    slots: np.ndarray,
    word_bytes: np.ndarray,
    word_offsets: np.ndarray,
) -> int:
    """Vocabulary id of data[start:end], or -1: open addressing on the FNV hash, bytes compared."""
    mask = slots.shape[0] - 1
    pos = np.int64(h) & mask
    length = end - start
    while True:
        wid = slots[pos]
        if wid < 0:
            return -1
        w0 = word_offsets[wid]
        if word_offsets[wid + 1] - w0 == length:
            same = True
            for k in range(length):
                if word_bytes[w0 + k] != data[start + k]:
                    same = False
                    break
            if same:
                return wid
        pos = (pos + 1) & mask


@numba.njit(cache=True, nogil=True)
def _is_separator(byte: np.uint8) -> bool:
    # ' ', '\n', '\r', '\t', '\v', '\f', '\0' (fastText's readWord)
    return byte == 32 or 9 <= byte <= 13 or byte == 0  # 9..13: \t \n \v \f \r


@numba.njit(cache=True, nogil=True)
def _line_logit(
    data: np.ndarray,
    row_scores: np.ndarray,
    slots: np.ndarray,
    word_bytes: np.ndarray,
    word_offsets: np.ndarray,
    eos_id: int,
    eos_hash: np.uint32,
    label_prefix: np.ndarray,
    nwords: int,
    bucket: int,
    word_ngrams: int,
    hashes: np.ndarray,
) -> float:
    """Mean of row_scores over the ids fastText builds for `data` + '\\n' (docs/stages/mine.md).

    `hashes` is scratch space of at least (words in data + 1) int64s."""
    total = 0.0
    count = 0
    n_hashes = 0
    n = data.shape[0]
    i = 0
    while i <= n:
        # A word is data[start:i]; the virtual '\n' at index n ends the line with </s>.
        while i < n and _is_separator(data[i]):
            if data[i] == 10:
                break
            i += 1
        if i < n and data[i] == 10:
            break  # an embedded newline ends the line, as in fastText
        start = i
        while i < n and not _is_separator(data[i]):
            i += 1
        if i == start:
            break
        h = _fnv1a(data, start, i)
        wid = _word_id(data, start, i, h, slots, word_bytes, word_offsets)
        if wid >= 0:
            total += row_scores[wid]
            count += 1
            hashes[n_hashes] = np.int64(np.int32(h))
            n_hashes += 1
        else:
            is_label = i - start >= label_prefix.shape[0]
            if is_label:
                for k in range(label_prefix.shape[0]):
                    if data[start + k] != label_prefix[k]:
                        is_label = False
                        break
            if not is_label:
                hashes[n_hashes] = np.int64(np.int32(h))
                n_hashes += 1
    if eos_id >= 0:
        total += row_scores[eos_id]
        count += 1
    hashes[n_hashes] = np.int64(np.int32(eos_hash))
    n_hashes += 1
    for a in range(n_hashes):
        h64 = np.uint64(hashes[a])
        for b in range(a + 1, min(n_hashes, a + word_ngrams)):
            h64 = h64 * _NGRAM_MULTIPLIER + np.uint64(hashes[b])
            total += row_scores[nwords + np.int64(h64 % np.uint64(bucket))]
            count += 1
    if count == 0:
        return 0.0
    return total / count


def _slots_for(word_bytes: np.ndarray, word_offsets: np.ndarray) -> np.ndarray:
    """The open-addressing table (power of two, at most half full) of word ids by FNV hash."""
    nwords = len(word_offsets) - 1
    size = 1
    while size < 2 * max(nwords, 1):
        size *= 2
    return _fill_slots(word_bytes, word_offsets, size)


@numba.njit(cache=True)
def _fill_slots(word_bytes: np.ndarray, word_offsets: np.ndarray, size: int) -> np.ndarray:
    slots = np.full(size, -1, dtype=np.int64)
    mask = size - 1
    for wid in range(word_offsets.shape[0] - 1):
        h = _fnv1a(word_bytes, word_offsets[wid], word_offsets[wid + 1])
        pos = np.int64(h) & mask
        while slots[pos] >= 0:
            pos = (pos + 1) & mask
        slots[pos] = wid
    return slots


@dataclass(frozen=True)
class ClassifierTable:
    """What scoring needs of a two-label fastText model (docs/stages/mine.md)."""

    row_scores: np.ndarray
    """float32[nwords + bucket]: E[row] . (w_math - w_other) for every input row."""
    word_bytes: np.ndarray
    """uint8: the vocabulary's UTF-8 words, concatenated in fastText's id order."""
    word_offsets: np.ndarray
    """int64[nwords + 1]: word `i` is word_bytes[offsets[i]:offsets[i + 1]]."""
    bucket: int
    """Number of word n-gram hash buckets."""
    word_ngrams: int
    """Longest word n-gram."""
    model_sha256: str
    """sha256 of the model.bin the table was built from."""

    def __post_init__(self) -> None:
        problems = []
        nwords = len(self.word_offsets) - 1
        if self.row_scores.shape != (nwords + self.bucket,):
            problems.append(
                f"row_scores has shape {self.row_scores.shape}, expected ({nwords + self.bucket},)"
            )
        if self.word_ngrams < 1:
            problems.append(f"word_ngrams must be >= 1, got {self.word_ngrams}")
        if problems:
            raise ValueError("classifier table: " + "; ".join(problems))
        words = {self.word(i): i for i in range(nwords)}
        object.__setattr__(self, "_slots", _slots_for(self.word_bytes, self.word_offsets))
        object.__setattr__(self, "_eos_id", words.get(END_OF_SENTENCE, -1))
        eos = np.frombuffer(END_OF_SENTENCE.encode(), dtype=np.uint8)
        object.__setattr__(self, "_eos_hash", _fnv1a(eos, 0, len(eos)))
        object.__setattr__(
            self, "_label_prefix", np.frombuffer(LABEL_PREFIX.encode(), dtype=np.uint8).copy()
        )

    @property
    def nwords(self) -> int:
        return len(self.word_offsets) - 1

    def word(self, i: int) -> str:
        return bytes(self.word_bytes[self.word_offsets[i] : self.word_offsets[i + 1]]).decode()

    @classmethod
    def from_fasttext(
        cls, model: Any, math_label: str, other_label: str, model_sha256: str
    ) -> ClassifierTable:
        """Build the table from a loaded supervised model with exactly these two labels."""
        labels = list(model.get_labels())
        problems = []
        if sorted(labels) != sorted([math_label, other_label]):
            problems.append(f"labels are {labels}, expected {math_label} and {other_label}")
        if model.f.isQuant():
            problems.append("the model is quantized (its input rows are not stored)")
        args = model.f.getArgs()
        if str(args.loss) != "loss_name.softmax":
            problems.append(f"loss is {args.loss}, the table needs softmax")
        if args.maxn > 0:
            problems.append(f"maxn is {args.maxn}: subword n-grams are not supported")
        if problems:
            raise ValueError("cannot build a classifier table: " + "; ".join(problems))
        output = np.asarray(model.get_output_matrix(), dtype=np.float64)
        direction = output[labels.index(math_label)] - output[labels.index(other_label)]
        # A view of fastText's own matrix (buffer protocol): no 2 GB copy.
        matrix = np.asarray(model.f.getInputMatrix())
        row_scores = np.empty(matrix.shape[0], dtype=np.float32)
        for lo in range(0, matrix.shape[0], BUILD_CHUNK_ROWS):
            hi = min(lo + BUILD_CHUNK_ROWS, matrix.shape[0])
            row_scores[lo:hi] = matrix[lo:hi].astype(np.float64) @ direction
        encoded = [w.encode() for w in model.get_words()]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(w) for w in encoded], out=offsets[1:])
        word_bytes = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
        bucket, word_ngrams = int(args.bucket), int(args.wordNgrams)
        return cls(row_scores, word_bytes, offsets, bucket, word_ngrams, model_sha256)

    def logit_of_line(self, line: str) -> float:
        """Log-odds of math for a preprocessed line: fastText's `h . d`, up to rounding."""
        return self.logit_of_bytes(np.frombuffer(line.encode("utf-8"), dtype=np.uint8))

    def logit_of_bytes(self, data: np.ndarray) -> float:
        """`logit_of_line` of a line given as UTF-8 bytes (uint8 array)."""
        # Word hashes: a line of b bytes has at most b/2 + 1 words, plus </s>. Allocated per
        # call (about a microsecond) so that threads can share one table.
        scratch = np.empty(data.shape[0] // 2 + 2, dtype=np.int64)
        return float(
            _line_logit(
                data,
                self.row_scores,
                self._slots,  # type: ignore[attr-defined]
                self.word_bytes,
                self.word_offsets,
                self._eos_id,  # type: ignore[attr-defined]
                self._eos_hash,  # type: ignore[attr-defined]
                self._label_prefix,  # type: ignore[attr-defined]
                self.nwords,
                self.bucket,
                self.word_ngrams,
                scratch,
            )
        )

    def save(self, path: str) -> str:
        """Write the table (.npz, temporary name then rename); returns its sha256."""
        tmp = path + ".tmp"
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                format=np.array(TABLE_FORMAT),
                format_version=np.array(TABLE_VERSION),
                row_scores=self.row_scores,
                word_bytes=self.word_bytes,
                word_offsets=self.word_offsets,
                bucket=np.array(self.bucket),
                word_ngrams=np.array(self.word_ngrams),
                model_sha256=np.array(self.model_sha256),
            )
        digest = _sha256(tmp)
        os.replace(tmp, path)
        return digest

    @classmethod
    def load(cls, path: str | BinaryIO, name: str = "") -> ClassifierTable:
        """From a local path or an open binary file (`name`: what error messages call it)."""
        with np.load(path, allow_pickle=False) as z:
            problems = []
            if str(z["format"]) != TABLE_FORMAT:
                problems.append(f"format is {z['format']}, expected {TABLE_FORMAT}")
            if int(z["format_version"]) != TABLE_VERSION:
                version = z["format_version"]
                problems.append(f"format_version is {version}, expected {TABLE_VERSION}")
            if problems:
                raise ValueError(f"{name or path}: " + "; ".join(problems))
            return cls(
                z["row_scores"],
                z["word_bytes"],
                z["word_offsets"],
                int(z["bucket"]),
                int(z["word_ngrams"]),
                str(z["model_sha256"]),
            )


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
