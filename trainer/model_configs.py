"""Shapes of the decoder in trainer/model.py: named sizes, parameter and FLOP counts.

`MODEL_CONFIGS` holds `tiny` (CPU tests), `small` (smoke runs) and the DeepSeek 1.3B and 7B
shapes; `num_params` counts what the model allocates and `flops_per_token` is the training
cost used for MFU. Where each shape comes from: docs/trainer.md.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a Llama-architecture decoder (names follow Meta's Llama code)."""

    vocab_size: int
    """Rows of the embedding and of the output projection (tokens)."""
    dim: int
    """Width of the residual stream (HF `hidden_size`)."""
    n_layers: int
    """Transformer blocks (HF `num_hidden_layers`)."""
    n_heads: int
    """Query heads; head_dim = dim // n_heads (HF `num_attention_heads`)."""
    n_kv_heads: int
    """Key/value heads; n_heads must be a multiple. n_kv_heads == n_heads is plain multi-head
    attention, fewer is grouped-query attention (HF `num_key_value_heads`)."""
    intermediate_size: int
    """Hidden width of the SwiGLU MLP (HF `intermediate_size`)."""
    max_seq_len: int = 4096
    """Longest sequence the model is trained or evaluated on (tokens; HF
    `max_position_embeddings`). Rotary embeddings have no table, so this is only checked."""
    rope_theta: float = 10000.0
    """Base of the rotary frequencies: frequency i is rope_theta ** (-2i / head_dim)."""
    rope_scaling_factor: float = 1.0
    """Linear RoPE scaling (position interpolation): positions are divided by this. 1.0: none.
    HF `rope_scaling = {"type": "linear", "factor": ...}`."""
    norm_eps: float = 1e-6
    """Epsilon inside RMSNorm's square root (HF `rms_norm_eps`)."""
    tie_embeddings: bool = False
    """Share one matrix between the input embedding and the output projection. Llama and
    DeepSeek use separate ones (False)."""
    init_std: float = 0.02
    """Standard deviation of the normal initialisation of every weight matrix; the two output
    projections of each block (attention `wo`, MLP `w2`) use init_std / sqrt(2 * n_layers), so
    the residual stream's variance does not grow with depth (GPT-2)."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        counts = ("vocab_size", "dim", "n_layers", "n_heads", "n_kv_heads")
        for name in (*counts, "intermediate_size", "max_seq_len"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_heads >= 1 and self.dim % self.n_heads:
            problems.append(f"dim ({self.dim}) must be a multiple of n_heads ({self.n_heads})")
        elif self.n_heads >= 1 and (self.dim // self.n_heads) % 2:
            problems.append(
                f"head_dim = dim / n_heads = {self.dim // self.n_heads} must be even (rotary "
                "embeddings rotate pairs of channels)"
            )
        if self.n_kv_heads >= 1 and self.n_heads % self.n_kv_heads:
            problems.append(
                f"n_heads ({self.n_heads}) must be a multiple of n_kv_heads ({self.n_kv_heads})"
            )
        for name in ("rope_theta", "rope_scaling_factor", "norm_eps", "init_std"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be > 0, got {getattr(self, name)}")
        if problems:
            listing = "\n".join(f"  - {p}" for p in problems)
            raise ValueError(f"invalid ModelConfig ({len(problems)} problem(s)):\n{listing}")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads


def num_params(config: ModelConfig, include_embedding: bool = True) -> int:
    """Parameters of trainer.model.Transformer (the input embedding counted once if tied).

    include_embedding=False leaves out the input embedding table (a lookup, no FLOPs) but keeps
    the output projection, which is a matmul; that is the N of `flops_per_token`.
    """
    c = config
    kv_dim = c.n_kv_heads * c.head_dim
    attention = c.dim * c.dim * 2 + c.dim * kv_dim * 2  # wq, wo; wk, wv
    mlp = 3 * c.dim * c.intermediate_size  # w1 (gate), w3 (up), w2 (down)
    norms = 2 * c.dim
    blocks = c.n_layers * (attention + mlp + norms)
    embedding = c.vocab_size * c.dim
    output = c.vocab_size * c.dim
    total = blocks + c.dim + output  # + the final norm
    if include_embedding and not c.tie_embeddings:
        total += embedding
    return total


def flops_per_token(config: ModelConfig, seq_len: int) -> float:
    """Training FLOPs per token (forward + backward): 6 N + 12 n_layers dim seq_len.

    N is `num_params(include_embedding=False)`: every weight used in a matmul, including the
    output projection. The attention term is PaLM's (appendix B): QK^T and AV cost
    2 * 2 * seq_len * dim per layer forward, times 3 with the backward.
    """
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    n = num_params(config, include_embedding=False)
    return 6.0 * n + 12.0 * config.n_layers * config.dim * seq_len


_DEEPSEEK_LLM_7B = ModelConfig(
    vocab_size=102400,
    dim=4096,
    n_layers=30,
    n_heads=32,
    n_kv_heads=32,
    intermediate_size=11008,
    max_seq_len=4096,
    rope_theta=10000.0,
    norm_eps=1e-6,
    tie_embeddings=False,
)

MODEL_CONFIGS: dict[str, ModelConfig] = {
    "tiny": ModelConfig(
        vocab_size=256,
        dim=64,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        intermediate_size=172,
        max_seq_len=256,
    ),
    "small": ModelConfig(
        vocab_size=102400,
        dim=768,
        n_layers=12,
        n_heads=12,
        n_kv_heads=12,
        intermediate_size=2048,
        max_seq_len=4096,
    ),
    "deepseek-llm-1.3b": ModelConfig(
        vocab_size=102400,
        dim=2048,
        n_layers=24,
        n_heads=16,
        n_kv_heads=16,
        intermediate_size=5504,
        max_seq_len=4096,
        rope_theta=10000.0,
        norm_eps=1e-6,
    ),
    "deepseek-coder-1.3b": ModelConfig(
        vocab_size=32256,
        dim=2048,
        n_layers=24,
        n_heads=16,
        n_kv_heads=16,
        intermediate_size=5504,
        max_seq_len=16384,
        rope_theta=100000.0,
        rope_scaling_factor=4.0,
        norm_eps=1e-6,
    ),
    "deepseek-llm-7b": _DEEPSEEK_LLM_7B,
    # DeepSeek-Coder-Base-v1.5 7B and DeepSeekMath-Base 7B share DeepSeek-LLM 7B's shape.
    "deepseek-math-7b": replace(_DEEPSEEK_LLM_7B),
}


def get_model_config(name: str) -> ModelConfig:
    """A named config; the error lists the names there are."""
    try:
        return MODEL_CONFIGS[name]
    except KeyError:
        known = ", ".join(sorted(MODEL_CONFIGS))
        raise ValueError(f"unknown model config {name!r}; known: {known}") from None
