"""Names of the files a training run writes in its output folder (torch-free, for readers such
as the run report)."""

from __future__ import annotations

CONFIG_FILE = "train_config.json"
"""The resolved training config."""
TRAIN_LOG = "train_log.csv"
"""One row per update: step, tokens, loss, learning rate, throughput."""
EVAL_CSV = "eval.csv"
"""Held-out loss per domain at each evaluation (the forgetting curve)."""
EVAL_PNG = "eval.png"
"""The plot of eval.csv."""
COMPARISON_FILE = "comparison.json"
"""An experiment's comparison of its runs (in the experiment's output folder)."""
BENCHMARK_RESULTS_FILE = "results.json"
"""Benchmark figures of one checkpoint (`mathcorpus eval`); an experiment's arms keep one per
stage in <run>/benchmarks/<stage>/."""
