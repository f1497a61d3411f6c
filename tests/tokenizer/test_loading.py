"""Loading tokenizer.json files (ours and DeepSeek-style ones) and their fingerprints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers

from tokenizer.loading import (
    TokenizerInfo,
    TokenizerLoadError,
    fingerprint,
    load_tokenizer,
    token_dtype_for,
    tokenizer_info,
)


def test_load_from_file_or_folder_same_fingerprint(tiny_tokenizer_path: Path) -> None:
    from_file = load_tokenizer(tiny_tokenizer_path)
    from_folder = load_tokenizer(tiny_tokenizer_path.parent)
    assert fingerprint(from_file) == fingerprint(from_folder)
    assert len(fingerprint(from_file)) == 64


def test_fingerprint_ignores_formatting_but_not_content(
    tiny_tokenizer_path: Path, tmp_path: Path
) -> None:
    original = fingerprint(load_tokenizer(tiny_tokenizer_path))
    # Same tokenizer, other indentation and key order: same fingerprint.
    data = json.loads(tiny_tokenizer_path.read_text(encoding="utf-8"))
    reordered = tmp_path / "reordered" / "tokenizer.json"
    reordered.parent.mkdir()
    reordered.write_text(json.dumps(dict(reversed(list(data.items()))), indent=4), "utf-8")
    assert fingerprint(load_tokenizer(reordered)) == original
    # One more special token: another fingerprint.
    changed = load_tokenizer(tiny_tokenizer_path)
    changed.add_special_tokens(["<|extra|>"])
    assert fingerprint(changed) != original


def test_info_of_our_tokenizer(tiny_tokenizer_path: Path) -> None:
    info = tokenizer_info(load_tokenizer(tiny_tokenizer_path))
    assert info.vocab_size == 1500
    assert info.token_dtype == "uint16"
    assert {k: v.id for k, v in info.special_tokens.items() if v} == {"bos": 0, "eos": 1, "pad": 2}
    assert TokenizerInfo.from_json(info.to_json()) == info


def deepseek_style_tokenizer() -> Tokenizer:
    """A stand-in with DeepSeek-Coder's special-token names (its real file cannot be fetched
    here): 100 byte-level words, then the added tokens at ids 100..102."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet)[:100])}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.add_special_tokens(
        [
            AddedToken("<｜begin▁of▁sentence｜>", special=True),
            AddedToken("<｜end▁of▁sentence｜>", special=True),
        ]
    )
    return tokenizer


def test_deepseek_special_token_names_are_found(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.json"
    deepseek_style_tokenizer().save(str(path))
    info = tokenizer_info(load_tokenizer(path))
    assert info.special_tokens["bos"] is not None
    assert info.special_tokens["bos"].token == "<｜begin▁of▁sentence｜>"
    assert info.special_tokens["eos"] is not None and info.special_tokens["eos"].id == 101
    assert info.special_tokens["pad"] is None  # DeepSeek-Coder has no pad token of its own
    # Naming a token explicitly: found, or a clear error.
    assert tokenizer_info(load_tokenizer(path), pad="<｜end▁of▁sentence｜>").special_tokens["pad"]
    with pytest.raises(TokenizerLoadError, match="not in the tokenizer"):
        tokenizer_info(load_tokenizer(path), bos="<s>")


def test_large_vocabulary_uses_uint32() -> None:
    assert token_dtype_for(65_536) == "uint16"
    assert token_dtype_for(65_537) == "uint32"
    vocab = {f"w{i}": i for i in range(70_000)}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="w0"))
    info = tokenizer_info(tokenizer)
    assert info.vocab_size == 70_000 and info.token_dtype == "uint32"


def test_missing_or_invalid_tokenizer_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TokenizerLoadError, match="cannot read tokenizer"):
        load_tokenizer(tmp_path / "absent")
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a tokenizer"}', encoding="utf-8")
    with pytest.raises(TokenizerLoadError, match=r"not a valid tokenizer\.json"):
        load_tokenizer(bad)
