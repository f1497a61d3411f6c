"""Training throughput of the two document masks, FlexAttention against the dense SDPA mask.

    .venv/bin/python bench/gpu_attention.py [--steps 200] [--batch 2] [--seq-len 4096]
        [--manifest shards/manifest.json --key math] [--compile]

Needs one CUDA GPU (exits with a message otherwise). The shape is `deepseek-coder-1.3b`
(trainer/model_configs.py: 1.35B parameters, 24 layers, dim 2048, 16 heads) at 4K context,
trained as the training loop trains it: float32 weights and AdamW state, bf16 autocast,
summed next-token loss over packed rows. The rows are best-fit packed (trainer/packing.py)
from synthetic documents (log-normal lengths, median 600 tokens, so a 4K row holds several
documents) or from the documents of a manifest's `--key` bucket. Each implementation runs
`--warmup` untimed steps (compilation) and then `--steps` timed ones on the same rows from
the same initial weights; printed: tokens/s, MFU (the GPU's dense bf16 peak from
trainer/peak_flops.py, or --peak-flops), peak memory, the first-step loss of each (they should
agree to bf16 precision) and the flex / dense ratios.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np
import torch

from trainer.attention import resolve_attention
from trainer.model import Transformer, cross_entropy_loss
from trainer.model_configs import flops_per_token, get_model_config
from trainer.packing import pack_best_fit
from trainer.peak_flops import match_gpu

SHAPE = "deepseek-coder-1.3b"


def synthetic_documents(n_tokens: int, vocab_size: int, seed: int) -> list[np.ndarray]:
    """Random-token documents of log-normal length (median 600, a long tail; at most 8K)."""
    rng = np.random.default_rng(seed)
    docs: list[np.ndarray] = []
    total = 0
    while total < n_tokens:
        length = int(np.clip(rng.lognormal(np.log(600), 1.0), 8, 8192))
        docs.append(rng.integers(1, vocab_size, size=length, dtype=np.int32))
        total += length
    return docs


def manifest_documents(manifest: str, key: str, n_tokens: int, seed: int) -> list[np.ndarray]:
    """Documents of bucket `key` of `manifest`, in the training loop's stream order."""
    from trainer.shard_source import DocumentStream, open_training_data

    data = open_training_data([manifest], [{key: 1.0}])
    stream = DocumentStream(data.buckets[key], seed)
    docs: list[np.ndarray] = []
    total = 0
    while total < n_tokens:
        doc = np.asarray(stream.next_document(), dtype=np.int32)
        docs.append(doc)
        total += doc.size
    return docs


def packed_rows(
    docs: list[np.ndarray], seq_len: int, rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """input_ids, labels and position_ids (rows, seq_len): `rows` rows drawn (seeded) from
    the best-fit packing of docs. Drawn, not the first ones: best fit places the longest
    documents first, so the first rows are chunks of single long documents."""
    tokens = np.concatenate(docs)
    offsets = np.concatenate([[0], np.cumsum([d.size for d in docs])]).astype(np.int64)
    packed = pack_best_fit(tokens, offsets, seq_len, pad_id=0)
    available = packed.input_ids.shape[0]
    if available < rows:
        raise SystemExit(f"only {available} packed rows, {rows} needed")
    take = np.sort(np.random.default_rng(0).choice(available, size=rows, replace=False))
    return packed.input_ids[take], packed.labels[take], packed.position_ids[take]


def run(
    kind: str,
    rows: tuple[np.ndarray, np.ndarray, np.ndarray],
    args: argparse.Namespace,
    peak: float | None,
) -> dict[str, float]:
    """Train args.warmup + args.steps steps with attention `kind`; the measured figures."""
    device = torch.device("cuda")
    config = get_model_config(SHAPE)
    torch.manual_seed(0)
    model = Transformer(config).to(device)
    if args.compile:
        model.compile()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), fused=True)
    ids, labels, positions = (torch.from_numpy(a).long().to(device) for a in rows)
    batch = args.batch
    n_rows = ids.shape[0]
    torch.cuda.reset_peak_memory_stats(device)
    first_loss = float("nan")
    t0 = 0.0
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            torch.cuda.synchronize(device)
            t0 = time.perf_counter()
        start = (step * batch) % n_rows
        take = slice(start, start + batch)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(ids[take], positions[take], attention=kind)
        loss = cross_entropy_loss(logits, labels[take])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step == 0:
            first_loss = loss.item()
    torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - t0
    tokens_per_s = args.steps * batch * args.seq_len / elapsed
    mfu = flops_per_token(config, args.seq_len) * tokens_per_s / peak if peak else float("nan")
    peak_gib = torch.cuda.max_memory_allocated(device) / 2**30
    del model, optimizer
    torch.cuda.empty_cache()
    return {"tokens_per_s": tokens_per_s, "mfu": mfu, "peak_gib": peak_gib, "loss0": first_loss}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="timed steps per implementation")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps (compilation)")
    parser.add_argument("--batch", type=int, default=2, help="rows per step")
    parser.add_argument("--seq-len", type=int, default=4096, help="row length (tokens)")
    parser.add_argument("--manifest", help="read documents from this manifest's shards")
    parser.add_argument("--key", default="math", help="bucket of --manifest to read")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model too")
    parser.add_argument("--peak-flops", type=float, default=0.0, help="override the GPU peak")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit(
            "bench/gpu_attention.py needs a CUDA GPU: torch.cuda.is_available() is False "
            "(FlexAttention's fused kernel and the bf16 timings it compares are GPU-only)"
        )
    name = torch.cuda.get_device_name()
    row = match_gpu(name)
    peak = args.peak_flops or (row.bf16_flops if row else None)
    config = get_model_config(SHAPE)
    n_rows = 64  # distinct rows, cycled through
    need = 4 * n_rows * args.seq_len  # packed into ~4x the rows drawn
    if args.manifest:
        docs = manifest_documents(args.manifest, args.key, need, seed=0)
        source = f"{args.manifest} [{args.key}]"
    else:
        docs = synthetic_documents(need, config.vocab_size, seed=0)
        source = "synthetic documents"
    rows = packed_rows(docs, args.seq_len, n_rows)
    docs_per_row = float((rows[2] == 0).sum(axis=1).mean())
    peak_text = f"{peak / 1e12:.1f} TFLOP/s" if peak else "unknown (no MFU; --peak-flops)"
    print(
        f"{name} (peak {peak_text}); {SHAPE}, seq {args.seq_len}, batch {args.batch}, "
        f"{args.steps} timed steps, bf16 autocast; {source}, {docs_per_row:.1f} documents/row"
    )
    results: dict[str, dict[str, float]] = {}
    for kind in ("flex", "sdpa_dense"):
        assert resolve_attention(kind, torch.device("cuda")) == kind
        results[kind] = r = run(kind, rows, args, peak)
        print(
            f"{kind:>10}: {r['tokens_per_s']:,.0f} tokens/s, MFU {r['mfu']:.1%}, "
            f"peak memory {r['peak_gib']:.1f} GiB, first loss {r['loss0']:.4f}",
            flush=True,
        )
    flex, dense = results["flex"], results["sdpa_dense"]
    print(
        f"flex / dense: tokens/s x{flex['tokens_per_s'] / dense['tokens_per_s']:.2f}, "
        f"peak memory x{flex['peak_gib'] / dense['peak_gib']:.2f}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
