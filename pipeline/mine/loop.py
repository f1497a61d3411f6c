"""`mathcorpus mine`: DeepSeekMath's iterative recall of math pages from a pool (section 2.1).

    mathcorpus mine --pool runs/pool --positives seed/positives.jsonl --workdir runs/mine \\
        --budget-tokens 2000000

Each iteration draws a training sample (Beam), trains (driver), recalls (score, cut, count
domains), stops or annotates and expands; every step is skipped when finished, so a killed run
is rerun. Every path goes through Beam's FileSystems (local, gs://, s3://); the driver keeps
only temporary files. The steps: docs/stages/mine.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipeline.core.config_errors import ConfigError
from pipeline.core.counters import stats_document
from pipeline.core.dead_letters import DEAD_LETTER, DEAD_LETTER_GLOB, WriteDeadLetters
from pipeline.core.files import match_files
from pipeline.core.run_output import (
    OutputConflict,
    RunOutput,
    config_fingerprint,
    read_json,
    write_json_atomic,
)
from pipeline.core.stage_run import pipeline_options, run_and_count
from pipeline.mine.classifier import (
    HELDOUT_PART,
    METADATA_FILE,
    TRAIN_PART,
    SeedSplit,
    check_split,
    train_and_publish,
)
from pipeline.mine.classifier_text import PREPROCESSING_VERSION
from pipeline.mine.config import (
    ANNOTATIONS_FILE,
    CUT_FILE,
    DOMAINS_FILE,
    EXPANSION_DIR,
    FINAL_DIR,
    HISTOGRAM_FILE,
    MODEL_DIR,
    NEGATIVES_DIR,
    RATE_FILE,
    RECALL_DIR,
    SAMPLE_DIR,
    STATE_FILE,
    STATS_FILE,
    SUMMARY_FILE,
    MiningConfig,
)
from pipeline.mine.domain_discovery import (
    AnnotationError,
    DomainRow,
    PrefixRow,
    accepted_prefixes,
    annotation_csv,
    auto_decision,
    domain_report_csv,
    math_domains,
    read_annotations,
    undecided,
)
from pipeline.mine.score_histogram import (
    ScoreHistogram,
)
from pipeline.mine.seed_files import SeedFile, run_folder_files, seed_files
from pipeline.mine.transforms import (
    BuildTrainingSample,
    JoinCollected,
    KeepCollected,
    ReadSeedDocs,
    Recall,
    SampleNegatives,
    SeedExpansion,
    negative_rate,
    under_accepted,
)
from pipeline.mine.workdir_files import (
    concatenate,
    delete_tree,
    open_raw,
    read_json_lines,
    read_lines,
    read_text,
    write_text_atomic,
)
from pipeline.pool.schema import POOL_FILE_PREFIX, POOL_SCHEMA

LOG = logging.getLogger("mathcorpus.mine")

SUMMARY_TABLE = "summary.md"
SCORES_PREFIX = "scores"
PAUSED = "paused"
FINISHED = "finished"
SCORES_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("url", pa.string(), nullable=False),
        pa.field("domain", pa.string(), nullable=False),
        pa.field("logit", pa.float64(), nullable=False),
        pa.field("score", pa.float64(), nullable=False),
        pa.field("n_tokens", pa.int64(), nullable=False),
        pa.field("collected", pa.bool_(), nullable=False),
    ],
    metadata={b"mathcorpus.format": b"mining_scores", b"mathcorpus.format_version": b"1"},
)


def _sha(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def iteration_dir(config: MiningConfig, k: int) -> str:
    return FileSystems.join(config.workdir, f"iter_{k}")


def pool_files(pool: str) -> list[str]:
    pattern = FileSystems.join(pool, f"{POOL_FILE_PREFIX}-*.parquet")
    files = match_files(pattern)
    if not files:
        raise ConfigError("mining config", [f"pool: no {POOL_FILE_PREFIX}-*.parquet in {pool}"])
    return files


def collected_tokens_of(scores_file: str) -> int:
    """Tokens of the collected pages in one scores file."""
    with open_raw(scores_file) as fh:
        table = pq.read_table(fh, columns=["n_tokens", "collected"])
    return int(table.filter(pc.field("collected")).column("n_tokens").to_numpy().sum())


def pool_rows(files: Sequence[str]) -> int:
    """Rows of the pool from the Parquet footers (no data read)."""
    total = 0
    for path in files:
        with FileSystems.open(path) as fh:
            total += pq.ParquetFile(fh).metadata.num_rows
    return total


def sample_split(counters: dict[str, int]) -> SeedSplit:
    """What went into the training sample, from the `sample` stage's counters."""
    return SeedSplit(
        train_positives=counters.get(f"sample.note.{TRAIN_PART}_positives", 0),
        train_negatives=counters.get(f"sample.note.{TRAIN_PART}_negatives", 0),
        heldout_positives=counters.get(f"sample.note.{HELDOUT_PART}_positives", 0),
        heldout_negatives=counters.get(f"sample.note.{HELDOUT_PART}_negatives", 0),
        duplicate_keys=counters.get("sample.dropped.duplicate_key", 0),
        negatives_excluded=counters.get("sample.dropped.is_positive", 0),
    )


def bad_records(stats: dict[str, Any], stage: str) -> dict[str, int]:
    return dict(stats["stages"].get(stage, {}).get("dead_lettered", {}))


# --- steps ------------------------------------------------------------------------------------


class MiningRun:
    """One `mathcorpus mine` invocation: runs or skips each step of each iteration."""

    def __init__(self, config: MiningConfig, beam_args: Sequence[str]) -> None:
        self.config = config
        self.options = pipeline_options(beam_args)
        self.pool_glob = FileSystems.join(config.pool, f"{POOL_FILE_PREFIX}-*.parquet")

    def _pipeline(self) -> beam.Pipeline:
        return beam.Pipeline(options=self.options)

    # state of the whole work folder

    def check_workdir(self) -> None:
        cfg = self.config
        if not FileSystems.exists(cfg.workdir):
            FileSystems.mkdirs(cfg.workdir)
        state_path = FileSystems.join(cfg.workdir, STATE_FILE)
        fingerprint = _sha(cfg.fingerprint_fields())
        if FileSystems.exists(state_path):
            previous = read_json(state_path).get("fingerprint")
            if previous != fingerprint:
                if not cfg.overwrite:
                    raise OutputConflict(
                        f"{cfg.workdir} holds a mining run with another config (fingerprint "
                        f"{previous} != {fingerprint}); use another --workdir or --overwrite"
                    )
                for name in self._step_folders():
                    delete_tree(FileSystems.join(cfg.workdir, name))
        write_json_atomic(state_path, {"fingerprint": fingerprint, "config": cfg.to_json()})

    def _step_folders(self) -> list[str]:
        """The top-level folders of the work folder that steps wrote (iter_k/, negatives/,
        final/), found by listing files: object stores have no folders to list."""
        root = self.config.workdir.rstrip("/") + "/"
        names: set[str] = set()
        for path in match_files(FileSystems.join(self.config.workdir, "**")):
            name = path[len(root) :].split("/", 1)[0] if path.startswith(root) else ""
            if name.startswith("iter_") or name in ("negatives", "final"):
                names.add(name)
        return sorted(names)

    # negatives

    def negative_files(self) -> tuple[list[SeedFile], str]:
        """The negative seed files and a fingerprint of them (sampling the pool when needed)."""
        cfg = self.config
        if cfg.negatives:
            files = [f for source in cfg.negatives for f in self._seed_files(source)]
            return files, _sha(list(cfg.negatives))
        out_dir = FileSystems.join(cfg.workdir, NEGATIVES_DIR)
        total = pool_rows(pool_files(cfg.pool))
        fields = {
            "pool": cfg.pool,
            "pool_rows": total,
            "positives": list(cfg.positives),
            "source_fields": cfg.fields.to_json(),
            "seed": cfg.seed,
            "negatives_per_positive": cfg.negatives_per_positive,
        }
        output = RunOutput(
            out_dir, fields, owned_globs=("negatives-*.jsonl", RATE_FILE, DEAD_LETTER_GLOB)
        )
        if not output.finished_with_same_config(overwrite=True):
            LOG.info("sampling negatives from the pool")
            output.begin()
            p = self._pipeline()
            positives = (
                p
                | "PositiveFiles" >> beam.Create([(f, True) for f in self.positive_files([])])
                | "Spread" >> beam.Reshuffle()
                | "ReadPositives"
                >> beam.ParDo(ReadSeedDocs()).with_outputs(DEAD_LETTER, main="docs")
            )
            # About as many negatives as distinct positive keys (the paper: 500k and 500k).
            rate = (
                positives.docs
                | "Keys" >> beam.Map(lambda doc: doc[0])
                | "Distinct" >> beam.Distinct()
                | "Count" >> beam.combiners.Count.Globally()
                | "Rate" >> beam.Map(negative_rate, cfg.negatives_per_positive, total)
            )
            _ = (
                p
                | "ReadPool"
                >> beam.io.ReadFromParquet(self.pool_glob, columns=["doc_id", "url", "text"])
                | "Sample"
                >> beam.ParDo(SampleNegatives(cfg.seed), rate=beam.pvalue.AsSingleton(rate))
                | "Write"
                >> beam.io.WriteToText(
                    FileSystems.join(output.staging, "negatives"), file_name_suffix=".jsonl"
                )
            )
            _ = (
                rate
                | "RateJson" >> beam.Map(lambda r: json.dumps({"rate": r}))
                | "WriteRate"
                >> beam.io.WriteToText(
                    FileSystems.join(output.staging, RATE_FILE), shard_name_template=""
                )
            )
            _ = positives[DEAD_LETTER] | "WriteDead" >> WriteDeadLetters(output.staging)
            counters = run_and_count(p)
            sampled = read_json(FileSystems.join(output.staging, RATE_FILE))
            stats = stats_document(
                counters,
                ["seed_positive", "negatives"],
                extra={"stage": "negatives", "pool_rows": total, "rate": sampled["rate"]},
            )
            output.commit(fields, stats)
        return run_folder_files(out_dir, "negatives"), output.fingerprint

    def positive_files(self, expansions: Sequence[str]) -> list[SeedFile]:
        """The positive seed files: `--positives`, then the earlier iterations' expansions."""
        cfg = self.config
        files = [f for source in cfg.positives for f in self._seed_files(source)]
        for folder in expansions:
            files.extend(run_folder_files(folder, "expansion"))
        return files

    def _seed_files(self, source: str) -> list[SeedFile]:
        try:
            return seed_files(source, self.config.fields)
        except ValueError as exc:
            raise ConfigError("mining config", [str(exc)]) from exc

    # 1. model

    def sample_step(
        self, k: int, positives: list[SeedFile], negatives: list[SeedFile], fields: dict[str, Any]
    ) -> dict[str, Any]:
        """The training sample of iteration k, drawn by Beam into `iter_k/sample/`."""
        cfg = self.config
        out_dir = FileSystems.join(iteration_dir(cfg, k), SAMPLE_DIR)
        output = RunOutput(
            out_dir,
            fields,
            owned_globs=(f"{TRAIN_PART}-*.txt", f"{HELDOUT_PART}-*.txt", DEAD_LETTER_GLOB),
        )
        if output.finished_with_same_config(overwrite=True):
            return read_json(output.path(STATS_FILE))
        LOG.info("iteration %d: drawing the training sample", k)
        output.begin()
        started = time.monotonic()
        p = self._pipeline()
        sample = (
            p
            | "SeedFiles"
            >> beam.Create([(f, True) for f in positives] + [(f, False) for f in negatives])
            | "Sample" >> BuildTrainingSample(output.staging, cfg.classifier)
        )
        _ = sample[DEAD_LETTER] | "WriteDead" >> WriteDeadLetters(output.staging)
        counters = run_and_count(p)
        stats = stats_document(
            counters,
            ["seed_positive", "seed_negative", "sample"],
            extra={
                "stage": "training_sample",
                "iteration": k,
                "split": sample_split(counters).to_json(),
                "positive_files": len(positives),
                "negative_files": len(negatives),
                "elapsed_s": round(time.monotonic() - started, 3),
            },
        )
        output.commit(fields, stats)
        return stats

    def train_step(
        self, k: int, positives: list[SeedFile], negatives: list[SeedFile], inputs: str
    ) -> dict[str, Any]:
        """Iteration k's model: the sample drawn by Beam, fastText trained on the driver from a
        local copy of it, the model folder copied into `iter_k/model/`."""
        cfg = self.config
        model_dir = FileSystems.join(iteration_dir(cfg, k), MODEL_DIR)
        classifier = cfg.classifier.to_json()
        sample_fields = {
            "inputs": inputs,
            "seed": classifier["seed"],
            "holdout_fraction": classifier["holdout_fraction"],
            "max_chars": classifier["max_chars"],
            "preprocessing_version": PREPROCESSING_VERSION,
        }
        fingerprint = _sha({"sample": config_fingerprint(sample_fields), "classifier": classifier})
        meta_path = FileSystems.join(model_dir, METADATA_FILE)
        if FileSystems.exists(meta_path):
            meta = read_json(meta_path)
            if meta.get("inputs_fingerprint") == fingerprint:
                return meta
        sample = self.sample_step(k, positives, negatives, sample_fields)
        split = SeedSplit(**sample["split"])
        check_split(split)
        LOG.info("iteration %d: training the classifier", k)
        delete_tree(model_dir)
        sample_dir = FileSystems.join(iteration_dir(cfg, k), SAMPLE_DIR)
        train_files = match_files(FileSystems.join(sample_dir, f"{TRAIN_PART}-*.txt"))
        heldout_files = match_files(FileSystems.join(sample_dir, f"{HELDOUT_PART}-*.txt"))
        seed = {
            **split.to_json(),
            "sources": {
                "positives": sorted({f.path for f in positives}),
                "negatives": sorted({f.path for f in negatives}),
                "sample": sample_dir,
                "bad_positive_records": bad_records(sample, "seed_positive"),
                "bad_negative_records": bad_records(sample, "seed_negative"),
            },
        }
        with tempfile.TemporaryDirectory(prefix="mathcorpus-train-") as tmp:
            # fastText reads only a local file: the sample's train files, in name (= seeded)
            # order, are its only large driver-local file, removed after training.
            train_path = os.path.join(tmp, "train.txt")
            concatenate(train_files, train_path)
            # The fingerprint goes in with model.json, last: a folder without it is retrained.
            return train_and_publish(
                train_path,
                lambda: read_lines(heldout_files),
                model_dir,
                cfg.classifier,
                seed,
                extra={"inputs_fingerprint": fingerprint},
            )

    # 2. recall

    def recall_step(self, k: int, model_meta: dict[str, Any]) -> tuple[dict[str, Any], str]:
        cfg = self.config
        out_dir = FileSystems.join(iteration_dir(cfg, k), RECALL_DIR)
        previous_ids = (
            FileSystems.join(iteration_dir(cfg, k - 1), RECALL_DIR, "collected", "ids-*.txt")
            if k > 1
            else None
        )
        fields = {
            "model_sha256": model_meta["sha256"],
            "pool": cfg.pool,
            "budget_tokens": cfg.budget_tokens,
            "min_score": cfg.min_score,
            "tokenizer": cfg.tokenizer,
            "domain_threshold": cfg.domain_threshold,
            "min_prefix_pages": cfg.min_prefix_pages,
            "previous": _sha(self._recall_fingerprint(k - 1)) if k > 1 else None,
        }
        output = RunOutput(
            out_dir,
            fields,
            owned_globs=(
                f"{SCORES_PREFIX}-*.parquet",
                "collected/*",
                "counts/*",
                DEAD_LETTER_GLOB,
                HISTOGRAM_FILE,
                CUT_FILE,
                DOMAINS_FILE,
            ),
        )
        if output.finished_with_same_config(overwrite=True):
            return read_json(output.path(STATS_FILE)), output.fingerprint
        LOG.info("iteration %d: scoring the pool", k)
        output.begin()
        started = time.monotonic()
        staging = output.staging
        model_dir = FileSystems.join(iteration_dir(cfg, k), MODEL_DIR)
        p = self._pipeline()
        rows = p | "ReadPool" >> beam.io.ReadFromParquet(
            self.pool_glob, columns=["doc_id", "url", "domain", "text"]
        )
        inputs: Any = rows
        if previous_ids is not None:
            previous = p | "ReadPrevious" >> beam.io.ReadFromText(previous_ids)
            inputs = {"rows": rows, "previous": previous}
        recall = inputs | "Recall" >> Recall(
            model_dir,
            cfg.tokenizer,
            cfg.budget_tokens,
            cfg.min_score,
            cfg.domain_threshold,
            cfg.min_prefix_pages,
        )
        _ = recall["scores"] | "WriteScores" >> beam.io.WriteToParquet(
            FileSystems.join(staging, SCORES_PREFIX),
            schema=SCORES_SCHEMA,
            codec="zstd",
            file_name_suffix=".parquet",
        )
        _ = recall["collected"] | "WriteIds" >> beam.io.WriteToText(
            FileSystems.join(staging, "collected", "ids"), file_name_suffix=".txt"
        )
        for name, folder in (("domains", "domains"), ("prefixes", "prefixes")):
            _ = (
                recall[name]
                | f"{name}Json" >> beam.Map(lambda kv: json.dumps([kv[0], *kv[1]]))
                | f"Write{name}"
                >> beam.io.WriteToText(
                    FileSystems.join(staging, "counts", folder), file_name_suffix=".jsonl"
                )
            )
        for name in ("histogram", "cut"):
            _ = (
                recall[name]
                | f"{name}Json" >> beam.Map(lambda x: json.dumps(x.to_json()))
                | f"Write{name}"
                >> beam.io.WriteToText(
                    FileSystems.join(staging, f"{name}.json"), shard_name_template=""
                )
            )
        _ = recall[DEAD_LETTER] | "WriteDead" >> WriteDeadLetters(staging)
        counters = run_and_count(p)
        domain_rows = [
            DomainRow(d, pages, coll)
            for d, pages, coll in read_json_lines(FileSystems.join(staging, "counts", "domains-*"))
        ]
        write_text_atomic(
            FileSystems.join(staging, DOMAINS_FILE),
            domain_report_csv(domain_rows, cfg.domain_threshold),
        )
        cut_json = read_json(FileSystems.join(staging, CUT_FILE))
        overlap_in = counters.get("overlap.in", 0)
        select_kept = counters.get("select.kept", 0)
        hist_total = ScoreHistogram.from_json(read_json(FileSystems.join(staging, HISTOGRAM_FILE)))
        scores = match_files(FileSystems.join(staging, f"{SCORES_PREFIX}-*.parquet"))
        collected_tokens = sum(collected_tokens_of(f) for f in scores)
        stats = stats_document(
            counters,
            ["score", "select", "overlap"],
            extra={
                "stage": "recall",
                "iteration": k,
                "cut": cut_json,
                "pool_pages_scored": hist_total.total_pages,
                "pool_tokens": hist_total.total_tokens,
                "pages_collected": select_kept,
                "tokens_collected": collected_tokens,
                "overlap_with_previous": (
                    round(counters.get("overlap.kept", 0) / overlap_in, 6) if overlap_in else None
                ),
                "math_domains": math_domains(domain_rows, cfg.domain_threshold),
                "elapsed_s": round(time.monotonic() - started, 3),
            },
        )
        output.commit(fields, stats)
        return stats, output.fingerprint

    def _read_collected(self, p: beam.Pipeline, k: int) -> beam.PCollection:
        """The doc ids iteration k collected."""
        pattern = FileSystems.join(
            iteration_dir(self.config, k), RECALL_DIR, "collected", "ids-*.txt"
        )
        return p | "ReadCollected" >> beam.io.ReadFromText(pattern)

    def _recall_fingerprint(self, k: int) -> str:
        config_path = FileSystems.join(iteration_dir(self.config, k), RECALL_DIR, "config.json")
        return read_json(config_path)["fingerprint"] if FileSystems.exists(config_path) else ""

    # 4. annotation

    def annotation_step(self, k: int, recall_fingerprint: str) -> list[PrefixRow] | None:
        """The iteration's annotations; None when the run must pause for a person."""
        cfg = self.config
        path = FileSystems.join(iteration_dir(cfg, k), ANNOTATIONS_FILE)
        meta_path = path + ".meta.json"
        rows: list[PrefixRow] | None = None
        fresh = FileSystems.exists(path) and FileSystems.exists(meta_path)
        if fresh and read_json(meta_path).get("recall") == recall_fingerprint:
            rows = read_annotations(read_text(path), origin=path)
        if rows is None:
            counts = read_json_lines(
                FileSystems.join(iteration_dir(cfg, k), RECALL_DIR, "counts", "prefixes-*")
            )
            rows = [PrefixRow(prefix, pages, coll) for prefix, pages, coll in counts]
        if not cfg.pause_for_annotation:
            rows = [
                r
                if r.decision
                else PrefixRow(r.prefix, r.pages, r.collected, auto_decision(r, cfg.auto_accept))
                for r in rows
            ]
        write_text_atomic(path, annotation_csv(rows))
        write_json_atomic(meta_path, {"recall": recall_fingerprint})
        if undecided(rows):
            return None
        return rows

    # 5. expansion

    def expansion_step(
        self, k: int, recall_fingerprint: str, accepted: list[str]
    ) -> tuple[dict[str, Any], str]:
        cfg = self.config
        out_dir = FileSystems.join(iteration_dir(cfg, k), EXPANSION_DIR)
        fields = {"recall": recall_fingerprint, "accepted": accepted}
        output = RunOutput(out_dir, fields, owned_globs=("expansion-*.jsonl",))
        if output.finished_with_same_config(overwrite=True):
            return read_json(output.path(STATS_FILE)), output.fingerprint
        LOG.info("iteration %d: expanding the seed under %d prefixes", k, len(accepted))
        output.begin()
        p = self._pipeline()
        under = (
            p
            | "ReadPool"
            >> beam.io.ReadFromParquet(self.pool_glob, columns=["doc_id", "url", "domain", "text"])
            | "UnderAccepted" >> beam.Filter(under_accepted, frozenset(accepted))
        )
        _ = (
            {"pool": under, "collected": self._read_collected(p, k)}
            | "JoinCollected" >> JoinCollected()
            | "Uncollected" >> beam.ParDo(SeedExpansion())
            | "Write"
            >> beam.io.WriteToText(
                FileSystems.join(output.staging, "expansion"), file_name_suffix=".jsonl"
            )
        )
        counters = run_and_count(p)
        stats = stats_document(
            counters,
            ["expand"],
            extra={
                "stage": "expansion",
                "iteration": k,
                "accepted_prefixes": accepted,
                "pages_added": counters.get("expand.kept", 0),
            },
        )
        output.commit(fields, stats)
        return stats, output.fingerprint

    # final collection

    def final_step(self, k: int, recall_fingerprint: str) -> dict[str, Any]:
        cfg = self.config
        out_dir = FileSystems.join(cfg.workdir, FINAL_DIR)
        fields = {"recall": recall_fingerprint, "iteration": k, "num_shards": cfg.num_shards}
        output = RunOutput(out_dir, fields, owned_globs=(f"{POOL_FILE_PREFIX}-*.parquet",))
        if output.finished_with_same_config(overwrite=True):
            return read_json(output.path(STATS_FILE))
        output.begin()
        p = self._pipeline()
        pool = p | "ReadPool" >> beam.io.ReadFromParquet(self.pool_glob)
        _ = (
            {"pool": pool, "collected": self._read_collected(p, k)}
            | "JoinCollected" >> JoinCollected()
            | "Keep" >> beam.ParDo(KeepCollected())
            | "Write"
            >> beam.io.WriteToParquet(
                FileSystems.join(output.staging, POOL_FILE_PREFIX),
                schema=POOL_SCHEMA,
                codec="zstd",
                file_name_suffix=".parquet",
                num_shards=cfg.num_shards,
            )
        )
        counters = run_and_count(p)
        stats = stats_document(
            counters,
            ["final"],
            extra={
                "stage": "mining_final",
                "iteration": k,
                "pages_written": counters.get("final.kept", 0),
            },
        )
        output.commit(fields, stats)
        return stats

    # the loop

    def run(self) -> dict[str, Any]:
        cfg = self.config
        self.check_workdir()
        pool_files(cfg.pool)  # a clear error before any work when the pool is empty
        negative_files, negatives_fp = self.negative_files()
        iterations: list[dict[str, Any]] = []
        expansions: list[str] = []
        expansion_fps: list[str] = []
        status, stopped = FINISHED, "max_iterations"
        last_recall_fp = ""
        k = 0
        for k in range(1, cfg.iterations + 1):
            inputs = _sha(
                {
                    "positives": list(cfg.positives),
                    "expansions": expansion_fps,
                    "negatives": negatives_fp,
                    "fields": cfg.fields.to_json(),
                }
            )
            positive_files = self.positive_files(expansions)
            meta = self.train_step(k, positive_files, negative_files, inputs)
            recall, last_recall_fp = self.recall_step(k, meta)
            summary = iteration_summary(k, meta, recall)
            iterations.append(summary)
            overlap = recall.get("overlap_with_previous")
            if k > 1 and overlap is not None and overlap >= cfg.converged:
                stopped = "converged"
                self._write_iteration(k, summary)
                break
            if k == cfg.iterations:
                self._write_iteration(k, summary)
                break
            try:
                rows = self.annotation_step(k, last_recall_fp)
            except AnnotationError as exc:
                raise ConfigError("annotations", [str(exc)]) from exc
            if rows is None:
                status = PAUSED
                summary["paused_for_annotation"] = FileSystems.join(
                    iteration_dir(cfg, k), ANNOTATIONS_FILE
                )
                self._write_iteration(k, summary)
                break
            accepted = accepted_prefixes(rows)
            expansion, expansion_fp = self.expansion_step(k, last_recall_fp, accepted)
            summary["prefixes_listed"] = len(rows)
            summary["prefixes_accepted"] = accepted
            summary["expansion_pages"] = expansion["pages_added"]
            self._write_iteration(k, summary)
            expansions.append(FileSystems.join(iteration_dir(cfg, k), EXPANSION_DIR))
            expansion_fps.append(expansion_fp)
        result: dict[str, Any] = {
            "status": status,
            "iterations": iterations,
            "stopped_because": stopped if status == FINISHED else None,
            "final_iteration": k,
        }
        if status == FINISHED:
            final = self.final_step(k, last_recall_fp)
            result["final"] = {
                "path": FileSystems.join(cfg.workdir, FINAL_DIR),
                "pages": final["pages_written"],
            }
        write_text_atomic(
            FileSystems.join(cfg.workdir, SUMMARY_TABLE), summary_table(iterations) + "\n"
        )
        # summary.json last: a work folder with it holds a finished (or paused) run.
        write_json_atomic(FileSystems.join(cfg.workdir, SUMMARY_FILE), result)
        return result

    def _write_iteration(self, k: int, summary: dict[str, Any]) -> None:
        write_json_atomic(FileSystems.join(iteration_dir(self.config, k), STATS_FILE), summary)


def iteration_summary(k: int, meta: dict[str, Any], recall: dict[str, Any]) -> dict[str, Any]:
    seed = meta["seed"]
    return {
        "iteration": k,
        "seed_positives": seed["train_positives"] + seed["heldout_positives"],
        "seed_negatives": seed["train_negatives"] + seed["heldout_negatives"],
        "heldout": meta["heldout"],
        "model_sha256": meta["sha256"],
        "cut": recall["cut"],
        "pages_collected": recall["pages_collected"],
        "tokens_collected": recall["tokens_collected"],
        "overlap_with_previous": recall["overlap_with_previous"],
        "math_domains": recall["math_domains"],
        "prefixes_accepted": [],
        "expansion_pages": 0,
    }


def summary_table(iterations: Sequence[dict[str, Any]]) -> str:
    """A Markdown table over iterations (also printed by the CLI)."""
    lines = [
        "| iter | seed +/- | held-out P / R | pages | tokens | overlap | math domains | "
        "prefixes accepted | expansion |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for it in iterations:
        h = it["heldout"]
        overlap = it["overlap_with_previous"]
        lines.append(
            f"| {it['iteration']} | {it['seed_positives']} / {it['seed_negatives']} | "
            f"{_fmt(h['precision'])} / {_fmt(h['recall'])} | {it['pages_collected']} | "
            f"{it['tokens_collected']} | {_fmt(overlap)} | {len(it['math_domains'])} | "
            f"{len(it['prefixes_accepted'])} | {it['expansion_pages']} |"
        )
    return "\n".join(lines)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def run_mining(config: MiningConfig, beam_args: Sequence[str] = ()) -> dict[str, Any]:
    """Run (or continue) the mining loop; returns the summary (also `<workdir>/summary.json`).

    `status` is `finished` (then `final.path` is the pool-format collection) or `paused` (a
    person must fill in the decisions of the annotation file named in the last iteration)."""
    return MiningRun(config, beam_args).run()
