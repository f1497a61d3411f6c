"""Loading a tokenizer and naming it: the fingerprint that travels into every manifest.

Any Hugging Face `tokenizer.json` loads; the fingerprint is the sha256 of its canonical JSON, so
formatting does not change it and any change to the tokenizer does (docs/tokenizer.md). No Beam
and no torch here: the trainer loads tokenizers on GPU hosts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from tokenizer import storage

TOKENIZER_FILE = "tokenizer.json"
# Token ids are stored as uint16 when every id fits (vocabulary <= 65,536 entries), else uint32.
UINT16_VOCAB_LIMIT = 1 << 16

# Special-token names tried, in order, when the caller names none (ours first, then DeepSeek's
# LLM/Coder tokenizers, then common conventions).
BOS_CANDIDATES = ("<|bos|>", "<｜begin▁of▁sentence｜>", "<s>", "<|begin_of_text|>", "<|endoftext|>")
EOS_CANDIDATES = ("<|eos|>", "<｜end▁of▁sentence｜>", "</s>", "<|end_of_text|>", "<|endoftext|>")
PAD_CANDIDATES = ("<|pad|>", "<pad>", "<|padding|>", "[PAD]")


class TokenizerLoadError(ValueError):
    """A tokenizer file is absent or is not a valid Hugging Face tokenizer.json."""


def tokenizer_file(path: str | Path) -> str:
    """The tokenizer.json for `path`: the file itself, or `<folder>/tokenizer.json`."""
    text = str(path)
    if text.endswith(".json"):
        return text
    return storage.join(text, TOKENIZER_FILE)


def read_tokenizer_json(path: str | Path) -> str:
    """The text of the tokenizer.json at `path` (file or folder; local, gs:// or s3://)."""
    file = tokenizer_file(path)
    try:
        with storage.open_input(file) as fh:
            return fh.read().decode("utf-8")
    except (FileNotFoundError, OSError) as exc:
        raise TokenizerLoadError(f"cannot read tokenizer {file}: {exc}") from exc


def tokenizer_from_json(text: str, origin: str = "<string>") -> Tokenizer:
    """A Tokenizer from tokenizer.json text; a clear error when it is not one."""
    try:
        return Tokenizer.from_str(text)
    except Exception as exc:  # the Rust side raises plain Exception for any parse problem
        raise TokenizerLoadError(f"{origin} is not a valid tokenizer.json: {exc}") from exc


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load a tokenizer.json from a local path (file or folder) or a gs:// / s3:// URL."""
    return tokenizer_from_json(read_tokenizer_json(path), origin=tokenizer_file(path))


def canonical_json(tokenizer: Tokenizer) -> str:
    """The tokenizer's JSON with sorted keys and no spaces: the text that is fingerprinted."""
    data = json.loads(tokenizer.to_str())
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(tokenizer: Tokenizer) -> str:
    """sha256 (hex) of the canonical tokenizer JSON."""
    return hashlib.sha256(canonical_json(tokenizer).encode("utf-8")).hexdigest()


def vocab_size(tokenizer: Tokenizer) -> int:
    """Number of token ids: one more than the largest id, added (special) tokens included."""
    ids = tokenizer.get_vocab(with_added_tokens=True).values()
    return max(ids) + 1 if ids else 0


def token_dtype_for(n_ids: int) -> str:
    """`uint16` when every id < n_ids fits in 16 bits, else `uint32`."""
    return "uint16" if n_ids <= UINT16_VOCAB_LIMIT else "uint32"


def _find_token(
    tokenizer: Tokenizer, wanted: str | None, candidates: tuple[str, ...]
) -> str | None:
    if wanted is not None:
        if tokenizer.token_to_id(wanted) is None:
            raise TokenizerLoadError(f"special token {wanted!r} is not in the tokenizer")
        return wanted
    for token in candidates:
        if tokenizer.token_to_id(token) is not None:
            return token
    return None


@dataclass(frozen=True)
class SpecialToken:
    """One special token: its text and id."""

    token: str
    """The token as written in tokenizer.json (e.g. `<|eos|>`)."""
    id: int
    """Its id."""


@dataclass(frozen=True)
class TokenizerInfo:
    """What a manifest says about the tokenizer its shards were made with."""

    fingerprint: str
    """sha256 of the canonical tokenizer JSON."""
    vocab_size: int
    """Number of token ids (largest id + 1, special tokens included)."""
    token_dtype: str
    """`uint16` (vocab_size <= 65,536) or `uint32`: the integer type of the token column."""
    special_tokens: dict[str, SpecialToken | None] = field(default_factory=dict)
    """`bos`, `eos`, `pad` -> token and id, or None when the tokenizer has no such token."""

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "vocab_size": self.vocab_size,
            "token_dtype": self.token_dtype,
            "special_tokens": {
                name: (None if tok is None else {"token": tok.token, "id": tok.id})
                for name, tok in sorted(self.special_tokens.items())
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TokenizerInfo:
        specials = {
            name: (None if value is None else SpecialToken(str(value["token"]), int(value["id"])))
            for name, value in dict(data.get("special_tokens") or {}).items()
        }
        return cls(
            fingerprint=str(data["fingerprint"]),
            vocab_size=int(data["vocab_size"]),
            token_dtype=str(data["token_dtype"]),
            special_tokens=specials,
        )


def tokenizer_info(
    tokenizer: Tokenizer,
    *,
    bos: str | None = None,
    eos: str | None = None,
    pad: str | None = None,
) -> TokenizerInfo:
    """Fingerprint, vocabulary size, id type and special tokens of a loaded tokenizer.

    `bos`/`eos`/`pad` name the special tokens; left None, the usual names are tried (ours,
    DeepSeek's, `<s>`/`</s>`, ...) and a token that is not found is recorded as None.
    """
    n_ids = vocab_size(tokenizer)
    specials: dict[str, SpecialToken | None] = {}
    for name, wanted, candidates in (
        ("bos", bos, BOS_CANDIDATES),
        ("eos", eos, EOS_CANDIDATES),
        ("pad", pad, PAD_CANDIDATES),
    ):
        token = _find_token(tokenizer, wanted, candidates)
        token_id = None if token is None else tokenizer.token_to_id(token)
        specials[name] = (
            None if token is None or token_id is None else SpecialToken(token, token_id)
        )
    return TokenizerInfo(
        fingerprint=fingerprint(tokenizer),
        vocab_size=n_ids,
        token_dtype=token_dtype_for(n_ids),
        special_tokens=specials,
    )
