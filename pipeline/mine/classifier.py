"""The math classifier: fastText supervised, trained on a positive and a negative seed.

Defaults are DeepSeekMath section 2.1's settings. Writes model.bin, scoring_table.npz and
model.json (FORMAT.md, "Math classifier"); `MathScorer.logit` is fastText's exact log-odds, read
from the scoring table. Held-out split, reproducibility, scores: docs/stages/mine.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from apache_beam.io.filesystems import FileSystems

from pipeline.core.config_errors import raise_if_problems
from pipeline.core.config_flags import flag
from pipeline.core.run_output import read_json, write_json_atomic
from pipeline.mine.classifier_table import ClassifierTable
from pipeline.mine.classifier_text import (
    DEFAULT_MAX_CHARS,
    PREPROCESSING_VERSION,
    classifier_line_bytes,
    classifier_text,
    preprocessing_description,
)
from pipeline.mine.workdir_files import download_file, open_raw, upload_file
from pipeline.shards.text_sources import (
    BadRecord,
    SourceDocument,
    SourceFields,
    iter_file_documents,
    local_inputs,
)

LABEL_MATH = "__label__math"
LABEL_OTHER = "__label__other"
MODEL_FILE = "model.bin"
METADATA_FILE = "model.json"
METADATA_FORMAT = "mathcorpus.classifier"
METADATA_VERSION = 2
TABLE_FILE = "scoring_table.npz"
# Training lines are spread over this many bucket files by a seeded hash, then each bucket is
# shuffled in memory: a deterministic shuffle of any seed size with bounded memory.
SHUFFLE_BUCKETS = 64
# The two parts of a training sample (file name prefixes: train-NNNNN.txt, heldout-NNNNN.txt).
TRAIN_PART = "train"
HELDOUT_PART = "heldout"


@dataclass(frozen=True)
class ClassifierConfig:
    """fastText settings (defaults: DeepSeekMath section 2.1) and the seed split."""

    dim: int = 256
    """Vector dimension (paper: 256)."""
    lr: float = 0.1
    """Learning rate (paper: 0.1)."""
    word_ngrams: int = 3
    """Longest word n-gram (paper: 3)."""
    min_count: int = 3
    """Words seen fewer times are dropped from the vocabulary (paper: 3)."""
    epoch: int = 3
    """Passes over the seed (paper: 3)."""
    bucket: int = 2_000_000
    """Hash buckets for word n-grams (fastText's default)."""
    threads: int = 1
    """Training threads; 1 gives a byte-identical model for the same seed (docs/stages/mine.md)."""
    seed: int = field(default=0, metadata=flag("--classifier-seed"))
    """Seeds fastText's RNG, the shuffle of the training lines and the held-out split."""
    holdout_fraction: float = 0.1
    """Share of the seed held out for precision/recall (not trained on)."""
    max_chars: int = DEFAULT_MAX_CHARS
    """Characters of a page the classifier sees (classifier_text, step 1)."""
    threshold: float = field(default=0.5, metadata=flag(hidden=True))
    """Probability at which a held-out page counts as predicted math (metrics only)."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        for name in ("dim", "word_ngrams", "epoch", "bucket", "threads", "max_chars"):
            if getattr(self, name) < 1:
                problems.append(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.min_count < 1:
            problems.append(f"min_count: must be >= 1, got {self.min_count}")
        if not self.lr > 0:
            problems.append(f"lr: must be > 0, got {self.lr}")
        if not 0.0 <= self.holdout_fraction < 1.0:
            problems.append(f"holdout_fraction: must be in [0, 1), got {self.holdout_fraction}")
        if not 0.0 < self.threshold < 1.0:
            problems.append(f"threshold: must be in (0, 1), got {self.threshold}")
        raise_if_problems("classifier config", problems)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class SeedDoc:
    """One seed example: a stable key (doc_id, else content id) and its raw text."""

    key: str
    text: str


def seeded_fraction(seed: int, purpose: str, key: str) -> float:
    """A uniform number in [0, 1) from a key: the same key always lands the same way."""
    digest = hashlib.blake2b(f"{seed}:{purpose}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def read_seed(
    path: str, fields: SourceFields | None = None, fmt: str = "auto"
) -> Iterator[SeedDoc | BadRecord]:
    """Seed documents from a pool folder, Parquet or JSONL file(s) (local paths).

    The key is the pool's `doc_id`, the id field when `fields.id_field` names one, else the
    content id. Empty texts are skipped; unusable records come out as BadRecord.
    """
    fields = fields or SourceFields()
    if not os.path.exists(path):
        raise FileNotFoundError(f"seed source {path} does not exist")
    for full, _relative, file_fmt in local_inputs(path, fmt):
        if file_fmt == "tree":
            raise ValueError(f"{path}: not a pool folder, .jsonl[.gz] or .parquet seed source")
        with open(full, "rb") as fh:
            for item in iter_file_documents(fh, full, file_fmt, fields):
                if isinstance(item, BadRecord):
                    yield item
                elif isinstance(item, SourceDocument) and item.text.strip():
                    yield SeedDoc(item.doc_id, item.text)


@dataclass
class SeedSplit:
    """Counts of what went into the training and held-out files."""

    train_positives: int = 0
    train_negatives: int = 0
    heldout_positives: int = 0
    heldout_negatives: int = 0
    duplicate_keys: int = 0
    """Examples whose key was already used (the first one counts)."""
    negatives_excluded: int = 0
    """Negatives whose key is also a positive (dropped: a page cannot be both)."""

    def to_json(self) -> dict[str, int]:
        return asdict(self)


def training_line(is_math: bool, text: str, max_chars: int) -> str:
    """The fastText training line of one example: `__label__math <classifier text>\\n`."""
    return f"{LABEL_MATH if is_math else LABEL_OTHER} {classifier_text(text, max_chars)}\n"


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one example goes in the training sample, from a seeded hash of its key."""

    order: float
    """Its place in the training order (lines sorted by (order, line): a seeded shuffle)."""
    heldout: bool
    """Held out for precision/recall instead of trained on."""

    @property
    def bucket(self) -> int:
        """Which of `SHUFFLE_BUCKETS` order ranges holds it (buckets in index order, each sorted
        by order, give the whole sample sorted by order)."""
        return min(SHUFFLE_BUCKETS - 1, int(self.order * SHUFFLE_BUCKETS))


def placement(key: str, config: ClassifierConfig) -> Placement:
    order = seeded_fraction(config.seed, "order", key)
    held = seeded_fraction(config.seed, "holdout", key) < config.holdout_fraction
    return Placement(order, held)


@dataclass(frozen=True, slots=True)
class ExampleChoice:
    """Which of the examples sharing one key is kept, and what the others were."""

    is_math: bool
    line: str
    duplicates: int
    """Other examples with the same label (dropped as duplicate keys)."""
    negatives_excluded: int
    """Negatives dropped because the key is a positive (a page cannot be both)."""


def choose_example(examples: Sequence[tuple[bool, str]]) -> ExampleChoice:
    """One (is_math, line) per key: a positive wins over negatives, and among the same label the
    smallest line (an order that does not depend on which file or worker came first)."""
    positives = [line for is_math, line in examples if is_math]
    negatives = [line for is_math, line in examples if not is_math]
    if positives:
        return ExampleChoice(True, min(positives), len(positives) - 1, len(negatives))
    return ExampleChoice(False, min(negatives), len(negatives) - 1, 0)


def sample_file_name(part: str, bucket: int) -> str:
    """`train-00042.txt`: name order is bucket order, so the files concatenate in order."""
    return f"{part}-{bucket:05d}.txt"


def write_training_files(
    positives: Iterable[SeedDoc],
    negatives: Iterable[SeedDoc],
    train_path: str,
    heldout_path: str,
    config: ClassifierConfig,
) -> SeedSplit:
    """fastText training and held-out files (`__label__math text` lines, local), shuffled by a
    seeded hash of the key. Positives are read first; a negative with a positive's key is
    dropped. The mining loop builds the same files with Beam (`BuildTrainingSample`)."""
    split = SeedSplit()
    seen: set[str] = set()
    positive_keys: set[str] = set()
    with (
        tempfile.TemporaryDirectory(dir=os.path.dirname(train_path) or ".") as tmp,
        contextlib.ExitStack() as stack,
    ):
        buckets = [
            stack.enter_context(open(os.path.join(tmp, f"b{i:03d}"), "w", encoding="utf-8"))
            for i in range(SHUFFLE_BUCKETS)
        ]
        heldout_lines: list[tuple[float, str]] = []
        for math_label, docs in ((True, positives), (False, negatives)):
            for doc in docs:
                if not math_label and doc.key in positive_keys:
                    split.negatives_excluded += 1
                    continue
                if doc.key in seen:
                    split.duplicate_keys += 1
                    continue
                seen.add(doc.key)
                if math_label:
                    positive_keys.add(doc.key)
                line = training_line(math_label, doc.text, config.max_chars)
                place = placement(doc.key, config)
                if place.heldout:
                    heldout_lines.append((place.order, line))
                    split.heldout_positives += math_label
                    split.heldout_negatives += not math_label
                else:
                    # Lines sorted by (bucket, order) are sorted by order: a global shuffle.
                    buckets[place.bucket].write(f"{place.order!r}\t{line}")
                    split.train_positives += math_label
                    split.train_negatives += not math_label
        for fh in buckets:
            fh.flush()
        with open(train_path, "w", encoding="utf-8") as out:
            for i in range(SHUFFLE_BUCKETS):
                with open(os.path.join(tmp, f"b{i:03d}"), encoding="utf-8") as fh:
                    rows = [r.split("\t", 1) for r in fh]
                rows.sort(key=lambda r: (float(r[0]), r[1]))
                out.writelines(r[1] for r in rows)
    heldout_lines.sort()
    with open(heldout_path, "w", encoding="utf-8") as out:
        out.writelines(line for _, line in heldout_lines)
    return split


def train_fasttext(train_path: str, config: ClassifierConfig) -> Any:
    """Train the supervised model on a prepared training file."""
    import fasttext

    return fasttext.train_supervised(
        input=train_path,
        dim=config.dim,
        lr=config.lr,
        wordNgrams=config.word_ngrams,
        minCount=config.min_count,
        epoch=config.epoch,
        bucket=config.bucket,
        thread=config.threads,
        seed=config.seed,
        loss="softmax",
        verbose=0,
    )


def _train_and_save(train_path: str, config: ClassifierConfig, model_path: str) -> None:
    train_fasttext(train_path, config).save_model(model_path)


def train_fasttext_isolated(train_path: str, config: ClassifierConfig, model_path: str) -> Any:
    """Train in a fresh process, save to `model_path`, load it here.

    Why: the same training file and settings (one thread) gave a model in a fresh process but
    stopped with fastText's "Encountered NaN" inside a driver that had run the loop's earlier
    steps (measured on the object-store test's pool; fastText's result depended on the process's
    history). A spawned process starts clean, so the model depends only on its inputs.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import fasttext

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        pool.submit(_train_and_save, train_path, config, model_path).result()
    return fasttext.load_model(model_path)


class MathScorer:
    """A loaded model: the log-odds that a page is math (docs/stages/mine.md).

    Scoring goes through the model's `ClassifierTable` (pipeline/mine/classifier_table.py): the same
    log-odds as fastText's hidden vector dotted with the label difference, from an 8 MB table of
    per-row scalars instead of the 2 GB input matrix."""

    def __init__(self, table: ClassifierTable, max_chars: int = DEFAULT_MAX_CHARS) -> None:
        self.table = table
        self.max_chars = max_chars

    @classmethod
    def from_model(
        cls, model: Any, max_chars: int = DEFAULT_MAX_CHARS, model_sha256: str = ""
    ) -> MathScorer:
        """From a loaded fastText model (builds the table: ~3 s at 2M buckets)."""
        table = ClassifierTable.from_fasttext(model, LABEL_MATH, LABEL_OTHER, model_sha256)
        return cls(table, max_chars)

    @classmethod
    def load(cls, model_dir: str) -> MathScorer:
        """Load a model folder (any Beam file system) and check its metadata.

        Reads `scoring_table.npz` into memory when the metadata names one built from this
        `model.bin` (sha256 checked), so fastText's 2 GB model is never loaded; otherwise (a
        folder written before the table existed) copies `model.bin` to a temporary local file
        (fastText loads only local paths) and builds the table from it."""
        import fasttext

        meta = read_json(FileSystems.join(model_dir, METADATA_FILE))
        version = meta["preprocessing"]["version"]
        if version != PREPROCESSING_VERSION:
            raise ValueError(
                f"{model_dir}: trained with preprocessing version {version}, this code has "
                f"{PREPROCESSING_VERSION}; retrain the classifier"
            )
        max_chars = int(meta["preprocessing"]["max_chars"])
        table_meta = meta.get("scoring_table")
        table_path = FileSystems.join(model_dir, table_meta["file"]) if table_meta else ""
        if table_path and FileSystems.exists(table_path):
            with open_raw(table_path) as fh:
                table = ClassifierTable.load(io.BytesIO(fh.read()), name=table_path)
            if table.model_sha256 != meta["sha256"]:
                raise ValueError(
                    f"{model_dir}: {table_meta['file']} was built from a model with sha256 "
                    f"{table.model_sha256}, model.json names {meta['sha256']}"
                )
            return cls(table, max_chars)
        with tempfile.TemporaryDirectory(prefix="mathcorpus-model-") as tmp:
            local = os.path.join(tmp, MODEL_FILE)
            download_file(FileSystems.join(model_dir, MODEL_FILE), local)
            model = fasttext.load_model(local)
        return cls.from_model(model, max_chars, meta["sha256"])

    def logit_of_line(self, line: str) -> float:
        """Log-odds of math for an already preprocessed line."""
        return self.table.logit_of_line(line)

    def logit(self, text: str) -> float:
        return self.table.logit_of_bytes(classifier_line_bytes(text, self.max_chars))


def probability(logit: float) -> float:
    """sigmoid(logit), without overflow for large |logit|."""
    if logit >= 0:
        return 1.0 / (1.0 + math.exp(-logit))
    e = math.exp(logit)
    return e / (1.0 + e)


@dataclass(frozen=True)
class Metrics:
    """Precision and recall of the math label at a threshold."""

    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int

    @property
    def precision(self) -> float | None:
        predicted = self.true_positives + self.false_positives
        return self.true_positives / predicted if predicted else None

    @property
    def recall(self) -> float | None:
        actual = self.true_positives + self.false_negatives
        return self.true_positives / actual if actual else None

    def to_json(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 4)

        return {
            "precision": r(self.precision),
            "recall": r(self.recall),
            "tp": self.true_positives,
            "fp": self.false_positives,
            "fn": self.false_negatives,
            "tn": self.true_negatives,
        }


def metrics_of(pairs: Iterable[tuple[bool, float]], threshold: float) -> Metrics:
    """(is_math, probability) pairs -> counts at the threshold."""
    tp = fp = fn = tn = 0
    for is_math, p in pairs:
        predicted = p >= threshold
        tp += is_math and predicted
        fp += (not is_math) and predicted
        fn += is_math and not predicted
        tn += (not is_math) and not predicted
    return Metrics(tp, fp, fn, tn)


def ranking_metrics(pairs: Sequence[tuple[bool, float]]) -> dict[str, float | None]:
    """Threshold-free figures (the loop ranks pages, it does not threshold them):
    R-precision (precision among the top R pages, R = number of math pages, which equals the
    recall there) and ROC AUC (the chance that a math page outranks a non-math page)."""
    math_scores = [p for m, p in pairs if m]
    other = [p for m, p in pairs if not m]
    if not math_scores or not other:
        return {"r_precision": None, "roc_auc": None}
    ranked = sorted(pairs, key=lambda x: -x[1])
    top = ranked[: len(math_scores)]
    r_precision = sum(1 for m, _ in top if m) / len(math_scores)
    wins = 0.0
    for p in math_scores:
        wins += sum(1.0 if p > q else 0.5 if p == q else 0.0 for q in other)
    return {
        "r_precision": round(r_precision, 4),
        "roc_auc": round(wins / (len(math_scores) * len(other)), 4),
    }


def labelled_pairs(scorer: MathScorer, lines: Iterable[str]) -> Iterator[tuple[bool, float]]:
    """(is_math, probability) of `__label__X text` lines."""
    for line in lines:
        label, _, text = line.rstrip("\n").partition(" ")
        yield label == LABEL_MATH, probability(scorer.logit_of_line(text))


def evaluate_file(scorer: MathScorer, labelled_path: str, threshold: float) -> Metrics:
    """Metrics of a model on a local file of `__label__X text` lines."""
    with open(labelled_path, encoding="utf-8") as fh:
        return metrics_of(labelled_pairs(scorer, fh), threshold)


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def train_and_publish(
    train_path: str,
    heldout_lines: Callable[[], Iterable[str]],
    out_dir: str,
    config: ClassifierConfig,
    seed: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train on a local training file and write the model folder to `out_dir` (any Beam file
    system); returns the metadata.

    fastText trains from and saves to local paths, so the model and its scoring table are made
    in a temporary folder and then copied: `model.bin`, then `scoring_table.npz`, each through
    a temporary name and a rename, and `model.json` (with `extra`, e.g. the mining loop's
    inputs fingerprint) last: a folder with `model.json` holds a finished model.
    `heldout_lines` gives the held-out `__label__X text` lines (read once)."""
    with tempfile.TemporaryDirectory(prefix="mathcorpus-classifier-") as tmp:
        started = time.monotonic()
        local_model = os.path.join(tmp, MODEL_FILE)
        model = train_fasttext_isolated(train_path, config, local_model)
        train_s = time.monotonic() - started
        model_sha256 = file_sha256(local_model)
        scorer = MathScorer.from_model(model, config.max_chars, model_sha256)
        local_table = os.path.join(tmp, TABLE_FILE)
        table_sha256 = scorer.table.save(local_table)
        heldout = metrics_of(labelled_pairs(scorer, heldout_lines()), config.threshold)
        train_metrics = evaluate_file(scorer, train_path, config.threshold)
        meta = {
            "format": METADATA_FORMAT,
            "format_version": METADATA_VERSION,
            "model_file": MODEL_FILE,
            "sha256": model_sha256,
            "scoring_table": {"file": TABLE_FILE, "sha256": table_sha256},
            "settings": config.to_json(),
            "preprocessing": preprocessing_description(config.max_chars),
            "labels": {"math": LABEL_MATH, "other": LABEL_OTHER},
            "seed": seed,
            "heldout": heldout.to_json(),
            "train": train_metrics.to_json(),
            "vocabulary_words": len(model.get_words()),
            "elapsed_train_s": round(train_s, 3),
            **(extra or {}),
        }
        del model  # the 2 GB input matrix, before the copies
        if not FileSystems.exists(out_dir):
            FileSystems.mkdirs(out_dir)
        upload_file(local_model, FileSystems.join(out_dir, MODEL_FILE))
        upload_file(local_table, FileSystems.join(out_dir, TABLE_FILE))
    write_json_atomic(FileSystems.join(out_dir, METADATA_FILE), meta)
    return meta


def train_classifier(
    positives: Iterable[SeedDoc],
    negatives: Iterable[SeedDoc],
    out_dir: str,
    config: ClassifierConfig,
    seed_sources: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train on the seed (read on the driver) and write the model folder to `out_dir` (any Beam
    file system; see `train_and_publish`). Returns the metadata."""
    with tempfile.TemporaryDirectory(prefix="mathcorpus-seed-") as tmp:
        train_path = os.path.join(tmp, "train.txt")
        heldout_path = os.path.join(tmp, "heldout.txt")
        split = write_training_files(positives, negatives, train_path, heldout_path, config)
        check_split(split)

        def heldout() -> Iterator[str]:
            with open(heldout_path, encoding="utf-8") as fh:
                yield from fh

        return train_and_publish(
            train_path,
            heldout,
            out_dir,
            config,
            {**split.to_json(), "sources": seed_sources or {}},
        )


def check_split(split: SeedSplit) -> None:
    """A ConfigError when either side of the training sample is empty."""
    problems = []
    if split.train_positives == 0:
        problems.append("the positive seed is empty (no usable text)")
    if split.train_negatives == 0:
        problems.append("the negative seed is empty (no usable text)")
    raise_if_problems("classifier seed", problems)


def cross_validate(
    docs: list[tuple[str, bool]], folds: int, config: ClassifierConfig, work_dir: str
) -> dict[str, Any]:
    """k-fold cross-validation on labelled texts: (text, is_math) pairs.

    Folds are stratified (each label's examples dealt round-robin in a seeded order), every
    fold's model is trained on the other folds with `config`, and the pooled counts over all
    folds give precision and recall.
    """
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    order = sorted(range(len(docs)), key=lambda i: seeded_fraction(config.seed, "cv", str(i)))
    fold_of = [0] * len(docs)
    for label in (True, False):
        members = [i for i in order if docs[i][1] == label]
        for rank, i in enumerate(members):
            fold_of[i] = rank % folds
    pooled: list[tuple[bool, float]] = []
    per_fold = []
    no_holdout = ClassifierConfig(**{**config.to_json(), "holdout_fraction": 0.0})
    for fold in range(folds):
        train = [i for i in range(len(docs)) if fold_of[i] != fold]
        test = [i for i in range(len(docs)) if fold_of[i] == fold]
        fold_dir = os.path.join(work_dir, f"fold{fold}")
        os.makedirs(fold_dir, exist_ok=True)
        train_path = os.path.join(fold_dir, "train.txt")
        write_training_files(
            (SeedDoc(str(i), docs[i][0]) for i in train if docs[i][1]),
            (SeedDoc(str(i), docs[i][0]) for i in train if not docs[i][1]),
            train_path,
            os.path.join(fold_dir, "unused.txt"),
            no_holdout,
        )
        scorer = MathScorer.from_model(train_fasttext(train_path, config), config.max_chars)
        pairs = [(docs[i][1], probability(scorer.logit(docs[i][0]))) for i in test]
        pooled.extend(pairs)
        per_fold.append(metrics_of(pairs, config.threshold).to_json())
    return {
        "folds": folds,
        "documents": len(docs),
        "math_documents": sum(1 for _, m in docs if m),
        "pooled": metrics_of(pooled, config.threshold).to_json(),
        "ranking": ranking_metrics(pooled),
        "per_fold": per_fold,
        "settings": config.to_json(),
    }
