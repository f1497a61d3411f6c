"""MinHash signatures and LSH band keys, vectorised over a batch of documents.

Signatures equal datasketch's for the same seed and scheme (`affine32`, `affine64`, `legacy`)
with `hash_kind="sha1"`; the permute-and-min loop is Numba, with a NumPy fallback. Default 14
bands x 8 rows (threshold ~0.72). Permutations, the S-curve and band keys: docs/stages/dedup.md.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from pipeline.core.config_errors import raise_if_problems
from pipeline.core.config_flags import flag
from pipeline.dedup.shingles import (
    HASH_KINDS,
    SHINGLE_KINDS,
    Backend,
    HashKind,
    ShingleBatch,
    ShingleKind,
    fmix32,
    fmix64,
    hash_shingles,
    resolve_backend,
    shingle_batch,
)

try:  # Numba fuses permute-and-min; the NumPy fallback gives identical values, slower.
    import numba
except ImportError:  # pragma: no cover - exercised on workers without numba
    numba = None

Scheme = Literal["affine32", "affine64", "legacy"]
SCHEMES: tuple[str, ...] = ("affine32", "affine64", "legacy")

MERSENNE_PRIME = (1 << 61) - 1
MAX_HASH_32 = (1 << 32) - 1
_MAX_SEED = (1 << 32) - 1  # np.random.RandomState accepts seeds in [0, 2^32 - 1]


@dataclass(frozen=True)
class MinHashConfig:
    """How documents are shingled, hashed, signed and banded for near-duplicate detection."""

    num_perm: int = field(default=112, metadata=flag(hidden=True))
    """Permutations (signature length); must equal bands * rows."""
    bands: int = 14
    """LSH bands: documents sharing any whole band are candidates (more bands: lower
    threshold, more candidates)."""
    rows: int = 8
    """Signature entries per band (more rows: higher threshold, steeper S-curve)."""
    shingle: ShingleKind = "word"
    """Shingle kind: `word` n-grams (default) or `char` n-grams (for scripts without spaces)."""
    n: int = field(default=5, metadata=flag("--shingle-size"))
    """Shingle size: words per word shingle, or characters per character shingle."""
    seed: int = field(default=1, metadata=flag("--minhash-seed"))
    """Seed of the permutations (datasketch's default is 1); signatures made with different
    seeds cannot be compared."""
    hash_kind: HashKind = field(default="fast", metadata=flag("--minhash-hash"))
    """Shingle hash: `fast` (vectorised polynomial hash) or `sha1` (datasketch's default
    hash; signatures then equal datasketch's, ~4x slower)."""
    scheme: Scheme = field(default="affine32", metadata=flag("--minhash-scheme"))
    """Permutation scheme, as datasketch names them: `affine32` (datasketch >= 2.0 default,
    uint32 values), `affine64` (uint64, for sets of ~1e8 shingles or more), `legacy`
    (datasketch < 2.0)."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        for name in ("num_perm", "bands", "rows", "n"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        if not problems and self.bands * self.rows != self.num_perm:
            problems.append(
                f"bands * rows must equal num_perm: {self.bands} * {self.rows} = "
                f"{self.bands * self.rows} != {self.num_perm} (set num_perm to bands * rows)"
            )
        if self.shingle not in SHINGLE_KINDS:
            problems.append(f"shingle must be one of {SHINGLE_KINDS}, got {self.shingle!r}")
        if self.hash_kind not in HASH_KINDS:
            problems.append(f"hash_kind must be one of {HASH_KINDS}, got {self.hash_kind!r}")
        if self.scheme not in SCHEMES:
            problems.append(f"scheme must be one of {SCHEMES}, got {self.scheme!r}")
        if not isinstance(self.seed, int) or not 0 <= self.seed <= _MAX_SEED:
            problems.append(f"seed must be an integer in [0, 2^32 - 1], got {self.seed!r}")
        raise_if_problems("MinHashConfig", problems)

    @classmethod
    def from_flags(cls, **fields: Any) -> MinHashConfig:
        """From command-line flags, where the signature length follows the bands and rows."""
        return cls(num_perm=fields["bands"] * fields["rows"], **fields)

    @property
    def threshold(self) -> float:
        """Jaccard similarity near the S-curve's steepest point: (1/bands)^(1/rows)."""
        return lsh_threshold(self.bands, self.rows)

    def candidate_probability(self, similarity: float) -> float:
        """Probability that two documents of this Jaccard similarity share a band."""
        return candidate_probability(similarity, self.bands, self.rows)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def lsh_threshold(bands: int, rows: int) -> float:
    """(1/bands)^(1/rows): the similarity at which the S-curve is steepest (approximately)."""
    return (1.0 / bands) ** (1.0 / rows)


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """1 - (1 - s^rows)^bands: P(two documents with Jaccard similarity s share a band)."""
    return 1.0 - (1.0 - similarity**rows) ** bands


def signature_dtype(scheme: Scheme) -> type[np.unsignedinteger]:
    return np.uint32 if scheme == "affine32" else np.uint64


def empty_value(scheme: Scheme) -> int:
    """The value of every entry of an empty document's signature (datasketch's initial state)."""
    return (1 << 64) - 1 if scheme == "affine64" else MAX_HASH_32


@functools.cache
def permutations(num_perm: int, seed: int, scheme: Scheme) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) permutation parameters datasketch draws for (num_perm, seed, scheme)."""
    gen = np.random.RandomState(seed)
    if scheme == "legacy":
        # datasketch draws a then b for each permutation in turn.
        pairs = np.array(
            [
                (
                    gen.randint(1, MERSENNE_PRIME, dtype=np.uint64),
                    gen.randint(0, MERSENNE_PRIME, dtype=np.uint64),
                )
                for _ in range(num_perm)
            ],
            dtype=np.uint64,
        )
        a, b = pairs[:, 0].copy(), pairs[:, 1].copy()
    else:
        width = 32 if scheme == "affine32" else 64
        dtype = signature_dtype(scheme)
        # Odd a: a * x + b mod 2^width is then a bijection.
        a = gen.randint(0, 1 << (width - 1), num_perm, dtype=dtype) * dtype(2) + dtype(1)
        b = gen.randint(0, 1 << width, num_perm, dtype=dtype)
    a.flags.writeable = False
    b.flags.writeable = False
    return a, b


# --- permute and take the minimum ---------------------------------------------------------


def _affine32_kernel(hv, offsets, a, b, out):  # pragma: no cover - compiled by numba
    for d in range(offsets.shape[0] - 1):
        row = out[d]
        for i in range(offsets[d], offsets[d + 1]):
            x = hv[i]
            for k in range(a.shape[0]):
                # uint32 * uint32 widens to 64 bits in Numba; truncating is the mod 2^32.
                row[k] = min(row[k], np.uint32(a[k] * x + b[k]))


def _affine64_kernel(hv, offsets, a, b, out):  # pragma: no cover - compiled by numba
    for d in range(offsets.shape[0] - 1):
        row = out[d]
        for i in range(offsets[d], offsets[d + 1]):
            x = hv[i]
            for k in range(a.shape[0]):
                row[k] = min(row[k], a[k] * x + b[k])


def _legacy_kernel(hv, offsets, a, b, prime, mask, out):  # pragma: no cover - numba
    for d in range(offsets.shape[0] - 1):
        row = out[d]
        for i in range(offsets[d], offsets[d + 1]):
            x = hv[i]
            for k in range(a.shape[0]):
                row[k] = min(row[k], ((a[k] * x + b[k]) % prime) & mask)


if numba is not None:
    _jit = numba.njit(cache=True, nogil=True)
    _KERNELS = {
        "affine32": _jit(_affine32_kernel),
        "affine64": _jit(_affine64_kernel),
        "legacy": _jit(_legacy_kernel),
    }
else:  # pragma: no cover
    _KERNELS = {}

# Rows of the NumPy path's (shingles x num_perm) temporary: ~1 MiB at 112 uint64 perms.
_NUMPY_CHUNK = 1024


def _permute(hv: np.ndarray, a: np.ndarray, b: np.ndarray, scheme: Scheme) -> np.ndarray:
    """pi_k(hv_i) for a chunk of prepared hashes: a (len(hv), num_perm) array."""
    phv = hv[:, None] * a + b
    if scheme == "legacy":
        phv = (phv % np.uint64(MERSENNE_PRIME)) & np.uint64(MAX_HASH_32)
    return phv


def _min_numpy(
    hv: np.ndarray, offsets: np.ndarray, a: np.ndarray, b: np.ndarray, scheme: Scheme, out
) -> None:
    for d in range(len(offsets) - 1):
        for start in range(int(offsets[d]), int(offsets[d + 1]), _NUMPY_CHUNK):
            stop = min(start + _NUMPY_CHUNK, int(offsets[d + 1]))
            np.minimum(out[d], _permute(hv[start:stop], a, b, scheme).min(axis=0), out=out[d])


def _prepare_hashes(hashes: np.ndarray, scheme: Scheme) -> np.ndarray:
    """Input hashes as the permutations take them (datasketch pre-mixes the affine schemes)."""
    if scheme == "affine32":
        return fmix32(hashes.astype(np.uint32, copy=False))
    if scheme == "affine64":
        return fmix64(hashes.astype(np.uint64, copy=False))
    return hashes.astype(np.uint64)


def minhash_from_hashes(
    hashes: np.ndarray,
    doc_offsets: np.ndarray,
    num_perm: int,
    seed: int,
    scheme: Scheme = "affine32",
    backend: Backend | None = None,
) -> np.ndarray:
    """Signatures (docs x num_perm) of documents whose shingle hashes are
    `hashes[doc_offsets[d]:doc_offsets[d+1]]` (32-bit values, 64-bit for affine64).

    A document without shingles gets datasketch's empty signature (every entry `empty_value`).
    `backend` None: Numba when installed, else NumPy.
    """
    backend = resolve_backend(backend)
    a, b = permutations(num_perm, seed, scheme)
    offsets = np.ascontiguousarray(doc_offsets, dtype=np.int64)
    out = np.full((len(offsets) - 1, num_perm), empty_value(scheme), dtype=signature_dtype(scheme))
    hv = np.ascontiguousarray(_prepare_hashes(hashes, scheme))
    if backend == "numba":
        if scheme == "legacy":
            prime, mask = np.uint64(MERSENNE_PRIME), np.uint64(MAX_HASH_32)
            _KERNELS["legacy"](hv, offsets, a, b, prime, mask, out)
        else:
            _KERNELS[scheme](hv, offsets, a, b, out)
    else:
        _min_numpy(hv, offsets, a, b, scheme, out)
    return out


def hash_bits(scheme: Scheme) -> int:
    """Width of the shingle hashes a scheme takes (datasketch: sha1_hash32 or sha1_hash64)."""
    return 64 if scheme == "affine64" else 32


def signatures_of_batch(
    batch: ShingleBatch, config: MinHashConfig, backend: Backend | None = None
) -> np.ndarray:
    """Signatures (docs x num_perm) of an already shingled batch."""
    hashes = hash_shingles(batch, config.hash_kind, hash_bits(config.scheme), backend)
    return minhash_from_hashes(
        hashes, batch.doc_offsets, config.num_perm, config.seed, config.scheme, backend
    )


def signatures(
    texts: list[str], config: MinHashConfig, backend: Backend | None = None
) -> np.ndarray:
    """Signatures (len(texts) x num_perm) of raw texts: normalise, shingle, hash, permute."""
    batch = shingle_batch(texts, config.shingle, config.n, backend)
    return signatures_of_batch(batch, config, backend)


# --- LSH bands ----------------------------------------------------------------------------

_BAND_MIX = np.uint64(0x9E3779B97F4A7C15)


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """int64 key per (document, band): a 64-bit hash of the band's `rows` signature entries.

    h = 0; for each entry v: h = fmix64(h * K + v)  (mod 2^64); then viewed as int64. Equal
    bands give equal keys; different bands collide with probability ~2^-64.
    """
    if sigs.shape[1] != bands * rows:
        raise ValueError(f"signatures have {sigs.shape[1]} entries, not bands * rows")
    cells = sigs.reshape(len(sigs), bands, rows).astype(np.uint64)
    h = np.zeros((len(sigs), bands), dtype=np.uint64)
    for r in range(rows):
        h = fmix64(h * _BAND_MIX + cells[:, :, r])
    return h.view(np.int64)


def text_band_keys(
    texts: list[str], config: MinHashConfig, backend: Backend | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(band keys (len(texts) x bands, int64), has_shingles (bool per text)) of raw texts.

    A text without shingles (no words) has an empty signature; its keys are meaningless and
    must not be bucketed (all empty texts would share every bucket).
    """
    batch = shingle_batch(texts, config.shingle, config.n, backend)
    sigs = signatures_of_batch(batch, config, backend)
    return band_keys(sigs, config.bands, config.rows), batch.shingle_counts > 0


def jaccard_estimate(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Fraction of equal entries: an unbiased estimate of the two sets' Jaccard similarity."""
    return float(np.count_nonzero(sig_a == sig_b)) / len(sig_a)
