"""Hugging Face Llama checkpoints: export/import round trip, shape errors, transformers parity."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from trainer.hf_checkpoint import (
    INDEX_FILE,
    SINGLE_FILE,
    config_from_hf,
    config_to_hf,
    export_hf_checkpoint,
    load_hf_checkpoint,
    load_hf_weights,
    to_hf_name,
)
from trainer.model import Transformer
from trainer.model_configs import get_model_config

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


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@torch.no_grad()
def test_transformers_llama_gives_the_same_logits(tmp_path: Path, variant: str) -> None:
    """Our export loads in transformers' LlamaForCausalLM with the same logits (and back)."""
    transformers = pytest.importorskip("transformers")
    model = model_of(VARIANTS[variant])
    export_hf_checkpoint(model, tmp_path / "ours")
    hf_model = transformers.LlamaForCausalLM.from_pretrained(tmp_path / "ours").eval()
    ids = sample_ids()
    torch.testing.assert_close(hf_model(ids).logits, model(ids), rtol=1e-5, atol=1e-5)
    # And a checkpoint saved by transformers itself imports into ours.
    hf_model.save_pretrained(tmp_path / "theirs")
    theirs = load_hf_checkpoint(tmp_path / "theirs")
    torch.testing.assert_close(theirs(ids), model(ids), rtol=1e-5, atol=1e-5)
