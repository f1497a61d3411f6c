"""Hugging Face Llama checkpoints: import into trainer.model.Transformer, export from it.

DeepSeek-LLM, DeepSeek-Coder and DeepSeekMath are published in Hugging Face's Llama safetensors
layout, so they load directly (the DeepSeek-Coder-Base initialisation of DeepSeekMath sec. 2.3)
and a run can be exported to it. Every tensor maps 1:1; the name table is in docs/trainer.md.
`check_hf_tokenizer` refuses a folder whose tokenizer.json is not the one the shards were made
with (the ids would mean other tokens to the embedding).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tokenizers import Tokenizer

from tokenizer.loading import TOKENIZER_FILE, TokenizerInfo, fingerprint, load_tokenizer
from tokenizer.loading import vocab_size as tokenizer_vocab_size
from trainer.model import Transformer
from trainer.model_configs import ModelConfig

log = logging.getLogger("mathcorpus.train")

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"

# (our name, Hugging Face name) patterns; {n} is the block index.
_BLOCK_NAMES = (
    ("attention.wq.weight", "self_attn.q_proj.weight"),
    ("attention.wk.weight", "self_attn.k_proj.weight"),
    ("attention.wv.weight", "self_attn.v_proj.weight"),
    ("attention.wo.weight", "self_attn.o_proj.weight"),
    ("feed_forward.w1.weight", "mlp.gate_proj.weight"),
    ("feed_forward.w3.weight", "mlp.up_proj.weight"),
    ("feed_forward.w2.weight", "mlp.down_proj.weight"),
    ("attention_norm.weight", "input_layernorm.weight"),
    ("ffn_norm.weight", "post_attention_layernorm.weight"),
)
_TOP_NAMES = {
    "tok_embeddings.weight": "model.embed_tokens.weight",
    "norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
# Buffers some older exports saved; they are recomputed, never loaded.
_IGNORED_HF = re.compile(r"model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq")


def to_hf_name(name: str) -> str:
    """Hugging Face name of one of our parameter names."""
    if name in _TOP_NAMES:
        return _TOP_NAMES[name]
    match = re.fullmatch(r"layers\.(\d+)\.(.+)", name)
    if match:
        for ours, theirs in _BLOCK_NAMES:
            if match.group(2) == ours:
                return f"model.layers.{match.group(1)}.{theirs}"
    raise KeyError(f"no Hugging Face name for parameter {name!r}")


def _parameters(model: Transformer) -> Iterator[tuple[str, torch.nn.Parameter]]:
    """Named parameters, the output projection left out when it is the (tied) embedding."""
    for name, param in model.named_parameters(remove_duplicate=False):
        if name == "output.weight" and model.config.tie_embeddings:
            continue
        yield name, param


# ---------------------------------------------------------------------------------------------
# config.json


def config_to_hf(config: ModelConfig, dtype: torch.dtype) -> dict[str, Any]:
    """The config.json of a LlamaForCausalLM with our shapes."""
    rope_scaling = None
    if config.rope_scaling_factor != 1.0:
        # "type" for transformers 4.x, "rope_type" for newer versions.
        factor = config.rope_scaling_factor
        rope_scaling = {"type": "linear", "rope_type": "linear", "factor": factor}
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": config.vocab_size,
        "hidden_size": config.dim,
        "intermediate_size": config.intermediate_size,
        "num_hidden_layers": config.n_layers,
        "num_attention_heads": config.n_heads,
        "num_key_value_heads": config.n_kv_heads,
        "head_dim": config.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": config.max_seq_len,
        "rms_norm_eps": config.norm_eps,
        "rope_theta": config.rope_theta,
        "rope_scaling": rope_scaling,
        "tie_word_embeddings": config.tie_embeddings,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "initializer_range": config.init_std,
        "torch_dtype": str(dtype).removeprefix("torch."),
        "use_cache": True,
    }


def _rope_from_hf(hf: dict[str, Any], problems: list[str]) -> tuple[float, float]:
    """(rope_theta, linear scaling factor) from either the 4.x keys or 5.x `rope_parameters`."""
    params = hf.get("rope_parameters") or {}
    scaling = hf.get("rope_scaling") or params
    theta = float(hf.get("rope_theta") or params.get("rope_theta") or 10000.0)
    kind = scaling.get("rope_type", scaling.get("type", "default")) if scaling else "default"
    if kind == "default":
        return theta, 1.0
    if kind == "linear":
        return theta, float(scaling["factor"])
    problems.append(f"rope scaling {kind!r} is not supported (only none or 'linear')")
    return theta, 1.0


_REQUIRED_HF_KEYS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
)


def config_from_hf(hf: dict[str, Any]) -> ModelConfig:
    """Our ModelConfig from a Llama config.json; every unsupported feature listed in one error."""
    problems: list[str] = []
    architectures = hf.get("architectures") or []
    if hf.get("model_type") != "llama" and "LlamaForCausalLM" not in architectures:
        problems.append(
            f"not a Llama checkpoint: model_type {hf.get('model_type')!r}, "
            f"architectures {architectures}"
        )
    if hf.get("hidden_act", "silu") != "silu":
        problems.append(f"hidden_act {hf['hidden_act']!r} is not supported (only 'silu')")
    for flag in ("attention_bias", "mlp_bias"):
        if hf.get(flag):
            problems.append(f"{flag} = true is not supported (the model has no biases)")
    missing = [key for key in _REQUIRED_HF_KEYS if key not in hf]
    if missing:
        problems.append(f"config.json lacks {missing}")
    theta, factor = _rope_from_hf(hf, problems)
    if not missing:
        head_dim = hf.get("head_dim")
        if head_dim is not None and head_dim * hf["num_attention_heads"] != hf["hidden_size"]:
            problems.append(
                f"head_dim {head_dim} * num_attention_heads {hf['num_attention_heads']} != "
                f"hidden_size {hf['hidden_size']} (not supported)"
            )
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise ValueError(f"cannot import this config.json ({len(problems)} problem(s)):\n{listing}")
    return ModelConfig(
        vocab_size=hf["vocab_size"],
        dim=hf["hidden_size"],
        n_layers=hf["num_hidden_layers"],
        n_heads=hf["num_attention_heads"],
        n_kv_heads=hf.get("num_key_value_heads") or hf["num_attention_heads"],
        intermediate_size=hf["intermediate_size"],
        max_seq_len=hf.get("max_position_embeddings", 2048),
        rope_theta=theta,
        rope_scaling_factor=factor,
        norm_eps=hf.get("rms_norm_eps", 1e-6),
        tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
        init_std=hf.get("initializer_range", 0.02),
    )


# ---------------------------------------------------------------------------------------------
# Import


def _weight_files(folder: Path) -> dict[str, Path]:
    """Hugging Face tensor name -> the safetensors file that holds it."""
    index = folder / INDEX_FILE
    if index.exists():
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        return {name: folder / file for name, file in weight_map.items()}
    single = folder / SINGLE_FILE
    if single.exists():
        with safe_open(single, framework="pt") as handle:
            return dict.fromkeys(handle.keys(), single)
    raise FileNotFoundError(f"{folder} has neither {SINGLE_FILE} nor {INDEX_FILE}")


def _checkpoint_shapes(files: dict[str, Path]) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for path in sorted(set(files.values())):
        with safe_open(path, framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
                shapes[name] = tuple(handle.get_slice(name).get_shape())
    return shapes


def check_hf_weights(model: Transformer, folder: str | Path) -> dict[str, Path]:
    """Check names and shapes against the model; raise one error naming every mismatch.

    Returns the weight map (HF name -> file) when everything matches. Nothing is read but the
    safetensors headers.
    """
    files = _weight_files(Path(folder))
    shapes = _checkpoint_shapes(files)
    expected = {to_hf_name(name): tuple(p.shape) for name, p in _parameters(model)}
    problems = []
    for name, shape in expected.items():
        if name not in shapes:
            problems.append(f"{name}: missing from the checkpoint (model expects {shape})")
        elif shapes[name] != shape:
            problems.append(f"{name}: checkpoint has {shapes[name]}, model expects {shape}")
    for name in sorted(set(shapes) - set(expected)):
        tied_head = name == "lm_head.weight" and model.config.tie_embeddings
        if not tied_head and not _IGNORED_HF.fullmatch(name):
            problems.append(f"{name}: in the checkpoint but not in the model")
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise ValueError(
            f"checkpoint {folder} does not fit the model ({len(problems)} tensor(s)); does "
            f"config.json describe these weights?\n{listing}"
        )
    return files


@torch.no_grad()
def load_hf_weights(model: Transformer, folder: str | Path) -> Transformer:
    """Copy a Hugging Face Llama checkpoint's weights into `model` (cast to its dtype)."""
    files = check_hf_weights(model, folder)
    targets = {to_hf_name(name): p for name, p in _parameters(model)}
    by_file: dict[Path, list[str]] = {}
    for name in targets:
        by_file.setdefault(files[name], []).append(name)
    for path, names in sorted(by_file.items()):
        with safe_open(path, framework="pt") as handle:
            for name in names:
                targets[name].copy_(handle.get_tensor(name))
    return model


def load_hf_checkpoint(
    folder: str | Path, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
) -> Transformer:
    """Build our model from a Hugging Face Llama folder's config.json and load its weights.

    The model is built on the meta device (no random init of billions of weights) and every
    parameter is then filled from the checkpoint; a missing one is an error, never left empty.
    """
    folder = Path(folder)
    config = config_from_hf(json.loads((folder / "config.json").read_text(encoding="utf-8")))
    with torch.device("meta"):
        model = Transformer(config)
    model = model.to(dtype).to_empty(device=device)
    model.tie_weights()  # to_empty gives the tied matrix two separate tensors
    return load_hf_weights(model, folder)


# ---------------------------------------------------------------------------------------------
# Export


def _hf_state_dict(model: Transformer, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {
        to_hf_name(name): p.detach().to(device="cpu", dtype=dtype).contiguous()
        for name, p in _parameters(model)
    }


def _clear_previous_export(folder: Path) -> None:
    """Remove weight files an earlier export left, so no stale shard or index is loaded."""
    shards = folder.glob("model-*-of-*.safetensors")
    for path in (folder / SINGLE_FILE, folder / INDEX_FILE, *shards):
        path.unlink(missing_ok=True)


def _shards(tensors: dict[str, torch.Tensor], max_shard_bytes: int) -> list[list[str]]:
    """Tensor names split into consecutive groups of at most max_shard_bytes (one if larger)."""
    shards: list[list[str]] = [[]]
    size = 0
    for name, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(name)
        size += nbytes
    return shards


def export_hf_checkpoint(
    model: Transformer,
    folder: str | Path,
    tokenizer_json: str | Path | None = None,
    dtype: torch.dtype | None = None,
    max_shard_bytes: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write `model` as a Hugging Face LlamaForCausalLM folder; returns the folder.

    dtype: weight dtype on disk (default: the model's). max_shard_bytes: split the weights into
    shards of at most this many bytes with an index (default: one model.safetensors).
    tokenizer_json: copied next to the weights when given. An existing config.json is only
    replaced with overwrite=True.
    """
    folder = Path(folder)
    if (folder / "config.json").exists() and not overwrite:
        raise FileExistsError(f"{folder} already holds a checkpoint; pass overwrite=True")
    folder.mkdir(parents=True, exist_ok=True)
    dtype = dtype or next(model.parameters()).dtype
    tensors = _hf_state_dict(model, dtype)
    _clear_previous_export(folder)
    metadata = {"format": "pt"}  # transformers expects this key in safetensors headers
    shards = _shards(tensors, max_shard_bytes) if max_shard_bytes else [list(tensors)]
    if len(shards) == 1:
        save_file(tensors, folder / SINGLE_FILE, metadata=metadata)
    else:
        weight_map = {}
        for i, names in enumerate(shards, start=1):
            file = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
            save_file({n: tensors[n] for n in names}, folder / file, metadata=metadata)
            weight_map.update(dict.fromkeys(names, file))
        total = sum(t.numel() * t.element_size() for t in tensors.values())
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (folder / INDEX_FILE).write_text(json.dumps(index, indent=2), encoding="utf-8")
    hf_config = config_to_hf(model.config, dtype)
    (folder / "config.json").write_text(json.dumps(hf_config, indent=2), encoding="utf-8")
    if tokenizer_json is not None:
        shutil.copyfile(tokenizer_json, folder / "tokenizer.json")
    return folder


# ---------------------------------------------------------------------------------------------
# The tokenizer of an initialisation folder

# Encoded by both tokenizers when the shards' tokenizer.json is at hand (checkpoint.
# export_tokenizer): prose, LaTeX, code and CJK, so that most kinds of difference show.
PROBE_TEXT = (
    "Let $f(x) = x^2 + 1$; then f'(x) = 2x.\ndef area(r):\n    return 3.14159 * r ** 2  # 面积"
)
_SHOWN_IDS = 8  # token ids shown either side of the first difference


def _first_difference(shards: list[int], theirs: list[int]) -> str:
    """Where two encodings of PROBE_TEXT part, and a few ids of each from there."""
    at = next(
        (i for i, (a, b) in enumerate(zip(shards, theirs, strict=False)) if a != b),
        min(len(shards), len(theirs)),
    )
    return (
        f"probe text {PROBE_TEXT[:40]!r}...: encodings differ from token {at} "
        f"(shards {shards[at : at + _SHOWN_IDS]}, checkpoint {theirs[at : at + _SHOWN_IDS]}; "
        f"{len(shards)} vs {len(theirs)} tokens)"
    )


def tokenizer_differences(
    theirs: Tokenizer, shards: TokenizerInfo, shards_tokenizer: Tokenizer | None = None
) -> list[str]:
    """What differs between a checkpoint's tokenizer and the shards' ([] when they are equal).

    The manifest records the shards' tokenizer by fingerprint, vocabulary size and special
    tokens only; with `shards_tokenizer` (the tokenizer.json itself) a probe text is encoded by
    both as well.
    """
    found = fingerprint(theirs)
    if found == shards.fingerprint:
        return []
    lines = [f"fingerprint: shards {shards.fingerprint[:16]}..., checkpoint {found[:16]}..."]
    n_theirs = tokenizer_vocab_size(theirs)
    if n_theirs != shards.vocab_size:
        lines.append(f"vocabulary size: shards {shards.vocab_size}, checkpoint {n_theirs}")
    for name, special in sorted(shards.special_tokens.items()):
        if special is None:
            continue
        their_id = theirs.token_to_id(special.token)
        if their_id != special.id:
            there = "absent" if their_id is None else f"id {their_id}"
            at_id = theirs.id_to_token(special.id)
            lines.append(
                f"{name} token {special.token!r}: id {special.id} in the shards, {there} in the "
                f"checkpoint's tokenizer (whose id {special.id} is {at_id!r})"
            )
    if shards_tokenizer is not None and fingerprint(shards_tokenizer) == shards.fingerprint:
        ours = shards_tokenizer.encode(PROBE_TEXT, add_special_tokens=False).ids
        other = theirs.encode(PROBE_TEXT, add_special_tokens=False).ids
        if ours != other:
            lines.append(_first_difference(ours, other))
    if len(lines) == 1:
        lines.append(
            "vocabulary size and special tokens agree: the vocabulary, merges or normalisation "
            "differ"
        )
    return lines


def check_hf_tokenizer(
    folder: str | Path,
    shards: TokenizerInfo,
    *,
    allow_mismatch: bool = False,
    shards_tokenizer: str | Path | None = None,
) -> list[str]:
    """Problems (one per line of difference) when `folder`'s tokenizer.json is not the shards'.

    Continuing pre-training (DeepSeekMath sec. 2.3 starts from DeepSeek-Coder-Base) only makes
    sense with the checkpoint's own tokenizer: with another one every id names another token.
    No tokenizer.json in the folder: a warning that nothing could be checked, and []. With
    `allow_mismatch` a mismatch is a warning instead of problems. `shards_tokenizer` is the
    shards' tokenizer.json, if known (it adds a probe text's first differing ids).
    """
    path = Path(folder) / TOKENIZER_FILE
    if not path.is_file():
        log.warning(
            "%s has no %s: cannot check that the shards were tokenized with the checkpoint's "
            "tokenizer (manifest fingerprint %s)",
            folder,
            TOKENIZER_FILE,
            shards.fingerprint,
        )
        return []
    ours = load_tokenizer(shards_tokenizer) if shards_tokenizer is not None else None
    lines = tokenizer_differences(load_tokenizer(path), shards, ours)
    if not lines:
        return []
    if allow_mismatch:
        log.warning(
            "init.allow_tokenizer_mismatch: training from %s although its tokenizer differs "
            "from the shards': %s",
            folder,
            "; ".join(lines),
        )
        return []
    head = (
        f"{path} is not the tokenizer the shards were made with (init.allow_tokenizer_mismatch "
        f"= true trains anyway); {lines[0]}"
    )
    return [head, *(f"tokenizer {line}" for line in lines[1:])]
