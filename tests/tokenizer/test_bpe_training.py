"""BPE training: exact round trips on real pages, LaTeX, Chinese and code; digits one by one;
whitespace runs kept; special tokens; determinism; config validation."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer

from tests.helpers import STDLIB, TINY_VOCAB, real_pages, require_shared
from tokenizer.bpe_training import (
    BpeTrainingConfig,
    TrainingConfigError,
    new_byte_level_bpe,
    train_bpe,
)
from tokenizer.loading import fingerprint

LATEX = (
    r"Let $f(x) = \frac{1}{\sqrt{2\pi\sigma^2}} e^{-\frac{(x-\mu)^2}{2\sigma^2}}$. Then"
    "\n$$\\int_{-\\infty}^{\\infty} f(x)\\,dx = 1, \\quad \\sum_{k=0}^{n} \\binom{n}{k} = 2^n$$\n"
    r"\begin{align*} a^2 + b^2 &= c^2 \\ e^{i\pi} + 1 &= 0 \end{align*}"
)
CHINESE = "设函数 $f(x)=x^2-3x+2$，求方程 f(x)=0 的根。解：因式分解得 (x-1)(x-2)=0，故 x=1 或 x=2。"
CODE_WITH_TABS = (
    "def f(x):\t# tab inside a line\n\tif x > 10:   \n\t\treturn [i ** 2 for i in range(x)]\t\n"
    "    \n  \t mixed = 'trailing spaces'    \n\n\n\treturn None\r\n# CRLF line\r\nend  "
)
OTHER_PAGE_CHARS = 5_000
ODD_TEXT = [
    "",
    " ",
    "\u00a0non-breaking\u2009thin space\u200bzero width",
    "emoji 🧮📐 and combining é vs é",
    "\x00\x01 control \x7f chars",
    "١٢٣ Arabic-Indic digits, ½ ² Ⅻ",
]


def roundtrip(tokenizer: Tokenizer, text: str) -> str:
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    return tokenizer.decode(ids, skip_special_tokens=False)


def test_roundtrip_on_the_real_pages(tiny_tokenizer: Tokenizer) -> None:
    require_shared("html", "labels.csv")
    pages = real_pages()
    assert len(pages) > 500
    math = {name for name, _ in real_pages("math")}
    # Math pages whole; the other pages' first characters (markup, scripts, many scripts and
    # charsets) keep the test to a few seconds.
    texts = [text if name in math else text[:OTHER_PAGE_CHARS] for name, text in pages]
    encodings = tiny_tokenizer.encode_batch_fast(texts, add_special_tokens=False)
    decoded = tiny_tokenizer.decode_batch([e.ids for e in encodings], skip_special_tokens=False)
    pairs = zip(pages, texts, decoded, strict=True)
    broken = [name for (name, _), text, back in pairs if back != text]
    assert not broken, f"{len(broken)} pages do not round-trip, e.g. {broken[:3]}"


@pytest.mark.parametrize("text", [LATEX, CHINESE, CODE_WITH_TABS, *ODD_TEXT])
def test_roundtrip_latex_chinese_code_and_odd_text(tiny_tokenizer: Tokenizer, text: str) -> None:
    assert roundtrip(tiny_tokenizer, text) == text


def test_roundtrip_on_real_code(tiny_tokenizer: Tokenizer) -> None:
    # Code the tokenizer was not trained on, tabs and all.
    for path in [*sorted((STDLIB / "tomllib").glob("*.py")), STDLIB / "tabnanny.py"]:
        text = path.read_text(encoding="utf-8")
        assert roundtrip(tiny_tokenizer, text) == text, path


def test_digits_are_split_one_by_one(tiny_tokenizer: Tokenizer) -> None:
    tokens = tiny_tokenizer.encode("x = 1234567890 + 2024", add_special_tokens=False).tokens
    digit_tokens = [t.lstrip("Ġ") for t in tokens if any(ch.isdigit() for ch in t)]
    assert digit_tokens == list("1234567890") + list("2024")


def test_whitespace_runs_are_kept_as_pieces() -> None:
    pre = new_byte_level_bpe().pre_tokenizer
    pieces = [piece for piece, _ in pre.pre_tokenize_str("if x:\n        return  y\t\t\n")]
    # ByteLevel shows a space as Ġ, a tab as ĉ, a newline as Ċ.
    assert "ĠĠĠĠĠĠĠ" in pieces  # 7 of the 8 indentation spaces; the 8th starts `return`
    assert "Ġreturn" in pieces
    assert "ĉĉĊ" in pieces  # trailing tabs stay with the line break


def test_special_tokens_and_vocab_size(tiny_tokenizer: Tokenizer) -> None:
    assert tiny_tokenizer.get_vocab_size() == TINY_VOCAB
    assert [tiny_tokenizer.token_to_id(t) for t in ("<|bos|>", "<|eos|>", "<|pad|>")] == [0, 1, 2]
    # Special tokens typed in a document are encoded as one id (they are added tokens), and
    # decode gives the text back.
    assert roundtrip(tiny_tokenizer, "a<|eos|>b") == "a<|eos|>b"


def test_training_is_deterministic() -> None:
    texts = [p.read_text(encoding="utf-8") for p in sorted((STDLIB / "json").glob("*.py"))]
    config = BpeTrainingConfig(vocab_size=600)
    assert fingerprint(train_bpe(texts, config)) == fingerprint(train_bpe(texts, config))
    other = BpeTrainingConfig(vocab_size=700)
    assert fingerprint(train_bpe(texts, other)) != fingerprint(train_bpe(texts, config))


def test_config_lists_every_problem() -> None:
    with pytest.raises(TrainingConfigError) as info:
        BpeTrainingConfig(vocab_size=10, min_frequency=0, bos_token="<x>", eos_token="<x>")
    message = str(info.value)
    assert "3 problem(s)" in message
    assert "vocab_size" in message and "min_frequency" in message and "must differ" in message
