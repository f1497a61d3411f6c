"""The training run's configuration: one typed frozen dataclass per config section.

`TrainConfig` is a whole run; constructing it checks every section and the sections together
and raises one `TrainConfigError` listing every problem. Reading a config file (TOML, YAML,
JSON), overrides and writing `train_config.json` are in trainer/config_loader.py; the file
format and the defaults' sources are in docs/trainer.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

DOMAIN_NAMES = ("math", "code", "text")


class TrainConfigError(ValueError):
    """A training config is invalid; the message lists every problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        listing = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid train config ({len(self.problems)} problem(s)):\n{listing}")


def _positive(problems: list[str], obj: Any, *names: str) -> None:
    for name in names:
        if getattr(obj, name) < 1:
            problems.append(f"{name} must be >= 1, got {getattr(obj, name)}")


@dataclass(frozen=True)
class DataConfig:
    """Where the training tokens come from."""

    manifests: tuple[str, ...] = ()
    """Manifests (a folder with manifest.json, or the .json file; local, gs://, s3://). Several
    are read as one; their tokenizer fingerprints must be equal."""
    add_bos: bool = False
    """Put the tokenizer's bos token before every document (the manifest must name one)."""
    add_eos: bool = True
    """Put the tokenizer's eos token after every document, so the model learns where documents
    end (the manifest must name one)."""

    def problems(self) -> list[str]:
        return [] if self.manifests else ["manifests is empty: name at least one manifest"]


@dataclass(frozen=True)
class StageConfig:
    """One stage of the mixture: weights, and how many tokens it lasts."""

    weights: dict[str, float] = field(default_factory=dict)
    """Source or domain name -> relative weight (any positive scale: 0.56 or 56 or 400)."""
    tokens: int = 0
    """Document tokens drawn in this stage over all ranks (bos/eos included); 0: no end (only
    the last stage may have no end; training then stops at train.steps)."""

    def problems(self) -> list[str]:
        problems = []
        if not self.weights:
            problems.append("weights is empty")
        for name, weight in self.weights.items():
            if not weight > 0:
                problems.append(f"weights.{name} must be > 0, got {weight}")
        if self.tokens < 0:
            problems.append(f"tokens must be >= 0, got {self.tokens}")
        return problems


@dataclass(frozen=True)
class MixtureConfig:
    """One-stage weights or a schedule of stages (give exactly one of the two)."""

    weights: dict[str, float] = field(default_factory=dict)
    """One stage for the whole run: source or domain name -> weight. Shares of the drawn
    document tokens follow the weights (DeepSeekMath sec. 2.3: 56 math corpus, 4
    AlgebraicStack, 10 arXiv, 20 GitHub code, 10 natural language)."""
    stages: tuple[StageConfig, ...] = ()
    """Stages run in order, each for its `tokens` (DeepSeekMath sec. 5.1.1 two-stage: code,
    then math)."""

    def resolved_stages(self) -> tuple[StageConfig, ...]:
        return self.stages or (StageConfig(weights=dict(self.weights), tokens=0),)

    def problems(self) -> list[str]:
        if bool(self.weights) == bool(self.stages):
            return ["give either weights (one stage) or stages, not both and not neither"]
        problems = []
        for i, stage in enumerate(self.resolved_stages()):
            label = f"stages[{i}]." if self.stages else ""
            problems += [f"{label}{p}" for p in stage.problems()]
            if self.stages and stage.tokens == 0 and i < len(self.stages) - 1:
                problems.append(f"stages[{i}].tokens is 0 (no end) but stages follow it")
        return problems


@dataclass(frozen=True)
class PackingConfig:
    """How documents become fixed-length sequences (trainer/packing.py)."""

    algorithm: Literal["best_fit", "concat"] = "best_fit"
    """`best_fit`: best-fit decreasing (Ding et al. 2024), documents cut only when longer than
    seq_len; `concat`: concatenate and cut every seq_len tokens."""
    seq_len: int = 4096
    """Tokens per sequence (DeepSeekMath sec. 2.3: 4K context for the 1.3B runs)."""
    buffer_sequences: int = 64
    """Documents are packed a buffer at a time; a buffer holds at least this many sequences'
    worth of tokens (more: fewer half-empty sequences, more memory)."""
    shuffle: bool = True
    """Shuffle the sequences of a buffer (seeded): best-fit emits the longest chunks first."""

    def problems(self) -> list[str]:
        problems: list[str] = []
        _positive(problems, self, "seq_len", "buffer_sequences")
        if self.algorithm not in ("best_fit", "concat"):
            problems.append(f"algorithm must be 'best_fit' or 'concat', got {self.algorithm!r}")
        return problems


@dataclass(frozen=True)
class ModelSection:
    """The model's shape: a named config (trainer/model_configs.py) with optional changes."""

    name: str = "tiny"
    """`tiny`, `small`, `deepseek-llm-1.3b`, `deepseek-coder-1.3b`, `deepseek-llm-7b`, ..."""
    vocab_size: int | None = None
    """Rows of the embedding; default: the tokenizer's vocabulary size (from the manifest)."""
    dim: int | None = None
    """Residual width."""
    n_layers: int | None = None
    """Blocks."""
    n_heads: int | None = None
    """Query heads."""
    n_kv_heads: int | None = None
    """Key/value heads (fewer than n_heads: grouped-query attention)."""
    intermediate_size: int | None = None
    """SwiGLU hidden width."""
    rope_theta: float | None = None
    """Rotary base."""
    tie_embeddings: bool | None = None
    """Share the embedding and output matrices."""
    max_seq_len: int | None = None
    """Longest sequence (tokens); default: the named config's, raised to packing.seq_len."""

    def changes(self) -> dict[str, Any]:
        """The fields given, to apply to the named config with dataclasses.replace."""
        names = [f.name for f in dataclasses.fields(self) if f.name != "name"]
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    def problems(self) -> list[str]:
        from trainer.model_configs import MODEL_CONFIGS

        if self.name not in MODEL_CONFIGS:
            return [f"name {self.name!r} is not one of {sorted(MODEL_CONFIGS)}"]
        return []


@dataclass(frozen=True)
class InitConfig:
    """The starting point of the weights."""

    kind: Literal["random", "checkpoint", "hf"] = "random"
    """`random`: fresh init from `seed`; `checkpoint`: the model weights of one of our
    checkpoints (a step folder; optimiser and data state start fresh); `hf`: a Hugging Face
    Llama-layout safetensors folder (e.g. DeepSeek-Coder-Base), whose config.json sets the
    shape (the model section is then ignored)."""
    path: str = ""
    """The checkpoint folder for `checkpoint` and `hf`."""
    allow_tokenizer_mismatch: bool = False
    """`hf` only. False: training stops before the first step when the folder's tokenizer.json
    is not the one the shards were made with (fingerprints differ; the error says what
    differs), since every id would then name another token. True: train anyway, with a
    warning (e.g. a tokenizer re-saved with an equivalent but not identical JSON)."""

    def problems(self) -> list[str]:
        problems = []
        if self.kind not in ("random", "checkpoint", "hf"):
            problems.append(f"kind must be 'random', 'checkpoint' or 'hf', got {self.kind!r}")
        elif self.kind != "random" and not self.path:
            problems.append(f"kind {self.kind!r} needs a path")
        elif self.kind != "random" and not Path(self.path).is_dir():
            problems.append(f"path {self.path!r} is not a folder")
        if self.allow_tokenizer_mismatch and self.kind != "hf":
            problems.append(
                f"allow_tokenizer_mismatch applies to kind 'hf' only, not {self.kind!r}"
            )
        return problems


@dataclass(frozen=True)
class OptimConfig:
    """AdamW (DeepSeekMath sec. 2.3)."""

    lr: float = 5.3e-4
    """Peak learning rate (sec. 2.3: 5.3e-4 for the 1.3B runs, 4.2e-4 for the 7B)."""
    betas: tuple[float, float] = (0.9, 0.95)
    """Adam beta1, beta2 (sec. 2.3)."""
    weight_decay: float = 0.1
    """Decoupled weight decay (sec. 2.3), on matrices only: norms' gains are not decayed."""
    eps: float = 1e-8
    """Adam epsilon."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this (0: no clipping)."""

    def problems(self) -> list[str]:
        problems = []
        if not self.lr > 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            problems.append(f"betas must be two numbers in [0, 1), got {self.betas}")
        if self.weight_decay < 0 or self.eps <= 0 or self.grad_clip < 0:
            problems.append("weight_decay and grad_clip must be >= 0, eps > 0")
        return problems


@dataclass(frozen=True)
class ScheduleConfig:
    """Learning-rate schedule (trainer/lr_schedule.py); total steps are train.steps."""

    kind: Literal["multi_step", "cosine"] = "multi_step"
    """`multi_step` (DeepSeekMath sec. 2.3) or `cosine`."""
    warmup_steps: int = 2000
    """Linear warm-up, in optimizer updates (sec. 2.3: 2,000)."""
    milestones: tuple[float, ...] = (0.8, 0.9)
    """multi_step: fractions of the run after which the rate drops (sec. 2.3: 80%, 90%)."""
    factors: tuple[float, ...] = (0.316, 0.1)
    """multi_step: multiplier of the peak from each milestone (sec. 2.3: 31.6%, 10%)."""
    min_ratio: float = 0.1
    """cosine: final multiplier."""

    def lr_schedule(self, total_steps: int) -> Any:
        from trainer.lr_schedule import LRScheduleConfig

        return LRScheduleConfig(
            total_steps=total_steps,
            kind=self.kind,
            warmup_steps=self.warmup_steps,
            milestones=tuple(self.milestones),
            factors=tuple(self.factors),
            min_ratio=self.min_ratio,
        )


@dataclass(frozen=True)
class TrainLoopConfig:
    """Length, batch and hardware of the run."""

    steps: int = 1000
    """Optimizer updates in the run."""
    batch_tokens: int = 4 * 1024 * 1024
    """Tokens per update over all ranks (sequence slots, padding included; sec. 2.3: 4M for
    the 1.3B runs, 10M for the 7B). Must be micro_batch_size * seq_len * world size * k; k
    micro-batches are accumulated."""
    micro_batch_size: int = 1
    """Sequences per forward pass on one rank."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """`auto`: CUDA when available, else CPU."""
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    """`bf16`: bf16 autocast (weights and optimiser state stay float32); `auto`: bf16 on CUDA,
    fp32 on CPU."""
    compile: bool = False
    """torch.compile the model (GPU; needs a C compiler on CPU)."""
    log_interval: int = 10
    """Print a progress line every this many steps (every step goes to train_log.csv)."""
    peak_flops: float = 0.0
    """Peak FLOP/s of one accelerator for MFU; 0: looked up from the CUDA device name in
    trainer/peak_flops.py (dense bf16; SXM, PCIe and NVL parts apart, e.g. H100 SXM 989.4e12,
    H100 PCIe 756e12); an unknown GPU, or the CPU, logs no MFU."""
    attention: Literal["auto", "flex", "sdpa_dense"] = "auto"
    """Document masking of packed rows (trainer/attention.py): `flex`, FlexAttention with a
    block mask (compiled on CUDA; no T x T mask); `sdpa_dense`, SDPA with a dense boolean mask
    (T^2 bytes per row, no flash kernel); `auto`: flex on CUDA, sdpa_dense on CPU."""

    def problems(self) -> list[str]:
        problems: list[str] = []
        _positive(problems, self, "steps", "batch_tokens", "micro_batch_size", "log_interval")
        if self.device not in ("auto", "cpu", "cuda"):
            problems.append(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.precision not in ("auto", "bf16", "fp32"):
            problems.append(f"precision must be auto, bf16 or fp32, got {self.precision!r}")
        if self.peak_flops < 0:
            problems.append(f"peak_flops must be >= 0, got {self.peak_flops}")
        if self.attention not in ("auto", "flex", "sdpa_dense"):
            problems.append(f"attention must be auto, flex or sdpa_dense, got {self.attention!r}")
        return problems


@dataclass(frozen=True)
class EvalConfig:
    """Held-out loss per domain (the forgetting curve)."""

    manifests: tuple[str, ...] = ()
    """Manifests of held-out shards (same tokenizer as the training data)."""
    holdout_shards_per_source: int = 0
    """Also hold out the last this-many shards of every training source (by path): they are
    not trained on and are evaluated. A source must keep at least one shard."""
    interval_steps: int = 0
    """Evaluate every this many steps (0: only at the start, at stage changes and at the
    end)."""
    at_start: bool = True
    """Evaluate the starting point before the first update."""
    at_stage_change: bool = True
    """Evaluate just before the first update on a new mixture stage (the code loss before
    math training, sec. 5.1.1)."""
    tokens_per_domain: int = 1 << 18
    """At most this many held-out document tokens per domain (the first ones, in a fixed
    order), packed like the training data."""
    micro_batch_size: int = 0
    """Sequences per evaluation forward pass; 0: train.micro_batch_size."""
    plot: bool = True
    """Draw eval.png from eval.csv (needs matplotlib)."""

    def problems(self) -> list[str]:
        problems: list[str] = []
        _positive(problems, self, "tokens_per_domain")
        for name in ("holdout_shards_per_source", "interval_steps", "micro_batch_size"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        return problems


@dataclass(frozen=True)
class CheckpointConfig:
    """When checkpoints are written and whether a run resumes from one."""

    interval_steps: int = 0
    """Save every this many steps (0: only at the end)."""
    keep_last: int = 2
    """Keep this many newest step folders (older ones are deleted after a save)."""
    resume: bool = True
    """Continue from the newest checkpoint in output_dir/checkpoints when there is one."""
    export_hf: bool = False
    """At the end, also write the model as a Hugging Face Llama folder (output_dir/hf)."""
    at_stage_change: bool = False
    """Also save the model weights after the last update of each mixture stage but the last,
    in output_dir/stage_models/stage-K (kept for good: experiments evaluate benchmarks there)."""
    export_tokenizer: str | None = None
    """tokenizer.json copied into that folder (the manifests name the tokenizer only by its
    fingerprint, so the file is given here; it must have the manifests' fingerprint)."""

    def problems(self) -> list[str]:
        problems: list[str] = []
        _positive(problems, self, "keep_last")
        if self.interval_steps < 0:
            problems.append(f"interval_steps must be >= 0, got {self.interval_steps}")
        return problems


@dataclass(frozen=True)
class DistributedConfig:
    """Multi-process training under torchrun (a single process needs nothing here)."""

    strategy: Literal["ddp", "fsdp"] = "ddp"
    """`ddp`: replicate the model; `fsdp`: shard parameters, gradients and optimiser state
    (FSDP2 fully_shard per block), for models that do not fit one device."""
    backend: Literal["auto", "gloo", "nccl"] = "auto"
    """`auto`: nccl on CUDA, gloo on CPU."""

    def problems(self) -> list[str]:
        problems = []
        if self.strategy not in ("ddp", "fsdp"):
            problems.append(f"strategy must be 'ddp' or 'fsdp', got {self.strategy!r}")
        if self.backend not in ("auto", "gloo", "nccl"):
            problems.append(f"backend must be auto, gloo or nccl, got {self.backend!r}")
        return problems


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run."""

    output_dir: str = ""
    """Run folder: train_config.json, train_log.csv, eval.csv, eval.png, checkpoints/."""
    seed: int = 0
    """Seeds the init, the document order and the sequence shuffle."""
    data: DataConfig = field(default_factory=DataConfig)
    """Training manifests and the bos/eos added around documents."""
    mixture: MixtureConfig = field(default_factory=MixtureConfig)
    """Weights per source or domain, one stage or a schedule of stages."""
    packing: PackingConfig = field(default_factory=PackingConfig)
    """Documents -> fixed-length sequences."""
    model: ModelSection = field(default_factory=ModelSection)
    """The model's shape (ignored with init.kind = "hf")."""
    init: InitConfig = field(default_factory=InitConfig)
    """Random weights, one of our checkpoints, or a Hugging Face folder."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """AdamW and gradient clipping."""
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    """Learning-rate schedule over train.steps."""
    train: TrainLoopConfig = field(default_factory=TrainLoopConfig)
    """Steps, batch, device, precision, logging."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """Held-out loss per domain."""
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    """Checkpoint interval, retention, resume and Hugging Face export."""
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    """DDP or FSDP, and the process-group backend, under torchrun."""

    def __post_init__(self) -> None:
        """Check every section and the sections together; one error lists every problem."""
        problems = collect_problems(self)
        if problems:
            raise TrainConfigError(problems)

    def micro_steps(self, world_size: int) -> int:
        """Micro-batches accumulated per update on each rank."""
        per_micro = self.train.micro_batch_size * self.packing.seq_len * world_size
        return self.train.batch_tokens // per_micro

    def batch_problems(self, world_size: int) -> list[str]:
        """The batch must split into whole micro-batches on every rank."""
        per_micro = self.train.micro_batch_size * self.packing.seq_len * world_size
        if per_micro < 1 or self.train.batch_tokens % per_micro:
            return [
                f"train.batch_tokens ({self.train.batch_tokens}) must be a multiple of "
                f"micro_batch_size * seq_len * world size = {self.train.micro_batch_size} * "
                f"{self.packing.seq_len} * {world_size} = {per_micro}"
            ]
        return []


SECTIONS = (
    "data",
    "mixture",
    "packing",
    "model",
    "init",
    "optim",
    "schedule",
    "train",
    "eval",
    "checkpoint",
    "distributed",
)


def collect_problems(config: TrainConfig) -> list[str]:
    """Every problem of every section, and of the sections together."""
    problems: list[str] = []
    if not config.output_dir:
        problems.append("output_dir is empty: name the run folder")
    for name in SECTIONS:
        section = getattr(config, name)
        if hasattr(section, "problems"):
            problems += [f"{name}.{p}" for p in section.problems()]
    try:
        config.schedule.lr_schedule(config.train.steps)
    except ValueError as exc:  # LRScheduleConfig lists its own problems
        lines = str(exc).splitlines()[1:]
        problems += [f"schedule: {line.strip().removeprefix('- ')}" for line in lines]
    problems += config.batch_problems(1)
    stages = config.mixture.resolved_stages()
    limited = sum(s.tokens for s in stages)
    seen = config.train.steps * config.train.batch_tokens
    if config.mixture.stages and limited > seen:
        problems.append(
            f"mixture.stages need {limited:,} tokens but train.steps * train.batch_tokens is "
            f"only {seen:,}: raise train.steps or lower the stages' tokens"
        )
    return problems
