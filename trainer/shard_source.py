"""Manifest-driven training data: which shards feed which mixture bucket, and a seeded,
resumable stream of documents per bucket and rank.

Mixture keys name sources or domains; held-out shards are never trained on. A bucket is read
one Parquet row group at a time, in an order seeded per epoch, ranks reading disjoint row
groups; `DocumentStream.state_dict()` is three integers. Details: docs/trainer.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tokenizer.manifest import Manifest, ManifestError, ShardEntry, load_manifests
from tokenizer.shard_format import DOMAINS, ShardReader, TokenBatch


class DataError(ValueError):
    """The training data does not fit the config; the message lists every problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        listing = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"training data problem(s) ({len(self.problems)}):\n{listing}")


def seed_for(*parts: object) -> int:
    """A 64-bit seed from any parts (stable across runs and machines, unlike hash())."""
    digest = hashlib.blake2b(repr(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass(frozen=True)
class Unit:
    """One row group of one shard: the unit of reading."""

    path: str
    """Absolute path (or URL) of the shard."""
    row_group: int
    """Row group index."""
    rows: int
    """Documents in the row group."""


@dataclass(frozen=True)
class Bucket:
    """The shards behind one mixture key."""

    key: str
    """The key as written in the mixture weights."""
    shards: tuple[ShardEntry, ...]
    """Training shards (paths absolute), sorted by path."""

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.shards)


@dataclass(frozen=True)
class TrainingData:
    """The resolved data of a run: the tokenizer, the buckets and the held-out shards."""

    manifest: Manifest
    """All training and held-out shards, as one manifest (absolute paths)."""
    buckets: dict[str, Bucket]
    """Mixture key -> bucket (every key of every stage)."""
    heldout: tuple[ShardEntry, ...]
    """Held-out shards (absolute paths), sorted by path."""

    @property
    def vocab_size(self) -> int:
        return self.manifest.tokenizer.vocab_size

    def special_id(self, name: str) -> int | None:
        token = self.manifest.tokenizer.special_tokens.get(name)
        return None if token is None else token.id


def _holdout(
    shards: Sequence[ShardEntry], per_source: int, problems: list[str]
) -> tuple[list[ShardEntry], list[ShardEntry]]:
    """(training, held out): the last `per_source` shards (by path) of each source held out."""
    by_source: dict[str, list[ShardEntry]] = {}
    for entry in shards:
        by_source.setdefault(entry.source, []).append(entry)
    train: list[ShardEntry] = []
    heldout: list[ShardEntry] = []
    for source, entries in sorted(by_source.items()):
        entries.sort(key=lambda e: e.path)
        if per_source and len(entries) <= per_source:
            problems.append(
                f"source {source!r} has {len(entries)} shard(s); holding out {per_source} "
                "leaves none to train on (write it with more --num-shards, or give "
                "eval.manifests instead)"
            )
            continue
        cut = len(entries) - per_source
        train += entries[:cut]
        heldout += entries[cut:]
    return train, heldout


def resolve_buckets(
    manifest: Manifest,
    shards: Sequence[ShardEntry],
    stage_weights: Sequence[Mapping[str, float]],
    problems: list[str],
) -> dict[str, Bucket]:
    """Mixture key -> its training shards; unknown keys, overlaps and empty buckets are
    problems."""
    sources = manifest.sources
    buckets: dict[str, Bucket] = {}
    for i, weights in enumerate(stage_weights):
        covered: dict[str, str] = {}  # source -> the key that takes it, within a stage
        for key in weights:
            if key in sources:
                members = {key}
            elif key in DOMAINS:
                members = {s for s, d in sources.items() if d == key}
            else:
                problems.append(
                    f"mixture key {key!r} is neither a source ({sorted(sources)}) nor a "
                    f"domain with data ({sorted(set(sources.values()))})"
                )
                continue
            for source in sorted(members):
                if source in covered:
                    problems.append(
                        f"stage {i}: source {source!r} is taken by both {covered[source]!r} and "
                        f"{key!r}; give each source to one key"
                    )
                covered[source] = key
            entries = tuple(
                sorted((e for e in shards if e.source in members), key=lambda e: e.path)
            )
            bucket = Bucket(key, entries)
            if bucket.tokens == 0:
                problems.append(f"mixture key {key!r} has no training tokens")
            buckets[key] = bucket
    return buckets


def open_training_data(
    manifests: Sequence[str],
    stage_weights: Sequence[Mapping[str, float]],
    eval_manifests: Sequence[str] = (),
    holdout_shards_per_source: int = 0,
) -> TrainingData:
    """Load the manifests (one tokenizer), split off held-out shards, resolve the buckets."""
    try:
        manifest = load_manifests(list(manifests) + list(eval_manifests))
    except ManifestError as exc:
        raise DataError([str(exc)]) from exc
    problems: list[str] = []
    absolute = [
        ShardEntry(manifest.shard_path(e), e.rows, e.tokens, e.bytes, e.sha256, e.source, e.domain)
        for e in manifest.shards
    ]
    if eval_manifests:
        eval_paths = {
            manifest.shard_path(e)
            for e in load_manifests(list(eval_manifests)).shards  # already checked above
        }
    else:
        eval_paths = set()
    candidates = [e for e in absolute if e.path not in eval_paths]
    train, heldout = _holdout(candidates, holdout_shards_per_source, problems)
    heldout += [e for e in absolute if e.path in eval_paths]
    buckets = resolve_buckets(manifest, train, stage_weights, problems)
    if problems:
        raise DataError(problems)
    return TrainingData(manifest, buckets, tuple(sorted(heldout, key=lambda e: e.path)))


def list_units(shards: Sequence[ShardEntry]) -> list[Unit]:
    """Every row group of the shards, in path order (reads each Parquet footer once)."""
    units = []
    for entry in shards:
        with ShardReader(entry.path) as reader:
            metadata = reader._file.metadata  # row counts per group, from the footer
            for i in range(reader.num_row_groups):
                units.append(Unit(entry.path, i, int(metadata.row_group(i).num_rows)))
    return units


def read_unit(unit: Unit) -> TokenBatch:
    with ShardReader(unit.path) as reader:
        return reader.read_row_group(unit.row_group)


class DocumentStream:
    """An endless, seeded stream of one bucket's documents for one rank (epoch after epoch)."""

    def __init__(self, bucket: Bucket, seed: int, rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
        self.bucket = bucket
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self._all_units = list_units(bucket.shards)
        if not self._all_units:
            raise DataError([f"mixture key {bucket.key!r}: its shards have no row groups"])
        self.epoch = 0
        self.unit_pos = 0
        self.doc_pos = 0
        self._epoch_units: list[Unit] | None = None
        self._loaded: tuple[int, int] | None = None  # (epoch, unit_pos) of _batch
        self._batch: TokenBatch | None = None
        self._order: np.ndarray | None = None

    # -- the epoch's plan -----------------------------------------------------------------

    @property
    def _split_units(self) -> bool:
        """Ranks take whole units (enough units for every rank), else every unit's documents
        are split among the ranks."""
        return len(self._all_units) >= self.world_size

    def _units_of_epoch(self) -> list[Unit]:
        if self._epoch_units is None:
            rng = np.random.default_rng(seed_for(self.seed, self.bucket.key, self.epoch))
            order = rng.permutation(len(self._all_units))
            units = [self._all_units[i] for i in order]
            if self._split_units:
                units = units[self.rank :: self.world_size]
            self._epoch_units = units
        return self._epoch_units

    def _load(self) -> None:
        unit = self._units_of_epoch()[self.unit_pos]
        batch = read_unit(unit)
        key = (self.seed, self.bucket.key, self.epoch, unit.path, unit.row_group)
        order = np.random.default_rng(seed_for(*key)).permutation(len(batch))
        if not self._split_units:
            order = order[self.rank :: self.world_size]
        self._batch, self._order = batch, order
        self._loaded = (self.epoch, self.unit_pos)

    def next_document(self) -> np.ndarray:
        """The next non-empty document's token ids (a view into the row group's array)."""
        epochs_without_tokens = 0
        while True:
            units = self._units_of_epoch()
            if self.unit_pos >= len(units):
                self.epoch += 1
                self.unit_pos = self.doc_pos = 0
                self._epoch_units = None
                epochs_without_tokens += 1
                if epochs_without_tokens > 1:
                    raise DataError(
                        [f"mixture key {self.bucket.key!r}: rank {self.rank} has no tokens"]
                    )
                continue
            if self._loaded != (self.epoch, self.unit_pos):
                self._load()
            assert self._order is not None and self._batch is not None
            if self.doc_pos >= len(self._order):
                self.unit_pos += 1
                self.doc_pos = 0
                continue
            doc = self._batch.tokens(int(self._order[self.doc_pos]))
            self.doc_pos += 1
            if doc.size:
                return doc

    # -- state --------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "unit_pos": self.unit_pos, "doc_pos": self.doc_pos}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.epoch = int(state["epoch"])
        self.unit_pos = int(state["unit_pos"])
        self.doc_pos = int(state["doc_pos"])
        self._epoch_units = None
        self._loaded = None


def heldout_documents(
    shards: Sequence[ShardEntry], domain: str, max_tokens: int
) -> tuple[np.ndarray, np.ndarray]:
    """The first documents (shards by path, rows in order) of `domain` up to `max_tokens`
    tokens, as (tokens, doc_offsets) ready for packing. A document that would cross the limit
    is cut at it."""
    parts: list[np.ndarray] = []
    lengths: list[int] = []
    total = 0
    for entry in shards:
        if entry.domain != domain or total >= max_tokens:
            continue
        with ShardReader(entry.path) as reader:
            for batch in reader.iter_batches():
                for i in range(len(batch)):
                    doc = batch.tokens(i)[: max_tokens - total]
                    if doc.size:
                        parts.append(doc)
                        lengths.append(doc.size)
                        total += doc.size
                    if total >= max_tokens:
                        break
                if total >= max_tokens:
                    break
    tokens = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return tokens, offsets
