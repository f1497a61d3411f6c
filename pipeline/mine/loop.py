"""`mathcorpus mine`: DeepSeekMath's iterative recall of math pages from a pool (section 2.1).

    mathcorpus mine --pool runs/pool --positives seed/positives.jsonl --workdir runs/mine \\
        --budget-tokens 2000000

Each iteration trains, recalls (score, cut, count domains), stops or annotates and expands; every
step is skipped when finished, so a killed run is rerun. The steps: docs/stages/mine.md.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Sequence
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
from pipeline.core.run_output import OutputConflict, RunOutput, read_json, write_json_atomic
from pipeline.core.stage_run import pipeline_options, run_and_count
from pipeline.mine.classifier import (
    METADATA_FILE,
    SeedDoc,
    read_seed,
    train_classifier,
)
from pipeline.mine.config import (
    ANNOTATIONS_FILE,
    CUT_FILE,
    DOMAINS_FILE,
    HISTOGRAM_FILE,
    RECALL_DIR,
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
from pipeline.mine.transforms import (
    JoinCollected,
    KeepCollected,
    Recall,
    SampleNegatives,
    SeedExpansion,
    under_accepted,
)
from pipeline.pool.schema import POOL_FILE_PREFIX, POOL_SCHEMA
from pipeline.shards.text_sources import BadRecord, SourceFields

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
    return os.path.join(config.workdir, f"iter_{k}")


def pool_files(pool: str) -> list[str]:
    pattern = FileSystems.join(pool, f"{POOL_FILE_PREFIX}-*.parquet")
    files = match_files(pattern)
    if not files:
        raise ConfigError("mining config", [f"pool: no {POOL_FILE_PREFIX}-*.parquet in {pool}"])
    return files


def pool_rows(files: Sequence[str]) -> int:
    """Rows of the pool from the Parquet footers (no data read)."""
    total = 0
    for path in files:
        with FileSystems.open(path) as fh:
            total += pq.ParquetFile(fh).metadata.num_rows
    return total


def _read_json_lines(pattern: str) -> Iterator[dict[str, Any]]:
    for path in sorted(glob.glob(pattern)):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)


class SeedReader:
    """Seed documents from sources; bad records are counted per reason (never silently lost)."""

    def __init__(self) -> None:
        self.bad: dict[str, int] = {}

    def docs(self, sources: Sequence[str], fields: SourceFields) -> Iterator[SeedDoc]:
        for source in sources:
            if os.path.isdir(source) and glob.glob(os.path.join(source, "*-*.jsonl")):
                files = sorted(glob.glob(os.path.join(source, "*-*.jsonl")))
                per_file = SourceFields(text_field="text", id_field="doc_id")
            else:
                files, per_file = [source], fields
            for path in files:
                for item in read_seed(path, per_file):
                    if isinstance(item, BadRecord):
                        self.bad[item.reason] = self.bad.get(item.reason, 0) + 1
                    else:
                        yield item


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
        os.makedirs(cfg.workdir, exist_ok=True)
        state_path = os.path.join(cfg.workdir, STATE_FILE)
        fingerprint = _sha(cfg.fingerprint_fields())
        if os.path.exists(state_path):
            previous = read_json(state_path).get("fingerprint")
            if previous != fingerprint:
                if not cfg.overwrite:
                    raise OutputConflict(
                        f"{cfg.workdir} holds a mining run with another config (fingerprint "
                        f"{previous} != {fingerprint}); use another --workdir or --overwrite"
                    )
                for name in os.listdir(cfg.workdir):
                    path = os.path.join(cfg.workdir, name)
                    if name.startswith("iter_") or name in ("negatives", "final"):
                        shutil.rmtree(path)
        write_json_atomic(state_path, {"fingerprint": fingerprint, "config": cfg.to_json()})

    # negatives

    def negative_sources(self, positive_keys: set[str]) -> tuple[list[str], str]:
        """The negative sources and a fingerprint of them (sampling the pool when needed)."""
        cfg = self.config
        if cfg.negatives:
            return list(cfg.negatives), _sha(list(cfg.negatives))
        out_dir = os.path.join(cfg.workdir, "negatives")
        files = pool_files(cfg.pool)
        total = pool_rows(files)
        target = cfg.negatives_per_positive * len(positive_keys)
        rate = min(1.0, target / total) if total else 0.0
        fields = {
            "pool": cfg.pool,
            "positives": list(cfg.positives),
            "seed": cfg.seed,
            "rate": rate,
        }
        output = RunOutput(out_dir, fields, owned_globs=("negatives-*.jsonl", DEAD_LETTER_GLOB))
        if not output.finished_with_same_config(overwrite=True):
            LOG.info("sampling negatives from the pool (rate %.4f)", rate)
            output.begin()
            p = self._pipeline()
            keys = p | "PositiveKeys" >> beam.Create(sorted(positive_keys))
            _ = (
                p
                | "ReadPool"
                >> beam.io.ReadFromParquet(self.pool_glob, columns=["doc_id", "url", "text"])
                | "Sample"
                >> beam.ParDo(
                    SampleNegatives(cfg.seed, rate),
                    positive_keys=beam.pvalue.AsDict(keys | beam.Map(lambda k: (k, True))),
                )
                | "Write"
                >> beam.io.WriteToText(
                    os.path.join(output.staging, "negatives"), file_name_suffix=".jsonl"
                )
            )
            counters = run_and_count(p)
            stats = stats_document(
                counters,
                ["negatives"],
                extra={"stage": "negatives", "pool_rows": total, "rate": rate},
            )
            output.commit(fields, stats)
        return [out_dir], output.fingerprint

    # 1. model

    def train_step(
        self, k: int, positive_sources: list[str], negative_sources: list[str], inputs: str
    ) -> dict[str, Any]:
        cfg = self.config
        model_dir = os.path.join(iteration_dir(cfg, k), "model")
        fingerprint = _sha({"inputs": inputs, "classifier": cfg.classifier.to_json()})
        meta_path = os.path.join(model_dir, METADATA_FILE)
        if os.path.exists(meta_path):
            meta = read_json(meta_path)
            if meta.get("inputs_fingerprint") == fingerprint:
                return meta
        LOG.info("iteration %d: training the classifier", k)
        if os.path.exists(model_dir):
            shutil.rmtree(model_dir)
        pos_reader, neg_reader = SeedReader(), SeedReader()
        meta = train_classifier(
            pos_reader.docs(positive_sources, cfg.fields),
            neg_reader.docs(negative_sources, cfg.fields),
            model_dir,
            cfg.classifier,
            seed_sources={
                "positives": positive_sources,
                "negatives": negative_sources,
                "bad_positive_records": pos_reader.bad,
                "bad_negative_records": neg_reader.bad,
            },
        )
        # The fingerprint goes in last: a model.json without it is retrained on rerun.
        meta["inputs_fingerprint"] = fingerprint
        write_json_atomic(meta_path, meta)
        # The training files are large and rebuilt from the seed when needed.
        for name in ("train.txt", "heldout.txt"):
            os.remove(os.path.join(model_dir, name))
        return meta

    # 2. recall

    def recall_step(self, k: int, model_meta: dict[str, Any]) -> tuple[dict[str, Any], str]:
        cfg = self.config
        out_dir = os.path.join(iteration_dir(cfg, k), RECALL_DIR)
        previous_ids = (
            os.path.join(iteration_dir(cfg, k - 1), RECALL_DIR, "collected", "ids-*.txt")
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
        model_dir = os.path.join(iteration_dir(cfg, k), "model")
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
            os.path.join(staging, SCORES_PREFIX),
            schema=SCORES_SCHEMA,
            codec="zstd",
            file_name_suffix=".parquet",
        )
        _ = recall["collected"] | "WriteIds" >> beam.io.WriteToText(
            os.path.join(staging, "collected", "ids"), file_name_suffix=".txt"
        )
        for name, folder in (("domains", "domains"), ("prefixes", "prefixes")):
            _ = (
                recall[name]
                | f"{name}Json" >> beam.Map(lambda kv: json.dumps([kv[0], *kv[1]]))
                | f"Write{name}"
                >> beam.io.WriteToText(
                    os.path.join(staging, "counts", folder), file_name_suffix=".jsonl"
                )
            )
        for name in ("histogram", "cut"):
            _ = (
                recall[name]
                | f"{name}Json" >> beam.Map(lambda x: json.dumps(x.to_json()))
                | f"Write{name}"
                >> beam.io.WriteToText(
                    os.path.join(staging, f"{name}.json"), shard_name_template=""
                )
            )
        _ = recall[DEAD_LETTER] | "WriteDead" >> WriteDeadLetters(staging)
        counters = run_and_count(p)
        domain_rows = [
            DomainRow(d, pages, coll)
            for d, pages, coll in _read_json_lines(os.path.join(staging, "counts", "domains-*"))
        ]
        with open(os.path.join(staging, DOMAINS_FILE), "w", encoding="utf-8") as fh:
            fh.write(domain_report_csv(domain_rows, cfg.domain_threshold))
        with open(os.path.join(staging, CUT_FILE), encoding="utf-8") as fh:
            cut_json = json.load(fh)
        overlap_in = counters.get("overlap.in", 0)
        select_kept = counters.get("select.kept", 0)
        with open(os.path.join(staging, HISTOGRAM_FILE), encoding="utf-8") as fh:
            hist_total = ScoreHistogram.from_json(json.load(fh))
        collected_tokens = sum(
            int(t.column("n_tokens").to_numpy().sum())
            for t in (
                pq.read_table(f, columns=["n_tokens", "collected"]).filter(pc.field("collected"))
                for f in sorted(glob.glob(os.path.join(staging, f"{SCORES_PREFIX}-*.parquet")))
            )
        )
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
        pattern = os.path.join(iteration_dir(self.config, k), RECALL_DIR, "collected", "ids-*.txt")
        return p | "ReadCollected" >> beam.io.ReadFromText(pattern)

    def _recall_fingerprint(self, k: int) -> str:
        config_path = os.path.join(iteration_dir(self.config, k), RECALL_DIR, "config.json")
        return read_json(config_path)["fingerprint"] if os.path.exists(config_path) else ""

    # 4. annotation

    def annotation_step(self, k: int, recall_fingerprint: str) -> list[PrefixRow] | None:
        """The iteration's annotations; None when the run must pause for a person."""
        cfg = self.config
        path = os.path.join(iteration_dir(cfg, k), ANNOTATIONS_FILE)
        meta_path = path + ".meta.json"
        rows: list[PrefixRow] | None = None
        fresh = os.path.exists(path) and os.path.exists(meta_path)
        if fresh and read_json(meta_path).get("recall") == recall_fingerprint:
            with open(path, encoding="utf-8") as fh:
                rows = read_annotations(fh.read(), origin=path)
        if rows is None:
            counts = _read_json_lines(
                os.path.join(iteration_dir(cfg, k), RECALL_DIR, "counts", "prefixes-*")
            )
            rows = [PrefixRow(prefix, pages, coll) for prefix, pages, coll in counts]
        if not cfg.pause_for_annotation:
            rows = [
                r
                if r.decision
                else PrefixRow(r.prefix, r.pages, r.collected, auto_decision(r, cfg.auto_accept))
                for r in rows
            ]
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(annotation_csv(rows))
        os.replace(tmp, path)
        write_json_atomic(meta_path, {"recall": recall_fingerprint})
        if undecided(rows):
            return None
        return rows

    # 5. expansion

    def expansion_step(
        self, k: int, recall_fingerprint: str, accepted: list[str]
    ) -> tuple[dict[str, Any], str]:
        cfg = self.config
        out_dir = os.path.join(iteration_dir(cfg, k), "expansion")
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
                os.path.join(output.staging, "expansion"), file_name_suffix=".jsonl"
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
        out_dir = os.path.join(cfg.workdir, "final")
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
                os.path.join(output.staging, POOL_FILE_PREFIX),
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
        reader = SeedReader()
        positive_keys = {d.key for d in reader.docs(list(cfg.positives), cfg.fields)}
        negative_sources, negatives_fp = self.negative_sources(positive_keys)
        iterations: list[dict[str, Any]] = []
        expansions: list[str] = []
        expansion_fps: list[str] = []
        status, stopped = FINISHED, "max_iterations"
        last_recall_fp = ""
        k = 0
        for k in range(1, cfg.iterations + 1):
            positive_sources = [*cfg.positives, *expansions]
            inputs = _sha(
                {
                    "positives": list(cfg.positives),
                    "expansions": expansion_fps,
                    "negatives": negatives_fp,
                    "fields": cfg.fields.to_json(),
                }
            )
            meta = self.train_step(k, positive_sources, negative_sources, inputs)
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
                summary["paused_for_annotation"] = os.path.join(
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
            expansions.append(os.path.join(iteration_dir(cfg, k), "expansion"))
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
                "path": os.path.join(cfg.workdir, "final"),
                "pages": final["pages_written"],
            }
        write_json_atomic(os.path.join(cfg.workdir, SUMMARY_FILE), result)
        with open(os.path.join(cfg.workdir, SUMMARY_TABLE), "w", encoding="utf-8") as fh:
            fh.write(summary_table(iterations) + "\n")
        return result

    def _write_iteration(self, k: int, summary: dict[str, Any]) -> None:
        write_json_atomic(os.path.join(iteration_dir(self.config, k), STATS_FILE), summary)


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
