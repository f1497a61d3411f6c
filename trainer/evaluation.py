"""Held-out loss per domain (code, math, text): the forgetting curve.

Each domain's held-out documents are packed once and scored at every evaluation with the
training loss (trainer.model.cross_entropy_loss); ranks score disjoint sequences and the sums
are added. Rows go to eval.csv, the plot to eval.png. Which documents, and why: docs/trainer.md.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tokenizer.manifest import ShardEntry
from trainer import packing
from trainer.distributed import DistContext, all_reduce_sum
from trainer.model import cross_entropy_loss
from trainer.shard_source import heldout_documents

EVAL_FIELDS = ("step", "tokens", "stage", "domain", "loss", "target_tokens")


@dataclass(frozen=True)
class HeldOutSet:
    """One domain's held-out sequences (this rank's share)."""

    domain: str
    input_ids: np.ndarray
    labels: np.ndarray
    position_ids: np.ndarray


def _with_specials(
    tokens: np.ndarray, offsets: np.ndarray, bos: int | None, eos: int | None
) -> tuple[np.ndarray, np.ndarray]:
    if bos is None and eos is None:
        return tokens, offsets
    parts = []
    for i in range(offsets.size - 1):
        if bos is not None:
            parts.append(np.array([bos]))
        parts.append(tokens[offsets[i] : offsets[i + 1]].astype(np.int64))
        if eos is not None:
            parts.append(np.array([eos]))
    extra = (bos is not None) + (eos is not None)
    new_offsets = offsets + extra * np.arange(offsets.size)
    return np.concatenate(parts) if parts else tokens, new_offsets


def build_heldout_sets(
    shards: Sequence[ShardEntry],
    tokens_per_domain: int,
    seq_len: int,
    pad_id: int,
    bos: int | None,
    eos: int | None,
    ctx: DistContext,
) -> list[HeldOutSet]:
    """Packed held-out sequences per domain present in `shards` (domains sorted)."""
    sets = []
    for domain in sorted({s.domain for s in shards}):
        tokens, offsets = heldout_documents(shards, domain, tokens_per_domain)
        tokens, offsets = _with_specials(tokens, offsets, bos, eos)
        if tokens.size == 0:
            continue
        packed = packing.pack_best_fit(tokens, offsets, seq_len, pad_id)
        n = packed.n_sequences - packed.n_sequences % ctx.world_size
        if n == 0:
            continue
        rows = np.arange(ctx.rank, n, ctx.world_size)
        sets.append(
            HeldOutSet(
                domain,
                packed.input_ids[rows].astype(np.int64),
                packed.labels[rows].astype(np.int64),
                packed.position_ids[rows].astype(np.int64),
            )
        )
    return sets


@torch.no_grad()
def evaluate(
    model: nn.Module,
    sets: Sequence[HeldOutSet],
    micro_batch_size: int,
    ctx: DistContext,
    autocast: AbstractContextManager,
) -> dict[str, tuple[float, int]]:
    """domain -> (mean loss in nats over all ranks' targets, target tokens)."""
    was_training = model.training
    model.eval()
    results = {}
    for held in sets:
        loss_sum = 0.0
        targets = 0
        for start in range(0, held.input_ids.shape[0], micro_batch_size):
            part = slice(start, start + micro_batch_size)
            ids = torch.from_numpy(held.input_ids[part]).to(ctx.device)
            labels = torch.from_numpy(held.labels[part]).to(ctx.device)
            positions = torch.from_numpy(held.position_ids[part]).to(ctx.device)
            with autocast:
                logits = model(ids, positions)
            loss_sum += float(cross_entropy_loss(logits, labels, reduction="sum"))
            targets += int((labels != packing.IGNORE_INDEX).sum())
        loss_sum, total = all_reduce_sum([loss_sum, float(targets)], ctx)
        results[held.domain] = (loss_sum / total if total else math.nan, int(total))
    model.train(was_training)
    return results


def append_eval_rows(
    path: Path, step: int, tokens: int, stage: int, results: dict[str, tuple[float, int]]
) -> None:
    new = not path.exists()
    with path.open("a", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        if new:
            writer.writerow(EVAL_FIELDS)
        for domain, (loss, n) in sorted(results.items()):
            writer.writerow([step, tokens, stage, domain, f"{loss:.6f}", n])


def read_eval_rows(path: Path) -> list[dict[str, object]]:
    """eval.csv as dicts with typed values."""
    with path.open(newline="", encoding="utf-8") as fh:
        return [
            {
                "step": int(r["step"]),
                "tokens": int(r["tokens"]),
                "stage": int(r["stage"]),
                "domain": r["domain"],
                "loss": float(r["loss"]),
                "target_tokens": int(r["target_tokens"]),
            }
            for r in csv.DictReader(fh)
        ]


def plot_eval(csv_path: Path, png_path: Path, title: str = "") -> bool:
    """Draw the forgetting curve; False (nothing written) when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = read_eval_rows(csv_path)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for domain in sorted({str(r["domain"]) for r in rows}):
        mine = [r for r in rows if r["domain"] == domain]
        ax.plot([r["tokens"] for r in mine], [r["loss"] for r in mine], marker="o", label=domain)
    changes = sorted(
        {int(a["tokens"]) for a, b in itertools.pairwise(rows) if b["stage"] != a["stage"]}
    )
    for i, x in enumerate(changes):
        ax.axvline(x, color="grey", linestyle="--", label="stage change" if i == 0 else None)
    ax.set_xlabel("training tokens")
    ax.set_ylabel("held-out loss (nats / token)")
    ax.set_title(title or "held-out loss per domain")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = png_path.with_suffix(".png.tmp")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    tmp.replace(png_path)
    return True
