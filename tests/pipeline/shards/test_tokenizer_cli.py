"""`mathcorpus tokenizer train` and `info` end to end on real code and real page text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.shards.tokenizer_cli import main as tokenizer_main
from tests.helpers import STDLIB, real_pages
from tokenizer.loading import fingerprint, load_tokenizer


def write_jsonl(path: Path, texts: list[str]) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for i, text in enumerate(texts):
            fh.write(json.dumps({"id": i, "text": text}) + "\n")
        fh.write('{"id": "no text field"}\n')  # skipped by the sampler, not fatal
    return path


def test_train_then_info(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pages = [text[:20_000] for _, text in real_pages("math")] or ["$x^2$ is a square. " * 100]
    data = write_jsonl(tmp_path / "pages.jsonl", pages)
    out = tmp_path / "tok"
    argv = ["train", "--input", str(data), "--code", str(STDLIB / "json")]
    argv += ["--vocab-size", "800", "--output", str(out)]
    assert tokenizer_main(argv) == 0
    report = json.loads((out / "training.json").read_text())
    assert report["roundtrip_failures"] == 0 and report["roundtrip_checked"] > 0
    assert [s["kind"] for s in report["sample"]] == ["text", "code"]
    assert report["sample"][1]["documents"] == len(list((STDLIB / "json").glob("*.py")))
    tokenizer = load_tokenizer(out)
    assert tokenizer.get_vocab_size() == 800
    assert report["tokenizer"]["fingerprint"] == fingerprint(tokenizer)
    capsys.readouterr()
    assert tokenizer_main(["info", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["fingerprint"] == fingerprint(tokenizer)
    # Same sample, same seed: the same tokenizer.
    assert tokenizer_main([*argv[:-1], str(tmp_path / "again")]) == 0
    assert fingerprint(load_tokenizer(tmp_path / "again")) == fingerprint(tokenizer)


def test_train_needs_an_input(tmp_path: Path) -> None:
    assert tokenizer_main(["train", "--output", str(tmp_path)]) == 2
    too_small = ["train", "--code", str(STDLIB / "json"), "--vocab-size", "5"]
    assert tokenizer_main([*too_small, "--output", str(tmp_path)]) == 2
