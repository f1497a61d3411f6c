"""Cost model: core-hours, price and shuffle volume for one Common Crawl snapshot.

    .venv/bin/python deploy/cost_model.py          # prints the tables of deploy/README.md

Every input is a named constant below, marked MEASURED (on this project's 2-core machines, with
the command that measured it) or ASSUMED (with the reason). deploy/README.md embeds this
script's output verbatim and tests/deploy/test_deploy_configs.py fails if the two differ, so
change a figure here and paste the new tables into the README.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

# --- MEASURED: pages (or docs, tokens) per second per core, single process ------------------
# bench/pool_scale.py, 2026-12-06 (later run, after the smaller connected-components graph and
# the faster text hash), 40,000 real-size pages (../shared/data/html cycled with distinct URLs,
# 164 KB of HTML a page on average, 20 WARC files): the whole `mathcorpus pool` command (read,
# URL, decode, resiliparse + math extraction, lid.176, text hash, MinHash band keys, the
# key-record shuffles and decisions, the Parquet writes) on FnApiRunner took 201 CPU-seconds
# (202 s of wall time on an otherwise idle 2-core machine): pages per CPU-second, i.e. per
# core. Dedup's MinHash is part of it: it runs while each file is staged.
POOL_PAGES_S = 199
# bench/pool_throughput.py (2026-12-06, idle machine): the default path without Beam and
# without dedup keys, as plain functions, math-aware extraction included; for comparison only.
POOL_FUNCTIONS_PAGES_S = 243
# Bytes per page through each shuffle of the pool (stats.json `shuffle_bytes_per_page`: each
# record encoded with Beam's FastPrimitivesCoder, as the GroupByKeys get it), measured on the
# 552 distinct real pages of ../shared/data/html with distinct URLs (2026-12-06). Pages are
# those that left language id. Connected components' edges and labels exist only for pages in
# near-duplicate clusters and are left out.
SHUFFLE_BYTES_PER_PAGE = {
    "newest capture per URL": 173.7,
    "exact (text hash)": 159.9,
    "near (LSH band records)": 482.0,
    "near (node lengths)": 27.8,
    "decisions by part": 0.5,
}
# bench/scoring_throughput.py, line beam_score_pages: the mining loop's scoring DoFn on Beam's
# FnApiRunner at the paper's settings (dim 256, word 3-grams), pages truncated to 4,000
# characters, through the scoring table (classifier_table.py). Measured in a later session on a
# slower machine (the same fastText baseline ran at 906 docs/s there against 1,761 here), so
# this is a low figure.
FASTTEXT_DOCS_S = 4_164
# bench/shards_throughput.py: BPE encode + Parquet shard write.
SHARDS_TOKENS_S = 1_282_000
# bench/decontam_throughput.py: 10-gram matching against the full benchmark list.
DECONTAM_DOCS_S = 5_967

# --- ASSUMED ------------------------------------------------------------------------------
SNAPSHOT_PAGES = 3.0e9
"""HTML pages in one Common Crawl snapshot (the issue's figure)."""
POOL_KEEP_FRACTION = 0.5
"""Pages left after the pool's filters with --languages en zh (the paper's choice): English is
a bit under half of Common Crawl and Chinese a few percent (Common Crawl's language statistics);
extraction and length filters remove little more."""
DEDUP_KEEP_FRACTION = 0.7
"""Pages left after exact + MinHash near-dedup within one snapshot (web-scale dedup reports
remove a quarter to a half of a single crawl)."""
MINING_ITERATIONS = 4
"""fastText scores the whole pool once per iteration (paper section 2.1: four iterations)."""
COLLECTED_FRACTION = 35.5e6 / 40e9
"""Share of the pool the paper finally collected: 35.5M pages out of a 40B-page pool (2.1)."""
TOKENS_PER_PAGE = 120e9 / 35.5e6
"""Tokens per collected page: 120B tokens over 35.5M pages (paper section 2.1)."""

# Prices in USD, list prices of us-central1 as we last saw them; check the pricing pages
# (cloud.google.com/dataflow/pricing, cloud.google.com/compute/vm-instance-pricing).
DATAFLOW_VCPU_HOUR = 0.056
DATAFLOW_GB_HOUR = 0.003557
DATAFLOW_SHUFFLE_GB = 0.011
GCE_N2_VCPU_HOUR = 0.0486  # n2-standard-16 on demand, memory included, per vCPU
GCE_N2_SPOT_VCPU_HOUR = 0.0117  # the same as a Spot VM
# One measured core = one vCPU (a hyperthread): ASSUMED; a hyperthread may deliver less.


@dataclass(frozen=True)
class Stage:
    name: str
    work: float
    """Units of work (pages, docs or tokens)."""
    unit: str
    rate_per_core_s: float
    rate_source: str
    machine: str
    gb_per_vcpu: float

    @property
    def core_hours(self) -> float:
        return self.work / self.rate_per_core_s / 3600.0

    def dataflow_usd(self) -> float:
        per_vcpu_hour = DATAFLOW_VCPU_HOUR + self.gb_per_vcpu * DATAFLOW_GB_HOUR
        return self.core_hours * per_vcpu_hour


def shuffle_bytes_per_page() -> float:
    return sum(SHUFFLE_BYTES_PER_PAGE.values())


def stages() -> list[Stage]:
    pool = SNAPSHOT_PAGES * POOL_KEEP_FRACTION
    deduped = pool * DEDUP_KEEP_FRACTION
    collected = deduped * COLLECTED_FRACTION
    return [
        Stage(
            "pool (with dedup)",
            SNAPSHOT_PAGES,
            "pages",
            POOL_PAGES_S,
            "measured",
            "n2-highcpu-16",
            1,
        ),
        Stage(
            "mine",
            deduped * MINING_ITERATIONS,
            "page scorings",
            FASTTEXT_DOCS_S,
            "measured",
            "n2-highcpu-16",
            1,
        ),
        Stage("decontaminate", collected, "pages", DECONTAM_DOCS_S, "measured", "n2-standard-8", 4),
        Stage(
            "shards",
            collected * TOKENS_PER_PAGE,
            "tokens",
            SHARDS_TOKENS_S,
            "measured",
            "n2-standard-8",
            4,
        ),
    ]


def _num(x: float) -> str:
    if x >= 1e9:
        return f"{x / 1e9:.2f}B"
    if x >= 1e6:
        return f"{x / 1e6:.1f}M"
    return f"{x:,.0f}"


def _amount(x: float) -> str:
    """Whole numbers, with one decimal below 10 so that small stages do not read as zero."""
    return f"{x:,.1f}" if x < 10 else f"{x:,.0f}"


def render_markdown() -> str:
    rows = stages()
    lines = [
        "| stage | work | rate / core / s | core-hours | Dataflow USD | GCE on-demand USD "
        "| GCE Spot USD | worker shape |",
        "|---|---|---|---|---|---|---|---|",
    ]
    totals = [0.0, 0.0, 0.0, 0.0]
    for s in rows:
        ondemand = s.core_hours * GCE_N2_VCPU_HOUR
        spot = s.core_hours * GCE_N2_SPOT_VCPU_HOUR
        dataflow = s.dataflow_usd()
        for i, v in enumerate((s.core_hours, dataflow, ondemand, spot)):
            totals[i] += v
        lines.append(
            f"| {s.name} | {_num(s.work)} {s.unit} | {s.rate_per_core_s:,.0f} ({s.rate_source}) "
            f"| {_amount(s.core_hours)} | {_amount(dataflow)} | {_amount(ondemand)} "
            f"| {_amount(spot)} "
            f"| {s.machine} |"
        )
    lines.append(
        f"| **total** | | | **{totals[0]:,.0f}** | **{totals[1]:,.0f}** | **{totals[2]:,.0f}** "
        f"| **{totals[3]:,.0f}** | |"
    )
    pool_pages = SNAPSHOT_PAGES * POOL_KEEP_FRACTION
    per_page = shuffle_bytes_per_page()
    total = pool_pages * per_page
    functions_hours = SNAPSHOT_PAGES / POOL_FUNCTIONS_PAGES_S / 3600.0
    lines += [
        "",
        f"Shuffles of the pool: only key records cross them (measured bytes per page with "
        f"Beam's coder, x {_num(pool_pages)} pages that leave language id):",
        "",
        "| shuffle | bytes / page | TB | Dataflow Shuffle USD |",
        "|---|---|---|---|",
    ]
    for name, size in SHUFFLE_BYTES_PER_PAGE.items():
        tb = pool_pages * size / 1e12
        lines.append(f"| {name} | {size:,.1f} | {tb:.2f} | {tb * 1e3 * DATAFLOW_SHUFFLE_GB:,.0f} |")
    lines += [
        f"| **total** | **{per_page:,.1f}** | **{total / 1e12:.2f}** "
        f"| **{total / 1e9 * DATAFLOW_SHUFFLE_GB:,.0f}** |",
        "",
        f"- pool as plain functions without dedup keys ({POOL_FUNCTIONS_PAGES_S} pages/s/core, "
        f"measured): {functions_hours:,.0f} core-hours, for comparison; the table uses the whole "
        f"command ({POOL_PAGES_S} pages/s/core, dedup included).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render_markdown() + "\n")
