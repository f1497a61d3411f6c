"""Atomic run outputs: staging, commit order, skip and conflict rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.core.run_output import CONFIG_FILE, STATS_FILE, OutputConflict, RunOutput


def test_commit_moves_staged_files_then_writes_config_and_stats(tmp_path: Path) -> None:
    out = RunOutput(str(tmp_path / "o"), {"a": 1}, owned_globs=["part-*.txt"])
    assert not out.finished_with_same_config(overwrite=False)
    out.begin()
    staging = Path(out.staging)
    (staging / "part-0.txt").write_text("x")
    (staging / "dead_letter").mkdir()
    (staging / "dead_letter" / "d.jsonl").write_text("{}\n")
    out.commit({"a": 1}, {"ok": True})
    folder = tmp_path / "o"
    assert (folder / "part-0.txt").read_text() == "x"
    assert (folder / "dead_letter" / "d.jsonl").exists()
    assert not staging.exists()
    assert json.loads((folder / STATS_FILE).read_text()) == {"ok": True}
    assert json.loads((folder / CONFIG_FILE).read_text())["fingerprint"] == out.fingerprint
    assert out.finished_with_same_config(overwrite=False)


def test_other_config_conflicts_unless_overwrite(tmp_path: Path) -> None:
    first = RunOutput(str(tmp_path), {"a": 1}, owned_globs=["part-*.txt"])
    first.begin()
    (Path(first.staging) / "part-0.txt").write_text("old")
    first.commit({"a": 1}, {})
    second = RunOutput(str(tmp_path), {"a": 2}, owned_globs=["part-*.txt"])
    with pytest.raises(OutputConflict):
        second.finished_with_same_config(overwrite=False)
    assert not second.finished_with_same_config(overwrite=True)
    second.begin()
    # The previous run's files and completion marker are gone before the new run writes.
    assert not (tmp_path / "part-0.txt").exists()
    assert not (tmp_path / STATS_FILE).exists()


def test_unfinished_folder_is_not_complete(tmp_path: Path) -> None:
    out = RunOutput(str(tmp_path), {"a": 1}, owned_globs=["part-*.txt"])
    (tmp_path / "part-3.txt").write_text("from a killed run")
    assert not out.finished_with_same_config(overwrite=False)
    out.begin()
    assert not (tmp_path / "part-3.txt").exists()
