"""Manifest-driven data, the mixture sampler and the packed batches: proportions, stages,
disjoint ranks, fingerprint checks and exact resumption from state_dict()."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import random_info, random_run
from trainer.batches import PackedBatches
from trainer.mixture import MixtureSampler, Stage
from trainer.packing import IGNORE_INDEX
from trainer.shard_source import DataError, DocumentStream, open_training_data

# DeepSeekMath sec. 2.3: 56% math corpus, 4% AlgebraicStack, 10% arXiv, 20% GitHub code, 10% text
PAPER = {"openwebmath": 56, "algebraic_stack": 4, "arxiv": 10, "github": 20, "wiki": 10}
DOMAINS = {
    "openwebmath": "math",
    "algebraic_stack": "math",
    "arxiv": "math",
    "github": "code",
    "wiki": "text",
}


@pytest.fixture(scope="module")
def five_sources(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    root = tmp_path_factory.mktemp("five")
    return [
        str(random_run(root / name, name, DOMAINS[name], 120, 3, seed=i))
        for i, name in enumerate(PAPER)
    ]


def sampler_for(manifests, stages, rank=0, world=1, seed=0, bos=0, eos=1) -> MixtureSampler:
    data = open_training_data(manifests, [s.weights for s in stages])
    streams = {k: DocumentStream(b, seed, rank, world) for k, b in data.buckets.items()}
    return MixtureSampler(stages, streams, bos, eos)


def test_measured_proportions_follow_the_paper_weights(five_sources: list[str]) -> None:
    sampler = sampler_for(five_sources, [Stage(dict(PAPER), 0)])
    drawn = 0
    while drawn < 200_000:
        doc, _ = sampler.next_document()
        drawn += doc.size
    total = sum(sampler.total_tokens.values())
    for key, weight in PAPER.items():
        share = sampler.total_tokens[key] / total
        assert abs(share - weight / 100) < 0.005, (key, share)  # within half a point


def test_domain_keys_and_two_stages_switch_at_the_token_budget(five_sources: list[str]) -> None:
    stages = [Stage({"code": 1}, 20_000), Stage({"math": 150, "code": 400}, 0)]
    sampler = sampler_for(five_sources, stages)
    seen: list[tuple[str, int]] = []
    while sum(sampler.total_tokens.values()) < 60_000:
        _doc, key = sampler.next_document()
        seen.append((key, sampler.stage))
    first = [k for k, s in seen if s == 0]
    assert set(first) == {"code"}
    code_in_stage0 = sum(sampler.total_tokens.values()) - sum(sampler.stage_tokens.values())
    assert 20_000 <= code_in_stage0 < 20_000 + 302  # the crossing document ends the stage
    share = sampler.stage_tokens["math"] / sum(sampler.stage_tokens.values())
    assert abs(share - 150 / 550) < 0.01


def test_unknown_keys_overlaps_and_other_tokenizers_are_clear_errors(
    five_sources: list[str], tmp_path: Path
) -> None:
    with pytest.raises(DataError) as info:
        open_training_data(five_sources, [{"python": 1, "math": 1, "arxiv": 1}])
    text = str(info.value)
    assert "mixture key 'python' is neither a source" in text
    assert "source 'arxiv' is taken by both 'math' and 'arxiv'" in text
    other = random_run(
        tmp_path / "other", "other", "math", 5, 1, 9, random_info(fingerprint="cd" * 32)
    )
    with pytest.raises(DataError, match="different tokenizers"):
        open_training_data([five_sources[0], str(other)], [{"math": 1}])
    with pytest.raises(DataError, match="leaves none to train on"):
        open_training_data([str(other)], [{"math": 1}], holdout_shards_per_source=1)


def test_holdout_shards_are_never_trained_on(five_sources: list[str]) -> None:
    data = open_training_data(five_sources, [{"math": 1, "code": 1}], holdout_shards_per_source=1)
    trained = {s.path for b in data.buckets.values() for s in b.shards}
    held = {s.path for s in data.heldout}
    assert held and not trained & held
    assert {s.path.rsplit("/", 1)[1] for s in data.heldout} == {"shard-00002-of-00003.parquet"}


def test_ranks_read_disjoint_documents(five_sources: list[str]) -> None:
    def docs_of(rank: int, world: int, count: int) -> list[bytes]:
        data = open_training_data(five_sources[:1], [{"openwebmath": 1}])
        stream = DocumentStream(data.buckets["openwebmath"], 5, rank, world)
        return [stream.next_document().tobytes() for _ in range(count)]

    everything = set(docs_of(0, 1, 120))
    assert len(everything) == 120  # one epoch: every document once
    r0, r1 = docs_of(0, 2, 50), docs_of(1, 2, 50)
    assert not set(r0) & set(r1)
    assert set(r0) | set(r1) <= everything
    # fewer units (row groups) than ranks: documents are split inside each unit instead
    data = open_training_data(five_sources[:1], [{"openwebmath": 1}])
    units = sum(1 for _ in DocumentStream(data.buckets["openwebmath"], 0)._all_units)
    w = units + 1
    parts = [
        {DocumentStream(data.buckets["openwebmath"], 0, r, w).next_document().tobytes()}
        for r in range(w)
    ]
    assert len(set().union(*parts)) == w


def batches_for(manifests, algorithm="best_fit", seed=0) -> PackedBatches:
    sampler = sampler_for(manifests, [Stage({"math": 3, "code": 1}, 10_000), Stage({"text": 1}, 0)])
    return PackedBatches(sampler, 128, 3, 2, algorithm, buffer_sequences=8, seed=seed)


@pytest.mark.parametrize("algorithm", ["best_fit", "concat"])
def test_state_dict_save_rebuild_reload_gives_the_next_batches(
    five_sources: list[str], algorithm: str, tmp_path: Path
) -> None:
    """torchtitan's data-loader test: run, save, run on; rebuild, load, the same batches."""
    first = batches_for(five_sources, algorithm)
    for _ in range(37):  # past several buffers and the stage change
        first.next_micro_batch()
    path = tmp_path / "state.pt"
    torch.save(first.state_dict(), path)
    expected = [first.next_micro_batch() for _ in range(30)]
    rebuilt = batches_for(five_sources, algorithm)
    rebuilt.load_state_dict(torch.load(path, weights_only=True))
    got = [rebuilt.next_micro_batch() for _ in range(30)]
    for a, b in zip(expected, got, strict=True):
        for name in ("input_ids", "labels", "position_ids", "cu_seqlens"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert a.stage == b.stage
    assert {mb.stage for mb in expected} == {1}


def test_micro_batches_mask_documents_and_seeds_matter(five_sources: list[str]) -> None:
    batches = batches_for(five_sources)
    mb = batches.next_micro_batch()
    assert mb.input_ids.shape == (3, 128) and mb.input_ids.dtype == np.int64
    # position ids restart at every document; cu_seqlens are those boundaries, flattened
    starts = np.flatnonzero(mb.position_ids.reshape(-1) == 0)
    np.testing.assert_array_equal(mb.cu_seqlens[:-1], starts)
    assert mb.cu_seqlens[-1] == 3 * 128 and mb.max_seqlen <= 128
    # labels are the next token inside a document, -100 at each document's last token
    flat_ids, flat_labels = mb.input_ids.reshape(-1), mb.labels.reshape(-1)
    for s, e in zip(mb.cu_seqlens[:-1], mb.cu_seqlens[1:], strict=True):
        np.testing.assert_array_equal(
            flat_labels[s : e - 1][flat_labels[s : e - 1] != -100],
            flat_ids[s + 1 : e][flat_labels[s : e - 1] != -100],
        )
        assert flat_labels[e - 1] == IGNORE_INDEX
    # eos (id 1) closes documents; another seed draws another order
    assert any((batches.next_micro_batch().input_ids == 1).any() for _ in range(5))
    other = batches_for(five_sources, seed=1).next_micro_batch()
    assert not np.array_equal(other.input_ids, mb.input_ids)
