"""MinHash signatures (pipeline/dedup/minhash.py): equal to datasketch's, the S-curve, banding."""

from __future__ import annotations

import gzip
import random

import numpy as np
import pytest
from datasketch import MinHash
from datasketch.hashfunc import sha1_hash64

from pipeline.core.config_errors import ConfigError
from pipeline.dedup import minhash as mh
from pipeline.dedup.minhash import (
    MinHashConfig,
    band_keys,
    candidate_probability,
    jaccard_estimate,
    lsh_threshold,
    minhash_from_hashes,
    signatures,
    signatures_of_batch,
    text_band_keys,
)
from pipeline.dedup.shingles import shingle_batch, shingles
from tests.helpers import require_shared

BACKENDS = [
    "numpy",
    pytest.param("numba", marks=pytest.mark.skipif(mh.numba is None, reason="no numba")),
]


@pytest.fixture(scope="module")
def page_texts() -> list[str]:
    """Main-content text of 40 real pages (every 13th, so several sources and languages)."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    paths = [
        p
        for p in sorted(require_shared("html").rglob("*"))
        if p.suffix == ".html" or p.name.endswith(".html.gz")
    ]
    texts = []
    for path in paths[::13]:
        body = path.read_bytes()
        if path.suffix == ".gz":
            body = gzip.decompress(body)
        texts.append(
            extract_plain_text(bytes_to_str(body, detect_encoding(body)), main_content=True)
        )
    return texts


def datasketch_signature(
    shingle_strings: list[str], num_perm: int, seed: int, scheme: str
) -> np.ndarray:
    kwargs = {"hashfunc": sha1_hash64} if scheme == "affine64" else {}
    m = MinHash(num_perm=num_perm, seed=seed, scheme=scheme, **kwargs)
    if shingle_strings:
        m.update_batch([s.encode("utf-8") for s in shingle_strings])
    return m.digest()


# --- config -------------------------------------------------------------------------------


def test_default_config_and_threshold():
    config = MinHashConfig()
    assert (config.num_perm, config.bands, config.rows) == (112, 14, 8)
    assert config.threshold == pytest.approx((1 / 14) ** (1 / 8))
    assert config.threshold == pytest.approx(0.719, abs=1e-3)


def test_config_collects_every_problem():
    with pytest.raises(ConfigError) as err:
        MinHashConfig(num_perm=100, shingle="sentence", hash_kind="md5", scheme="x", seed=-1)
    problems = err.value.problems
    assert len(problems) == 5, problems
    assert any("bands * rows must equal num_perm" in p for p in problems)
    assert isinstance(err.value, ValueError)
    with pytest.raises(ConfigError, match="rows must be a positive integer"):
        MinHashConfig(num_perm=0, bands=0, rows=0)


def test_s_curve_values_in_the_docstring():
    # The table in pipeline/dedup/minhash.py's docstring, for 14 bands x 8 rows.
    table = {0.5: 0.053, 0.6: 0.211, 0.7: 0.565, 0.75: 0.772, 0.8: 0.924, 0.85: 0.988}
    for s, p in table.items():
        assert candidate_probability(s, 14, 8) == pytest.approx(p, abs=6e-4)
    assert candidate_probability(0.9, 14, 8) == pytest.approx(0.9996, abs=1e-4)
    curve = [candidate_probability(s / 100, 14, 8) for s in range(101)]
    assert curve == sorted(curve) and curve[0] == 0 and curve[-1] == 1
    # Steepest near the threshold (the S-curve's inflection is at ((r-1)/(br-1))^(1/r)).
    steepest = int(np.argmax(np.diff(curve)))
    assert abs(steepest / 100 - lsh_threshold(14, 8)) < 0.04


def test_s_curve_matches_banding_of_simulated_signatures():
    """Signatures agreeing entry-wise with probability s share a band as often as the formula
    says (the banding code, not just the formula)."""
    rng = np.random.default_rng(0)
    pairs = 4000
    for s in (0.6, 0.72, 0.85):
        a = rng.integers(0, 2**32, (pairs, 112), dtype=np.uint32)
        b = np.where(rng.random((pairs, 112)) < s, a, a ^ np.uint32(1))
        shared = (band_keys(a, 14, 8) == band_keys(b, 14, 8)).any(axis=1).mean()
        p = candidate_probability(s, 14, 8)
        assert abs(shared - p) < 4 * np.sqrt(p * (1 - p) / pairs) + 1e-3, (s, shared, p)


def test_band_keys_equal_exactly_when_bands_equal():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 2**32, (1, 112), dtype=np.uint32)
    b = a.copy()
    b[0, 8 * 3 + 5] ^= 1  # one entry of band 3
    ka, kb = band_keys(a, 14, 8), band_keys(b, 14, 8)
    assert ka.dtype == np.int64 and ka.shape == (1, 14)
    assert [i for i in range(14) if ka[0, i] != kb[0, i]] == [3]
    with pytest.raises(ValueError, match="bands \\* rows"):
        band_keys(a, 10, 8)


# --- equality with datasketch -------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("scheme", ["affine32", "affine64", "legacy"])
@pytest.mark.parametrize(("num_perm", "seed"), [(112, 1), (64, 7), (128, 42)])
def test_sha1_signatures_equal_datasketch(page_texts, backend, scheme, num_perm, seed):
    config = MinHashConfig(
        num_perm=num_perm, bands=num_perm // 8, rows=8, seed=seed, hash_kind="sha1", scheme=scheme
    )
    texts = [*page_texts[:12], "", "two words"]
    batch = shingle_batch(texts, "word", 5, backend)
    sigs = signatures_of_batch(batch, config, backend)
    assert sigs.dtype == (np.uint32 if scheme == "affine32" else np.uint64)
    for doc in range(len(texts)):
        expected = datasketch_signature(batch.shingle_strings(doc), num_perm, seed, scheme)
        assert np.array_equal(sigs[doc], expected), (doc, texts[doc][:60])


def test_char_shingle_signatures_equal_datasketch(page_texts):
    config = MinHashConfig(num_perm=64, bands=16, rows=4, shingle="char", n=9, hash_kind="sha1")
    texts = page_texts[:4]
    sigs = signatures(texts, config)
    for doc, text in enumerate(texts):
        expected = datasketch_signature(shingles(text, "char", 9), 64, 1, "affine32")
        assert np.array_equal(sigs[doc], expected)


@pytest.mark.skipif(mh.numba is None, reason="no numba")
@pytest.mark.parametrize("scheme", ["affine32", "affine64", "legacy"])
def test_numba_and_numpy_permutations_agree(scheme):
    rng = np.random.default_rng(2)
    hashes = rng.integers(0, 2**32, 5000, dtype=np.uint64)
    offsets = np.array([0, 0, 1, 2500, 2501, 5000])  # an empty document too
    a = minhash_from_hashes(hashes, offsets, 96, 3, scheme, "numpy")
    b = minhash_from_hashes(hashes, offsets, 96, 3, scheme, "numba")
    assert np.array_equal(a, b)
    assert (a[0] == mh.empty_value(scheme)).all()


# --- the fast hash ------------------------------------------------------------------------


def perturb(text: str, fraction: float, rng: random.Random) -> str:
    words = text.split()
    for i in rng.sample(range(len(words)), int(len(words) * fraction)):
        words[i] = f"changed{rng.randrange(10**6)}"
    return " ".join(words)


def test_fast_and_sha1_estimate_jaccard_alike(page_texts):
    """Both hashes give unbiased Jaccard estimates within sampling error of the true value."""
    rng = random.Random(3)
    long_texts = [t for t in page_texts if len(t.split()) > 400][:8]
    assert len(long_texts) >= 5
    num_perm = 256
    errors = {"fast": [], "sha1": []}
    for text in long_texts:
        for fraction in (0.01, 0.05, 0.15):
            copy = perturb(text, fraction, rng)
            a, b = set(shingles(text)), set(shingles(copy))
            true = len(a & b) / len(a | b)
            sigma = np.sqrt(true * (1 - true) / num_perm)
            for kind in errors:
                config = MinHashConfig(num_perm=num_perm, bands=32, rows=8, hash_kind=kind)
                sa, sb = signatures([text, copy], config)
                error = jaccard_estimate(sa, sb) - true
                assert abs(error) < 4 * sigma + 1e-9, (kind, fraction, true, error)
                errors[kind].append(error / max(sigma, 1e-9))
    for kind, z in errors.items():  # no bias: mean standardised error near 0
        assert abs(np.mean(z)) < 4 / np.sqrt(len(z)) + 0.1, kind


def test_empty_text_has_no_bands(page_texts):
    keys, has_shingles = text_band_keys(["", page_texts[0], " !! "], MinHashConfig())
    assert has_shingles.tolist() == [False, True, False]
    assert keys.shape == (3, 14)
    sigs = signatures([""], MinHashConfig())
    assert (sigs == mh.empty_value("affine32")).all()


def test_signature_independent_of_batch(page_texts):
    config = MinHashConfig()
    alone = signatures([page_texts[3]], config)[0]
    batched = signatures([page_texts[5], "", page_texts[3]], config)[2]
    assert np.array_equal(alone, batched)
