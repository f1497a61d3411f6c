"""Beam pieces of the mining loop: thin DoFns over the pure logic.

`ScorePages` (model read from the work folder once per worker), `MarkCollected`, domain and
prefix counts, `Recall` (one iteration's scoring graph), `BuildTrainingSample` (the classifier's
training sample, written into the work folder), and the row filters `SampleNegatives`,
`SeedExpansion`, `KeepCollected`; counters follow pipeline/core/counters.py
(docs/stages/mine.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipeline.core.counters import StageCounter
from pipeline.core.dead_letters import DEAD_LETTER, DeadLetter, dead_letter_output
from pipeline.mine.classifier import (
    HELDOUT_PART,
    TRAIN_PART,
    ClassifierConfig,
    MathScorer,
    choose_example,
    placement,
    probability,
    sample_file_name,
    seeded_fraction,
    training_line,
)
from pipeline.mine.domain_discovery import DomainRow, path_prefixes, under_prefixes
from pipeline.mine.score_histogram import (
    Cut,
    ScoreHistogram,
    ScoreHistogramCombineFn,
    cut_for_budget,
    cut_for_min_score,
)
from pipeline.mine.seed_files import SeedFile, read_seed_file
from pipeline.shards.text_sources import BadRecord

# Without a tokenizer, tokens are estimated as characters / 4: English BPE vocabularies of
# 32k-100k entries (GPT-2, Llama, DeepSeek) average about 4 characters per token on web text.
CHARS_PER_TOKEN_ESTIMATE = 4.0


def estimate_tokens(text: str) -> int:
    """The documented estimate used when no tokenizer is given."""
    return math.ceil(len(text) / CHARS_PER_TOKEN_ESTIMATE)


def dead_letter(stage: str, reason: str, error: str, row: dict[str, Any]) -> pvalue.TaggedOutput:
    return dead_letter_output(
        DeadLetter(
            stage,
            reason,
            error,
            source=str(row.get("warc_file") or ""),
            offset=int(row["warc_offset"]) if row.get("warc_offset") is not None else -1,
            url=str(row.get("url") or ""),
            doc_id=str(row.get("doc_id") or ""),
        )
    )


class ScorePages(beam.DoFn):
    """Pool row -> {doc_id, url, domain, logit, score, n_tokens}; bad rows are dead-lettered."""

    def __init__(self, model_dir: str, tokenizer_path: str | None) -> None:
        self.model_dir = model_dir
        self.tokenizer_path = tokenizer_path

    def setup(self) -> None:
        # The model folder is a work-folder path (local, gs://, s3://): read through FileSystems
        # here on the worker, the 8 MB scoring table into memory.
        self.scorer = MathScorer.load(self.model_dir)
        self.tokenizer = None
        if self.tokenizer_path:
            from tokenizer.loading import load_tokenizer

            self.tokenizer = load_tokenizer(self.tokenizer_path)
        self.counter = StageCounter("score")

    def count_tokens(self, text: str) -> int:
        if self.tokenizer is None:
            return estimate_tokens(text)
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def process(self, row: dict[str, Any]) -> Iterator[Any]:
        self.counter.entered()
        text, doc_id = row.get("text"), row.get("doc_id")
        if not isinstance(text, str) or not doc_id:
            self.counter.dead_lettered("missing_field")
            yield dead_letter("score", "missing_field", "no text or doc_id", row)
            return
        try:
            logit = self.scorer.logit(text)
            n_tokens = self.count_tokens(text)
        except Exception as exc:  # a page must never stop the run: dead-letter it
            self.counter.dead_lettered("score_error")
            yield dead_letter("score", "score_error", f"{type(exc).__name__}: {exc}", row)
            return
        self.counter.kept()
        yield {
            "doc_id": str(doc_id),
            "url": str(row.get("url") or ""),
            "domain": str(row.get("domain") or ""),
            "logit": logit,
            "score": probability(logit),
            "n_tokens": n_tokens,
        }


class MarkCollected(beam.DoFn):
    """Adds `collected` to a score row by the cut (a singleton side input)."""

    def setup(self) -> None:
        self.counter = StageCounter("select")

    def process(self, row: dict[str, Any], cut: Cut) -> Iterator[dict[str, Any]]:
        self.counter.entered()
        collected = cut.selects(row["logit"])
        if collected:
            self.counter.kept()
        else:
            self.counter.dropped("below_cut")
        yield {**row, "collected": collected}


def domain_count(row: dict[str, Any]) -> tuple[str, tuple[int, int]]:
    return row["domain"], (1, int(row["collected"]))


def prefix_counts(row: dict[str, Any], math_domains: Iterable[str]) -> Iterator[Any]:
    """((prefix), (1, collected)) for the page's prefixes when its domain is math-related."""
    domains = math_domains if isinstance(math_domains, frozenset) else frozenset(math_domains)
    if row["domain"] in domains:
        for prefix in path_prefixes(row["url"], row["domain"]):
            yield prefix, (1, int(row["collected"]))


def sum_pairs(pairs: Iterable[tuple[int, int]]) -> tuple[int, int]:
    pages = collected = 0
    for a, b in pairs:
        pages += a
        collected += b
    return pages, collected


class SampleNegatives(beam.DoFn):
    """A seeded Bernoulli sample of pool pages at `rate` (a side input: it depends on how many
    positives there are). Positives among them are dropped later, by `PlaceSample`."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def setup(self) -> None:
        self.counter = StageCounter("negatives")

    def process(self, row: dict[str, Any], rate: float) -> Iterator[str]:
        self.counter.entered()
        doc_id = str(row.get("doc_id") or "")
        if seeded_fraction(self.seed, "negative", doc_id) >= rate:
            self.counter.dropped("not_sampled")
            return
        if not isinstance(row.get("text"), str) or not row["text"].strip():
            self.counter.dropped("empty_text")
            return
        self.counter.kept()
        yield json.dumps(
            {"doc_id": doc_id, "url": row.get("url"), "text": row["text"]}, ensure_ascii=False
        )


def negative_rate(positives: int, negatives_per_positive: float, pool_rows: int) -> float:
    """The sampling rate that draws about `negatives_per_positive` pool pages per positive."""
    if pool_rows <= 0:
        return 0.0
    return min(1.0, negatives_per_positive * positives / pool_rows)


# --- the classifier's training sample ---------------------------------------------------------


class ReadSeedDocs(beam.DoFn):
    """(SeedFile, is_math) -> (key, is_math, text) for every usable record of the file.

    Stages `seed_positive` / `seed_negative`: dropped `empty_text`, dead letters per
    BadRecord reason (pipeline/shards/text_sources.py)."""

    def setup(self) -> None:
        self.counters = {True: StageCounter("seed_positive"), False: StageCounter("seed_negative")}

    def process(self, element: tuple[SeedFile, bool]) -> Iterator[Any]:
        seed_file, is_math = element
        counter = self.counters[is_math]
        for item in read_seed_file(seed_file):
            counter.entered()
            if isinstance(item, BadRecord):
                counter.dead_lettered(item.reason)
                yield dead_letter_output(
                    DeadLetter(
                        counter.stage, item.reason, item.error, item.input_file, offset=item.row
                    )
                )
            elif not item.text.strip():
                counter.dropped("empty_text")
            else:
                counter.kept()
                yield item.doc_id, is_math, item.text


def keyed_training_line(doc: tuple[str, bool, str], max_chars: int) -> tuple[str, Any]:
    """(key, (is_math, training line)): the page is cut to `max_chars` before any shuffle."""
    key, is_math, text = doc
    return key, (is_math, training_line(is_math, text, max_chars))


class PlaceSample(beam.DoFn):
    """(key, [(is_math, line)]) -> ((part, bucket), (order, line)) for the one example kept.

    Stage `sample`: in = seed examples; kept = one per key; dropped `duplicate_key`,
    `is_positive` (a negative whose key is a positive). Notes count what went where
    (`train_positives`, `heldout_negatives`, ...)."""

    def __init__(self, config: ClassifierConfig) -> None:
        self.config = config

    def setup(self) -> None:
        self.counter = StageCounter("sample")

    def process(self, element: tuple[str, Iterable[tuple[bool, str]]]) -> Iterator[Any]:
        key, examples = element
        choice = choose_example(list(examples))
        self.counter.entered(1 + choice.duplicates + choice.negatives_excluded)
        self.counter.kept()
        if choice.duplicates:
            self.counter.dropped("duplicate_key", choice.duplicates)
        if choice.negatives_excluded:
            self.counter.dropped("is_positive", choice.negatives_excluded)
        place = placement(key, self.config)
        part = HELDOUT_PART if place.heldout else TRAIN_PART
        self.counter.note(f"{part}_{'positives' if choice.is_math else 'negatives'}")
        yield (part, place.bucket), (place.order, choice.line)


class WriteSampleBucket(beam.DoFn):
    """((part, bucket), [(order, line)]) -> `<folder>/<part>-<bucket>.txt`, lines sorted by
    (order, line): the files in name order are the sample in its seeded order."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def process(
        self, element: tuple[tuple[str, int], Iterable[tuple[float, str]]]
    ) -> Iterator[str]:
        (part, bucket), lines = element
        path = FileSystems.join(self.folder, sample_file_name(part, bucket))
        # Written in place: the folder is a run folder's staging area, renamed only on success;
        # a retried bundle writes the same bytes again.
        with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            for _order, line in sorted(lines):
                fh.write(line.encode("utf-8"))
        yield path


class BuildTrainingSample(beam.PTransform):
    """(SeedFile, is_math) pairs -> the classifier's training sample written into `folder`:
    `train-NNNNN.txt` and `heldout-NNNNN.txt` (fastText lines, FORMAT.md "Mining work folder").

    The same lines, split and order as `write_training_files` (one example per key, positives
    first; the held-out split and the order from a seeded hash of the key), so a model trained on
    the concatenated train files is the one `mathcorpus classifier train` makes from the same
    seed. Output: {"files": written paths, DEAD_LETTER: unreadable seed records}."""

    def __init__(self, folder: str, config: ClassifierConfig) -> None:
        super().__init__()
        self.folder = folder
        self.config = config

    def expand(self, seed_files: beam.PCollection) -> dict[str, beam.PCollection]:
        max_chars = self.config.max_chars
        docs = (
            seed_files
            | "Spread" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(ReadSeedDocs()).with_outputs(DEAD_LETTER, main="docs")
        )
        files = (
            docs.docs
            | "Line" >> beam.Map(keyed_training_line, max_chars)
            | "ByKey" >> beam.GroupByKey()
            | "Place" >> beam.ParDo(PlaceSample(self.config))
            | "ByBucket" >> beam.GroupByKey()
            | "WriteBuckets" >> beam.ParDo(WriteSampleBucket(self.folder))
        )
        return {"files": files, DEAD_LETTER: docs[DEAD_LETTER]}


def under_accepted(row: dict[str, Any], accepted: Iterable[str]) -> bool:
    prefixes = accepted if isinstance(accepted, frozenset) else frozenset(accepted)
    return under_prefixes(str(row.get("url") or ""), str(row.get("domain") or ""), prefixes)


class SeedExpansion(beam.DoFn):
    """(doc_id, {pool: [row], collected: [...]}) -> the row as JSON when it was not collected."""

    def setup(self) -> None:
        self.counter = StageCounter("expand")

    def process(self, element: tuple[str, dict[str, list[Any]]]) -> Iterator[str]:
        _doc_id, groups = element
        for row in groups["pool"]:
            self.counter.entered()
            if groups["collected"]:
                self.counter.dropped("already_collected")
                continue
            self.counter.kept()
            yield json.dumps(
                {
                    "doc_id": row["doc_id"],
                    "url": row["url"],
                    "domain": row["domain"],
                    "text": row["text"],
                },
                ensure_ascii=False,
            )


class KeepCollected(beam.DoFn):
    """(doc_id, {pool: [row], collected: [...]}) -> the pool row when it was collected."""

    def setup(self) -> None:
        self.counter = StageCounter("final")

    def process(self, element: tuple[str, dict[str, list[Any]]]) -> Iterator[dict[str, Any]]:
        _doc_id, groups = element
        for row in groups["pool"]:
            self.counter.entered()
            if groups["collected"]:
                self.counter.kept()
                yield row
            else:
                self.counter.dropped("not_collected")


class CountOverlap(beam.DoFn):
    """(doc_id, {current, previous}) -> counts: `overlap.in` = collected now, `overlap.kept` =
    also collected in the previous iteration (`dropped.new` otherwise)."""

    def setup(self) -> None:
        self.counter = StageCounter("overlap")

    def process(self, element: tuple[str, dict[str, list[int]]]) -> None:
        groups = element[1]
        if not groups["current"]:
            return
        self.counter.entered()
        if groups["previous"]:
            self.counter.kept()
        else:
            self.counter.dropped("new")


def make_cut(hist: ScoreHistogram, budget_tokens: int | None, min_score: float | None) -> Cut:
    """The cut of the ranked pool: by token budget, else by minimum probability."""
    if budget_tokens is not None:
        return cut_for_budget(hist, budget_tokens)
    if min_score is None:
        raise ValueError("give a token budget or a minimum score")
    return cut_for_min_score(hist, min_score)


def _keyed_one(doc_id: str) -> tuple[str, int]:
    return doc_id, 1


class Recall(beam.PTransform):
    """One iteration's recall (DeepSeekMath section 2.1) over pool rows.

    Input: pool rows (doc_id, url, domain, text), or {"rows": rows, "previous": doc ids
    collected in the previous iteration}. Output: {"scores": score rows with `collected`,
    "collected": collected doc ids, "domains": (domain, (pages, collected)), "prefixes":
    (domain/prefix, (pages, collected)) within math domains with at least `min_prefix_pages`
    pages, "histogram": the merged ScoreHistogram, "cut": the Cut, DEAD_LETTER: pages that could
    not be scored}. With "previous", the `overlap` counters say how many collected pages were
    collected before.
    """

    def __init__(
        self,
        model_dir: str,
        tokenizer: str | None,
        budget_tokens: int | None,
        min_score: float | None,
        domain_threshold: float,
        min_prefix_pages: int,
    ) -> None:
        super().__init__()
        self.model_dir = model_dir
        self.tokenizer = tokenizer
        self.budget_tokens = budget_tokens
        self.min_score = min_score
        self.domain_threshold = domain_threshold
        self.min_prefix_pages = min_prefix_pages

    def expand(self, inputs: Any) -> dict[str, beam.PCollection]:
        rows = inputs["rows"] if isinstance(inputs, dict) else inputs
        previous = inputs.get("previous") if isinstance(inputs, dict) else None
        scored = rows | "Score" >> beam.ParDo(
            ScorePages(self.model_dir, self.tokenizer)
        ).with_outputs(DEAD_LETTER, main="scores")
        hist = (
            scored.scores
            | "LogitTokens" >> beam.Map(lambda r: (r["logit"], r["n_tokens"]))
            | "Histogram" >> beam.CombineGlobally(ScoreHistogramCombineFn())
        )
        cut = hist | "Cut" >> beam.Map(make_cut, self.budget_tokens, self.min_score)
        marked = scored.scores | "Mark" >> beam.ParDo(
            MarkCollected(), cut=beam.pvalue.AsSingleton(cut)
        )
        collected = (
            marked
            | "Collected" >> beam.Filter(lambda r: r["collected"])
            | "CollectedIds" >> beam.Map(lambda r: r["doc_id"])
        )
        domains = (
            marked
            | "DomainPairs" >> beam.Map(domain_count)
            | "PerDomain" >> beam.CombinePerKey(sum_pairs)
        )
        threshold, min_pages = self.domain_threshold, self.min_prefix_pages
        math_list = domains | "MathDomains" >> beam.FlatMap(
            lambda kv: [kv[0]] if DomainRow(kv[0], *kv[1]).is_math(threshold) else []
        )
        prefixes = (
            marked
            | "PrefixPairs" >> beam.FlatMap(prefix_counts, beam.pvalue.AsList(math_list))
            | "PerPrefix" >> beam.CombinePerKey(sum_pairs)
            | "EnoughPages" >> beam.Filter(lambda kv: kv[1][0] >= min_pages)
        )
        if previous is not None:
            _ = (
                {
                    "current": collected | "KeyCurrent" >> beam.Map(_keyed_one),
                    "previous": previous | "KeyPrevious" >> beam.Map(_keyed_one),
                }
                | "JoinPrevious" >> beam.CoGroupByKey()
                | "Overlap" >> beam.ParDo(CountOverlap())
            )
        return {
            "scores": marked,
            "collected": collected,
            "domains": domains,
            "prefixes": prefixes,
            "histogram": hist,
            "cut": cut,
            DEAD_LETTER: scored[DEAD_LETTER],
        }


class JoinCollected(beam.PTransform):
    """{"pool": pool rows, "collected": collected doc ids} -> (doc_id, {"pool": [row],
    "collected": [1] or []}), for a DoFn that keeps or drops each pool row by it."""

    def expand(self, inputs: dict[str, beam.PCollection]) -> beam.PCollection:
        return {
            "pool": inputs["pool"] | "KeyPool" >> beam.Map(lambda r: (r["doc_id"], r)),
            "collected": inputs["collected"] | "KeyIds" >> beam.Map(_keyed_one),
        } | "Join" >> beam.CoGroupByKey()
