"""Manifests: build, load, merge (same tokenizer only), verify (truncated or altered shards are
caught and named), and the `mathcorpus manifest` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tokenizer.cli import main as manifest_main
from tokenizer.loading import SpecialToken, TokenizerInfo
from tokenizer.manifest import (
    ManifestError,
    ShardEntry,
    build_manifest,
    load_manifest,
    load_manifests,
    merge_manifests,
    verify_manifest,
    write_manifest,
)
from tokenizer.shard_format import ShardMeta, TokenizedDoc, shard_file_name, write_shard

VOCAB = 1500


def info(fingerprint: str = "ab" * 32) -> TokenizerInfo:
    return TokenizerInfo(
        fingerprint=fingerprint,
        vocab_size=VOCAB,
        token_dtype="uint16",
        special_tokens={
            "bos": SpecialToken("<|bos|>", 0),
            "eos": SpecialToken("<|eos|>", 1),
            "pad": None,
        },
    )


def make_run(
    folder: Path, source: str, domain: str, n_shards: int, tok: TokenizerInfo | None = None
) -> Path:
    """A run folder with `n_shards` small shards of random tokens and its manifest.json."""
    tok = tok or info()
    rng = np.random.default_rng(len(source) * 31 + n_shards)
    folder.mkdir(parents=True)
    meta = ShardMeta(source, domain, tok.fingerprint, tok.vocab_size, tok.token_dtype)
    entries = []
    for index in range(n_shards):
        docs = [
            TokenizedDoc(
                f"{source}-{index}-{i:04d}",
                rng.integers(3, VOCAB, size=int(rng.integers(1, 400))).astype(np.uint16),
            )
            for i in range(50)
        ]
        name = shard_file_name(index, n_shards)
        with (folder / name).open("wb") as fh:
            stats = write_shard(fh, docs, meta)
        entries.append(
            ShardEntry(name, stats.rows, stats.tokens, stats.bytes, stats.sha256, source, domain)
        )
    write_manifest(build_manifest(tok, entries, str(folder)), str(folder))
    return folder


def test_manifest_lists_every_shard_with_totals(tmp_path: Path) -> None:
    run = make_run(tmp_path / "math", "openwebmath", "math", 3)
    data = json.loads((run / "manifest.json").read_text())
    assert data["format"] == "mathcorpus.manifest" and data["schema_version"] == 1
    assert data["tokenizer"]["fingerprint"] == "ab" * 32
    assert data["tokenizer"]["special_tokens"]["pad"] is None
    assert [s["path"] for s in data["shards"]] == [shard_file_name(i, 3) for i in range(3)]
    assert data["totals"]["rows"] == 150
    assert data["totals"]["tokens"] == sum(s["tokens"] for s in data["shards"])
    assert data["totals"]["by_source"]["openwebmath"]["domain"] == "math"
    assert data["totals"]["by_domain"]["math"]["shards"] == 3
    manifest = load_manifest(str(run))
    assert manifest.shard_path(manifest.shards[0]) == str(run / shard_file_name(0, 3))
    assert manifest.tokenizer.special_tokens["eos"] == SpecialToken("<|eos|>", 1)
    assert not list(run.glob("*.tmp"))  # written through a temp file, renamed


def test_verify_passes_on_intact_shards(tmp_path: Path) -> None:
    run = make_run(tmp_path / "math", "openwebmath", "math", 2)
    report = verify_manifest(str(run))
    assert report.ok, report.problems
    assert report.shards_checked == 2


def test_verify_catches_a_truncated_shard(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = make_run(tmp_path / "math", "openwebmath", "math", 3)
    victim = run / shard_file_name(1, 3)
    victim.write_bytes(victim.read_bytes()[:-100])
    report = verify_manifest(str(run))
    assert report.broken_shards == [shard_file_name(1, 3)]
    assert any("truncated" in p for p in report.problems)
    assert manifest_main(["verify", str(run)]) == 1
    assert f"BROKEN {shard_file_name(1, 3)}" in capsys.readouterr().err


def test_verify_catches_an_altered_byte(tmp_path: Path) -> None:
    run = make_run(tmp_path / "math", "openwebmath", "math", 2)
    victim = run / shard_file_name(0, 2)
    data = bytearray(victim.read_bytes())
    data[len(data) // 3] ^= 0x01  # same size, one bit flipped inside the column data
    victim.write_bytes(bytes(data))
    report = verify_manifest(str(run))
    assert report.broken_shards == [shard_file_name(0, 2)]
    assert any("sha256" in p for p in report.problems)


def test_verify_recounts_rows_and_tokens(tmp_path: Path) -> None:
    run = make_run(tmp_path / "math", "openwebmath", "math", 2)
    path = run / "manifest.json"
    data = json.loads(path.read_text())
    data["shards"][1]["tokens"] += 1  # a manifest that lies about a count
    data["shards"][0]["path"] = "missing.parquet"
    path.write_text(json.dumps(data))
    report = verify_manifest(str(run))
    assert set(report.broken_shards) == {"missing.parquet", shard_file_name(1, 2)}
    assert any("tokens in the file" in p for p in report.problems)
    assert any("missing" in p for p in report.problems)
    assert any("totals" in p for p in report.problems)


def test_merge_combines_runs_with_relative_paths(tmp_path: Path) -> None:
    math = make_run(tmp_path / "runs" / "math", "openwebmath", "math", 2)
    code = make_run(tmp_path / "runs" / "code", "stdlib", "code", 1)
    out = tmp_path / "mixture"
    assert manifest_main(["merge", str(math), str(code), "--output", str(out)]) == 0
    merged = load_manifest(str(out))
    assert sorted(e.path for e in merged.shards) == [
        "../runs/code/shard-00000-of-00001.parquet",
        "../runs/math/shard-00000-of-00002.parquet",
        "../runs/math/shard-00001-of-00002.parquet",
    ]
    assert merged.sources == {"openwebmath": "math", "stdlib": "code"}
    assert merged.totals_by("domain")["math"].rows == 100
    assert verify_manifest(str(out)).ok
    assert manifest_main(["show", str(out)]) == 0
    # The trainer's way: several manifests read as one, shard paths absolute.
    combined = load_manifests([str(math), str(code)])
    assert combined.totals() == merged.totals()
    assert all(Path(e.path).is_absolute() and Path(e.path).is_file() for e in combined.shards)


def test_merge_refuses_different_tokenizers(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    math = make_run(tmp_path / "math", "openwebmath", "math", 1)
    code = make_run(tmp_path / "code", "stdlib", "code", 1, info("cd" * 32))
    with pytest.raises(ManifestError, match="different tokenizers"):
        merge_manifests([load_manifest(str(math)), load_manifest(str(code))], str(tmp_path))
    assert manifest_main(["merge", str(math), str(code), "--output", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "abababababab" in err and "cdcdcdcdcdcd" in err
    assert not (tmp_path / "m" / "manifest.json").exists()


def test_merge_refuses_a_shard_twice_and_a_source_in_two_domains(tmp_path: Path) -> None:
    math = make_run(tmp_path / "math", "openwebmath", "math", 1)
    with pytest.raises(ManifestError, match="listed by both"):
        merge_manifests([load_manifest(str(math))] * 2, str(tmp_path), ["a", "b"])
    other = make_run(tmp_path / "other", "openwebmath", "text", 1)
    with pytest.raises(ManifestError, match="appears with domains"):
        merge_manifests([load_manifest(str(math)), load_manifest(str(other))], str(tmp_path))


def test_load_rejects_what_is_not_a_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no manifest there"):
        load_manifest(str(tmp_path))
    (tmp_path / "manifest.json").write_text('{"format": "something else"}')
    with pytest.raises(ManifestError, match="not a mathcorpus manifest"):
        load_manifest(str(tmp_path))
    (tmp_path / "manifest.json").write_text(
        json.dumps({"format": "mathcorpus.manifest", "schema_version": 99})
    )
    with pytest.raises(ManifestError, match="schema version 99"):
        load_manifest(str(tmp_path))
