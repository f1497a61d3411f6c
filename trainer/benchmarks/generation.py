"""Greedy generation and log-likelihood scoring with our Transformer: what every benchmark calls.

`greedy_generate` decodes a batch of left-padded prompts with the model's KV cache (prefill once,
then one token per row per step; a row stops at eos, at a stop string or after max_new_tokens)
and gives the same tokens as `greedy_generate_uncached`, which reruns the full forward for every
new token (the reference, and the baseline of bench/generation_throughput.py). `EvalModel` wraps
model + tokenizer behind the two calls the benchmarks need (`generate`, `loglikelihood`), the
same pair lm-evaluation-harness asks of a model, so a test can hand the benchmarks a fake one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from trainer.model import Transformer


class LanguageModel(Protocol):
    """What the benchmarks ask of a model (lm-evaluation-harness's `LM` has the same pair)."""

    def generate(
        self, prompts: Sequence[str], stop: Sequence[str], max_new_tokens: int
    ) -> list[str]:
        """Greedy continuation of every prompt, cut before the first stop string."""
        ...

    def loglikelihood(self, requests: Sequence[tuple[str, str]]) -> list[LogLikelihood]:
        """For every (context, continuation): the continuation's log-probability given the
        context."""
        ...


@dataclass(frozen=True)
class LogLikelihood:
    """The score of one continuation given its context."""

    logprob: float
    """Sum over the continuation's tokens of log p(token | everything before it) (nats)."""
    tokens: int
    """Number of continuation tokens scored."""
    greedy: bool
    """Every continuation token was the model's argmax (lm-eval's `is_greedy`)."""


StopCheck = Callable[[int, list[int]], bool]
"""(row, tokens generated so far) -> True when that row should stop (e.g. a stop string)."""


@torch.inference_mode()
def greedy_generate(
    model: Transformer,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    eos_ids: Sequence[int] = (),
    should_stop: StopCheck | None = None,
    pad_id: int = 0,
) -> list[list[int]]:
    """Greedy continuation ids of every prompt, decoded together with a KV cache.

    Prompts are left-padded to the longest one; each row's positions count its own tokens, so a
    row decodes as it would alone. A row stops after an eos id (kept in its output), when
    should_stop says so, or after max_new_tokens; the loop ends when every row has stopped.
    """
    batch = len(prompts)
    if batch == 0:
        return []
    device = model.tok_embeddings.weight.device
    longest = max(len(p) for p in prompts)
    if longest == 0:
        raise ValueError("every prompt needs at least one token")
    ids = torch.full((batch, longest), pad_id, dtype=torch.long)
    valid = torch.zeros(batch, longest, dtype=torch.bool)
    for row, prompt in enumerate(prompts):
        if prompt:
            ids[row, longest - len(prompt) :] = torch.tensor(list(prompt), dtype=torch.long)
            valid[row, longest - len(prompt) :] = True
    cache = model.new_cache(batch, longest + max_new_tokens)
    logits = model.forward_cached(ids.to(device), cache, valid.to(device))[:, -1]
    eos = torch.tensor(sorted(set(eos_ids)), dtype=torch.long, device=device)
    outputs: list[list[int]] = [[] for _ in range(batch)]
    done = [False] * batch
    for step in range(max_new_tokens):
        next_ids = logits.float().argmax(dim=-1)
        is_eos = torch.isin(next_ids, eos).tolist() if len(eos) else [False] * batch
        chosen = next_ids.tolist()
        for row in range(batch):
            if done[row]:
                continue
            outputs[row].append(chosen[row])
            if is_eos[row] or (should_stop is not None and should_stop(row, outputs[row])):
                done[row] = True
        if all(done) or step == max_new_tokens - 1:
            break  # no forward pass for a token nobody will read
        logits = model.forward_cached(next_ids[:, None], cache)[:, -1]
    return outputs


@torch.inference_mode()
def greedy_generate_uncached(
    model: Transformer,
    prompt: Sequence[int],
    max_new_tokens: int,
    eos_ids: Sequence[int] = (),
) -> list[int]:
    """Greedy continuation of one prompt, the full forward rerun for every new token.

    The reference the cached decoder must equal token for token, and the throughput baseline.
    """
    device = model.tok_embeddings.weight.device
    tokens = list(prompt)
    out: list[int] = []
    for _ in range(max_new_tokens):
        logits = model(torch.tensor([tokens], dtype=torch.long, device=device))[0, -1]
        token = int(logits.float().argmax())
        out.append(token)
        tokens.append(token)
        if token in eos_ids:
            break
    return out


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to (not including) the earliest occurrence of any stop string."""
    cut = len(text)
    for s in stop:
        at = text.find(s)
        if s and at != -1:
            cut = min(cut, at)
    return text[:cut]


class EvalModel:
    """Our Transformer + its tokenizer: greedy generation and log-likelihoods from text.

    Prompts longer than the model's window keep their last tokens (the few-shot exemplars at the
    start go first); `truncated` counts how often that happened, so a report can say so.
    """

    def __init__(
        self,
        model: Transformer,
        tokenizer: Tokenizer,
        batch_size: int = 8,
        prefix_ids: Sequence[int] = (),
        eos_ids: Sequence[int] = (),
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.prefix_ids = list(prefix_ids)
        self.eos_ids = list(eos_ids)
        self.max_len = model.config.max_seq_len
        self.truncated = 0

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def _fit(self, ids: list[int], room: int) -> list[int]:
        """prefix + ids cut from the left to at most `room` tokens."""
        full = self.prefix_ids + ids
        if len(full) <= room:
            return full
        self.truncated += 1
        return full[len(full) - room :]

    def generation_budget(self, max_new_tokens: int) -> int:
        """New tokens actually allowed: at most half the window, so a prompt keeps the rest."""
        return max(1, min(max_new_tokens, self.max_len // 2))

    def generate(
        self, prompts: Sequence[str], stop: Sequence[str], max_new_tokens: int
    ) -> list[str]:
        budget = self.generation_budget(max_new_tokens)
        encoded = [self._fit(self.encode(p), self.max_len - budget) for p in prompts]
        # Longest first: rows of a batch have similar lengths, so little padding is computed.
        order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
        texts: list[str] = [""] * len(prompts)
        for at in range(0, len(order), self.batch_size):
            rows = order[at : at + self.batch_size]

            def stop_check(row: int, generated: list[int]) -> bool:
                # Only the tail can hold a new stop string: decode the last 32 tokens.
                tail = self.tokenizer.decode(generated[-32:], skip_special_tokens=True)
                return any(s in tail for s in stop)

            outs = greedy_generate(
                self.model, [encoded[i] for i in rows], budget, self.eos_ids, stop_check
            )
            for i, out in zip(rows, outs, strict=True):
                text = self.tokenizer.decode(out, skip_special_tokens=True)
                texts[i] = cut_at_stop(text, stop)
        return texts

    @torch.inference_mode()
    def loglikelihood(self, requests: Sequence[tuple[str, str]]) -> list[LogLikelihood]:
        pieces = []
        for context, continuation in requests:
            # As lm-eval: a context's trailing spaces belong to the continuation's first token.
            stripped = context.rstrip(" ")
            continuation = context[len(stripped) :] + continuation
            cont = self.encode(continuation)[: self.max_len - 1] or [0]
            ctx = self._fit(self.encode(stripped), self.max_len - len(cont))
            if not ctx:  # no context token left to predict the first continuation token from
                ctx, cont = cont[:1], cont[1:] or cont[:1]
            pieces.append((ctx, cont))
        device = self.model.tok_embeddings.weight.device
        order = sorted(range(len(pieces)), key=lambda i: -sum(map(len, pieces[i])))
        results: list[LogLikelihood | None] = [None] * len(pieces)
        for at in range(0, len(order), self.batch_size):
            rows = order[at : at + self.batch_size]
            seqs = [pieces[i][0] + pieces[i][1] for i in rows]
            longest = max(len(s) for s in seqs)
            ids = torch.zeros(len(rows), longest, dtype=torch.long)
            for r, s in enumerate(seqs):
                ids[r, : len(s)] = torch.tensor(s)
            # Right padding: a causal row never sees the padding after it.
            logprobs = F.log_softmax(self.model(ids.to(device)).float(), dim=-1)
            for r, i in enumerate(rows):
                ctx, cont = pieces[i]
                start = len(ctx) - 1  # logits at t predict token t + 1
                row = logprobs[r, start : start + len(cont)]
                target = torch.tensor(cont, device=device)
                picked = row.gather(1, target[:, None])[:, 0]
                greedy = bool((row.argmax(dim=-1) == target).all())
                results[i] = LogLikelihood(float(picked.sum()), len(cont), greedy)
        return [r for r in results if r is not None]
