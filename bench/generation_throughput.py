"""Greedy generation throughput with and without the KV cache, in one run on one machine.

    .venv/bin/python bench/generation_throughput.py [--batch 8] [--prompt 64] [--new 128]

The model is the demo's shape (trainer/model_configs.py `tiny` with the demo's overrides: dim
96, 2 layers, 4 heads, 2 kv heads, SwiGLU 256, vocab 4096, 256-token window), randomly
initialised: throughput does not depend on the weights. Three decoders produce the same tokens
(checked here): the full forward rerun for every new token, one prompt at a time (the
baseline); the KV cache with one prompt at a time; the KV cache with `--batch` prompts
decoded together (what `mathcorpus eval` does). Printed: new tokens per second of each and
the ratios to the baseline. Figures measured: docs/eval.md.
"""

from __future__ import annotations

import argparse
import time

import torch

from trainer.benchmarks.generation import greedy_generate, greedy_generate_uncached
from trainer.model import Transformer
from trainer.model_configs import ModelConfig

DEMO_SHAPE = ModelConfig(
    vocab_size=4096,
    dim=96,
    n_layers=2,
    n_heads=4,
    n_kv_heads=2,
    intermediate_size=256,
    max_seq_len=256,
    init_std=0.2,  # larger than training's, so greedy decoding does not repeat one token
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8, help="prompts decoded together")
    parser.add_argument("--prompt", type=int, default=64, help="prompt tokens")
    parser.add_argument("--new", type=int, default=128, help="new tokens per prompt")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = Transformer(DEMO_SHAPE).eval()
    gen = torch.Generator().manual_seed(1)
    prompts = [
        torch.randint(0, 4096, (args.prompt,), generator=gen).tolist() for _ in range(args.batch)
    ]
    total = args.batch * args.new

    t0 = time.perf_counter()
    reference = [greedy_generate_uncached(model, p, args.new) for p in prompts]
    uncached_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    one_by_one = [greedy_generate(model, [p], args.new)[0] for p in prompts]
    cached_one_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    batched = greedy_generate(model, prompts, args.new)
    cached_batch_s = time.perf_counter() - t0

    if not (reference == one_by_one == batched):
        raise SystemExit("the decoders disagree: the KV cache path is broken")
    print(
        f"demo-shaped model, {torch.get_num_threads()} CPU thread(s), {args.batch} prompts of "
        f"{args.prompt} tokens, {args.new} new tokens each (identical outputs)"
    )
    base = total / uncached_s
    for name, seconds in (
        ("uncached, one prompt at a time", uncached_s),
        ("KV cache, one prompt at a time", cached_one_s),
        (f"KV cache, batch of {args.batch}", cached_batch_s),
    ):
        rate = total / seconds
        print(f"  {name:34s} {rate:9.0f} tokens/s  {rate / base:5.2f}x")


if __name__ == "__main__":
    main()
