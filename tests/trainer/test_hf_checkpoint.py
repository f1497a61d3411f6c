"""Hugging Face Llama checkpoints: export/import round trip, shape errors, parity with
transformers on reduced DeepSeek shapes, and the tokenizer check of an `hf` initialisation."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest
import torch
import transformers  # the dev extra: the parity tests below must run, never skip
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer

from tests.helpers import write_tiny_tokenizer
from tokenizer.loading import SpecialToken, fingerprint, tokenizer_info
from trainer.config_loader import config_from_dict
from trainer.hf_checkpoint import (
    INDEX_FILE,
    SINGLE_FILE,
    config_from_hf,
    config_to_hf,
    export_hf_checkpoint,
    load_hf_checkpoint,
    load_hf_weights,
    to_hf_name,
    tokenizer_differences,
)
from trainer.model import Transformer
from trainer.model_configs import get_model_config
from trainer.shard_source import DataError, open_training_data
from trainer.train_config import TrainConfig, TrainConfigError
from trainer.training_loop import build_model

TINY = get_model_config("tiny")  # 4 query heads, 2 key/value heads: GQA
VARIANTS = {
    "untied": TINY,
    "tied_scaled_rope": dataclasses.replace(
        TINY, tie_embeddings=True, rope_theta=500.0, rope_scaling_factor=2.0, norm_eps=1e-5
    ),
}


def model_of(config, seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    return Transformer(config).eval()


def sample_ids() -> torch.Tensor:
    return torch.randint(0, TINY.vocab_size, (2, 37), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("max_shard_bytes", [None, 60_000])
@torch.no_grad()
def test_export_then_import_gives_identical_logits(tmp_path, variant, max_shard_bytes) -> None:
    model = model_of(VARIANTS[variant])
    export_hf_checkpoint(model, tmp_path, max_shard_bytes=max_shard_bytes)
    sharded = (tmp_path / INDEX_FILE).exists()
    assert sharded == (max_shard_bytes is not None)
    loaded = load_hf_checkpoint(tmp_path)
    assert loaded.config == model.config
    assert torch.equal(loaded(sample_ids()), model(sample_ids()))
    if model.config.tie_embeddings:
        assert loaded.output.weight is loaded.tok_embeddings.weight


def test_exported_folder_layout(tmp_path) -> None:
    tokenizer = tmp_path / "tok.json"
    tokenizer.write_text('{"model": {}}', encoding="utf-8")
    out = export_hf_checkpoint(model_of(TINY), tmp_path / "hf", tokenizer_json=tokenizer)
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["architectures"] == ["LlamaForCausalLM"] and config["model_type"] == "llama"
    assert (config["hidden_size"], config["intermediate_size"]) == (
        TINY.dim,
        TINY.intermediate_size,
    )
    assert (config["num_attention_heads"], config["num_key_value_heads"]) == (4, 2)
    assert config["rope_theta"] == TINY.rope_theta and config["rms_norm_eps"] == TINY.norm_eps
    assert config["vocab_size"] == TINY.vocab_size and config["tie_word_embeddings"] is False
    assert (out / "tokenizer.json").read_text(encoding="utf-8") == '{"model": {}}'
    names = set(load_file(out / SINGLE_FILE))
    assert "model.embed_tokens.weight" in names and "lm_head.weight" in names
    assert "model.layers.1.mlp.gate_proj.weight" in names
    assert "model.layers.0.post_attention_layernorm.weight" in names
    assert len(names) == 2 + 1 + 9 * TINY.n_layers


def test_export_does_not_overwrite_by_accident(tmp_path) -> None:
    model = model_of(TINY)
    export_hf_checkpoint(model, tmp_path, max_shard_bytes=60_000)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_hf_checkpoint(model, tmp_path)
    export_hf_checkpoint(model, tmp_path, overwrite=True)  # now one file: the old shards go
    assert not (tmp_path / INDEX_FILE).exists() and not list(tmp_path.glob("model-*"))


def test_a_wrong_shape_is_named_in_the_error(tmp_path) -> None:
    export_hf_checkpoint(model_of(TINY), tmp_path)
    tensors = load_file(tmp_path / SINGLE_FILE)
    tensors["model.layers.1.self_attn.k_proj.weight"] = torch.zeros(TINY.dim, TINY.dim)
    del tensors["model.norm.weight"]
    tensors["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.zeros(8)  # old, harmless
    tensors["model.extra.weight"] = torch.zeros(3)
    save_file(tensors, tmp_path / SINGLE_FILE, metadata={"format": "pt"})
    with pytest.raises(ValueError) as error:
        load_hf_checkpoint(tmp_path)
    message = str(error.value)
    assert "3 tensor(s)" in message
    assert (
        "model.layers.1.self_attn.k_proj.weight: checkpoint has (64, 64), model expects (32, 64)"
        in message
    )
    assert "model.norm.weight: missing" in message
    assert "model.extra.weight: in the checkpoint but not in the model" in message


def test_a_config_that_does_not_match_the_weights_lists_every_tensor(tmp_path) -> None:
    export_hf_checkpoint(model_of(TINY), tmp_path)
    wider = Transformer(dataclasses.replace(TINY, intermediate_size=180))
    with pytest.raises(ValueError) as error:
        load_hf_weights(wider, tmp_path)
    message = str(error.value)
    assert f"{3 * TINY.n_layers} tensor(s)" in message
    for proj in ("gate_proj", "up_proj", "down_proj"):
        assert f"model.layers.1.mlp.{proj}.weight" in message


def test_unsupported_config_features_are_listed_together() -> None:
    hf = config_to_hf(TINY, torch.float32)
    hf.update(hidden_act="gelu", attention_bias=True, rope_scaling={"rope_type": "yarn"})
    with pytest.raises(ValueError) as error:
        config_from_hf(hf)
    message = str(error.value)
    assert "3 problem(s)" in message
    assert "gelu" in message and "attention_bias" in message and "yarn" in message


def test_reads_transformers_5_rope_parameters() -> None:
    hf = config_to_hf(TINY, torch.float32)
    del hf["rope_theta"], hf["rope_scaling"]
    hf["rope_parameters"] = {"rope_type": "linear", "factor": 4.0, "rope_theta": 100000.0}
    config = config_from_hf(hf)
    assert (config.rope_theta, config.rope_scaling_factor) == (100000.0, 4.0)


def test_every_parameter_has_a_hugging_face_name() -> None:
    names = [to_hf_name(n) for n, _ in model_of(TINY).named_parameters()]
    assert len(set(names)) == len(names)
    with pytest.raises(KeyError):
        to_hf_name("layers.0.attention.rotary.weight")


# ---------------------------------------------------------------------------------------------
# Parity with transformers' LlamaForCausalLM (the reference implementation of the layout)

# The published config.json of deepseek-ai/deepseek-coder-1.3b-base and deepseek-llm-7b-base
# (the keys that set the shape; bos/eos ids and dtype as published).
PUBLISHED = {
    "deepseek-coder-1.3b": {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "bos_token_id": 32013,
        "eos_token_id": 32014,
        "hidden_act": "silu",
        "hidden_size": 2048,
        "initializer_range": 0.02,
        "intermediate_size": 5504,
        "max_position_embeddings": 16384,
        "num_attention_heads": 16,
        "num_hidden_layers": 24,
        "num_key_value_heads": 16,
        "rms_norm_eps": 1e-06,
        "rope_scaling": {"factor": 4.0, "type": "linear"},
        "rope_theta": 100000,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "vocab_size": 32256,
    },
    "deepseek-llm-7b": {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "bos_token_id": 100000,
        "eos_token_id": 100001,
        "hidden_act": "silu",
        "hidden_size": 4096,
        "initializer_range": 0.02,
        "intermediate_size": 11008,
        "max_position_embeddings": 4096,
        "num_attention_heads": 32,
        "num_hidden_layers": 30,
        "num_key_value_heads": 32,
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "vocab_size": 102400,
    },
}


def reduced(hf: dict, heads: int = 2, layers: int = 2, **changes) -> dict:
    """A published config shrunk to run in seconds on CPU: fewer heads (head_dim and the
    query/kv head ratio kept) and layers, the MLP width in the same ratio; the vocabulary, rope
    theta, rope scaling, norm epsilon and positions are the real ones."""
    head_dim = hf["hidden_size"] // hf["num_attention_heads"]
    group = hf["num_attention_heads"] // hf["num_key_value_heads"]
    dim = heads * head_dim
    return {
        **hf,
        "hidden_size": dim,
        "num_attention_heads": heads,
        "num_key_value_heads": heads // group,
        "num_hidden_layers": layers,
        "intermediate_size": hf["intermediate_size"] * dim // hf["hidden_size"],
        "torch_dtype": "float32",
        **changes,
    }


PARITY_CASES = {
    "deepseek-coder-1.3b": reduced(PUBLISHED["deepseek-coder-1.3b"]),
    "deepseek-llm-7b": reduced(PUBLISHED["deepseek-llm-7b"]),
    "deepseek-coder-1.3b-tied": reduced(PUBLISHED["deepseek-coder-1.3b"], tie_word_embeddings=True),
    # Not a DeepSeek shape: grouped-query attention (4 query heads share 2 kv heads).
    "tiny-gqa-tied-scaled": config_to_hf(VARIANTS["tied_scaled_rope"], torch.float32),
}
SEQ = 37


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_model_configs_are_the_published_shapes(name: str) -> None:
    assert config_from_hf(PUBLISHED[name]) == get_model_config(name)


def parity_inputs(config) -> list[torch.Tensor | None]:
    """None (positions 0..T-1) and positions at the end of max_position_embeddings: with
    linear scaling these are beyond the range the unscaled model was trained on (for
    deepseek-coder 16384 / 4 = 4096)."""
    far = torch.arange(config.max_seq_len - SEQ, config.max_seq_len).expand(2, SEQ)
    return [None, far]


def max_logit_difference(hf_model, model: Transformer, config) -> float:
    ids = torch.randint(0, config.vocab_size, (2, SEQ), generator=torch.Generator().manual_seed(1))
    worst = 0.0
    for positions in parity_inputs(config):
        theirs = hf_model(ids, position_ids=positions).logits
        ours = model(ids, position_ids=positions)
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
        worst = max(worst, (ours - theirs).abs().max().item())
    return worst


@pytest.mark.parametrize("case", sorted(PARITY_CASES))
@torch.no_grad()
def test_our_export_loads_in_transformers_with_our_logits(tmp_path: Path, case: str) -> None:
    config = config_from_hf(PARITY_CASES[case])
    model = model_of(config)
    export_hf_checkpoint(model, tmp_path)
    hf_model = transformers.LlamaForCausalLM.from_pretrained(tmp_path).eval()
    assert hf_model.dtype == torch.float32
    assert hf_model.config.num_key_value_heads == config.n_kv_heads
    assert hf_model.config.head_dim == config.head_dim
    assert max_logit_difference(hf_model, model, config) <= 1e-5


@pytest.mark.parametrize("case", sorted(PARITY_CASES))
@torch.no_grad()
def test_a_transformers_checkpoint_loads_in_ours_with_its_logits(tmp_path: Path, case: str) -> None:
    torch.manual_seed(0)
    hf_model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**PARITY_CASES[case]))
    hf_model.eval().save_pretrained(tmp_path)  # transformers writes config.json its own way
    model = load_hf_checkpoint(tmp_path)
    assert model.config == config_from_hf(PARITY_CASES[case])
    assert max_logit_difference(hf_model, model, model.config) <= 1e-5


@torch.no_grad()
def test_the_far_positions_do_exercise_the_rope_scaling() -> None:
    """Control: without the linear scaling the far positions give other logits, so the parity
    above does check it."""
    hf = PARITY_CASES["deepseek-coder-1.3b"]
    model = model_of(config_from_hf(hf))
    unscaled = dataclasses.replace(model.config, rope_scaling_factor=1.0)
    plain = Transformer(unscaled).eval()
    plain.load_state_dict(model.state_dict())
    ids = torch.randint(0, 1000, (1, SEQ), generator=torch.Generator().manual_seed(2))
    far = parity_inputs(model.config)[1]
    assert (plain(ids, position_ids=far[:1]) - model(ids, position_ids=far[:1])).abs().max() > 1e-3


# ---------------------------------------------------------------------------------------------
# The tokenizer of an initialisation folder against the shards'


@pytest.fixture(scope="module")
def other_tokenizer_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Trained like the shards' tokenizer (trainer_tokenizer, 512 ids) but with 600 ids."""
    return write_tiny_tokenizer(tmp_path_factory.mktemp("other_tokenizer"), vocab_size=600)


def test_tokenizer_differences_say_what_differs(trainer_tokenizer, other_tokenizer_json) -> None:
    info = tokenizer_info(trainer_tokenizer)
    assert tokenizer_differences(trainer_tokenizer, info) == []
    other = Tokenizer.from_file(str(other_tokenizer_json))
    lines = tokenizer_differences(other, info, shards_tokenizer=trainer_tokenizer)
    assert lines[0] == (
        f"fingerprint: shards {info.fingerprint[:16]}..., checkpoint {fingerprint(other)[:16]}..."
    )
    assert "vocabulary size: shards 512, checkpoint 600" in lines
    probe = [line for line in lines if line.startswith("probe text")]
    assert len(probe) == 1 and "encodings differ from token" in probe[0]
    # Special tokens at other ids (here: as if the shards' eos were id 7).
    moved = dataclasses.replace(
        info,
        fingerprint="0" * 64,
        special_tokens={**info.special_tokens, "eos": SpecialToken("<|eos|>", 7)},
    )
    lines = tokenizer_differences(trainer_tokenizer, moved)
    at_7 = trainer_tokenizer.id_to_token(7)
    assert lines[1:] == [
        f"eos token '<|eos|>': id 7 in the shards, id 1 in the checkpoint's tokenizer "
        f"(whose id 7 is {at_7!r})"
    ]


def hf_init_config(tmp_path: Path, shards: dict[str, Path], folder: Path, **init) -> TrainConfig:
    doc = {
        "output_dir": str(tmp_path / "run"),
        "data": {"manifests": [str(shards["math"]), str(shards["code"])]},
        "mixture": {"weights": {"code": 400, "math": 150}},
        "packing": {"seq_len": 64},
        "schedule": {"warmup_steps": 0},
        "init": {"kind": "hf", "path": str(folder), **init},
    }
    return config_from_dict(doc)


def build_from(config: TrainConfig) -> Transformer:
    stages = config.mixture.resolved_stages()
    data = open_training_data(config.data.manifests, [s.weights for s in stages])
    return build_model(config, data)


def test_hf_init_refuses_shards_of_another_tokenizer(
    tmp_path: Path, real_shards, trainer_tokenizer, other_tokenizer_json, caplog
) -> None:
    folder = tmp_path / "hf"
    model = model_of(dataclasses.replace(TINY, vocab_size=600))
    export_hf_checkpoint(model, folder, tokenizer_json=other_tokenizer_json)
    with pytest.raises(DataError) as error:
        build_from(hf_init_config(tmp_path, real_shards, folder))
    message = str(error.value)
    assert "is not the tokenizer the shards were made with" in message
    assert "init.allow_tokenizer_mismatch = true" in message
    assert fingerprint(trainer_tokenizer)[:16] in message
    assert "vocabulary size: shards 512, checkpoint 600" in message
    # The override trains anyway, with a warning that says what differs.
    config = hf_init_config(tmp_path, real_shards, folder, allow_tokenizer_mismatch=True)
    with caplog.at_level(logging.WARNING, logger="mathcorpus.train"):
        loaded = build_from(config)
    assert torch.equal(loaded.tok_embeddings.weight, model.tok_embeddings.weight)
    assert "init.allow_tokenizer_mismatch" in caplog.text and "vocabulary size" in caplog.text


def test_hf_init_with_the_shards_tokenizer_or_none_to_check(
    tmp_path: Path, real_shards, trainer_tokenizer, caplog
) -> None:
    shards_json = tmp_path / "tokenizer.json"
    trainer_tokenizer.save(str(shards_json))
    model = model_of(dataclasses.replace(TINY, vocab_size=512))
    export_hf_checkpoint(model, tmp_path / "same", tokenizer_json=shards_json)
    with caplog.at_level(logging.WARNING, logger="mathcorpus.train"):
        build_from(hf_init_config(tmp_path, real_shards, tmp_path / "same"))
    assert caplog.text == ""
    export_hf_checkpoint(model, tmp_path / "bare")  # no tokenizer.json: cannot be checked
    with caplog.at_level(logging.WARNING, logger="mathcorpus.train"):
        build_from(hf_init_config(tmp_path, real_shards, tmp_path / "bare"))
    assert "has no tokenizer.json: cannot check" in caplog.text


def test_allow_tokenizer_mismatch_is_for_hf_only(tmp_path: Path, real_shards) -> None:
    with pytest.raises(TrainConfigError, match="allow_tokenizer_mismatch applies to kind 'hf'"):
        config_from_dict(
            {
                "output_dir": str(tmp_path),
                "data": {"manifests": [str(real_shards["math"])]},
                "schedule": {"warmup_steps": 0},
                "init": {"kind": "random", "allow_tokenizer_mismatch": True},
            }
        )
