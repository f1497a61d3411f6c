"""The training sample drawn by Beam (`BuildTrainingSample`) is the file the driver writes.

`write_training_files` (what `mathcorpus classifier train` trains on) and the Beam step must
give the same lines in the same order and the same held-out split, so a model trained in the
mining loop is byte-identical to one trained on the driver from the same seed.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.core.counters import counters_from_beam_result
from pipeline.core.dead_letters import DEAD_LETTER
from pipeline.mine.classifier import ClassifierConfig, SeedDoc, write_training_files
from pipeline.mine.seed_files import SeedFile, SeedReader, seed_files
from pipeline.mine.transforms import BuildTrainingSample
from pipeline.shards.text_sources import SourceFields
from tests.helpers import BEAM_TEST_ARGS, seeds

FIELDS = SourceFields(text_field="text", id_field="doc_id")


def write_jsonl(path: Path, docs: list[SeedDoc], extra_lines: tuple[str, ...] = ()) -> None:
    lines = [json.dumps({"doc_id": d.key, "text": d.text}) for d in docs] + list(extra_lines)
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def test_beam_sample_equals_the_driver_files(tmp_path: Path) -> None:
    pos, neg = seeds(40, 3)
    # A positive twice (same text), and a negative that is also a positive (dropped).
    positives_a, positives_b = pos[:25], [*pos[25:], pos[0]]
    negatives = [*neg, pos[1]]
    config = ClassifierConfig(holdout_fraction=0.2, seed=7)
    write_training_files(
        [*positives_a, *positives_b],
        negatives,
        str(tmp_path / "t.txt"),
        str(tmp_path / "h.txt"),
        config,
    )
    (tmp_path / "pos").mkdir()
    write_jsonl(tmp_path / "pos" / "a.jsonl", positives_a, ('{"no_text": 1}', "not json"))
    write_jsonl(tmp_path / "pos" / "b.jsonl.gz", positives_b)
    write_jsonl(tmp_path / "neg.jsonl", negatives, ('{"doc_id": "empty", "text": " "}',))
    files = [(f, True) for f in seed_files(str(tmp_path / "pos"), FIELDS)] + [
        (f, False) for f in seed_files(str(tmp_path / "neg.jsonl"), FIELDS)
    ]
    assert [f.fmt for f, _ in files] == ["jsonl", "jsonl", "jsonl"]
    out = tmp_path / "sample"
    out.mkdir()
    p = beam.Pipeline(options=PipelineOptions(list(BEAM_TEST_ARGS)))
    sample = p | beam.Create(files) | BuildTrainingSample(str(out), config)
    dead = sample[DEAD_LETTER] | "DeadReasons" >> beam.Map(lambda line: line.reason)
    _ = dead | beam.io.WriteToText(str(tmp_path / "dead"), shard_name_template="")
    result = p.run()
    result.wait_until_finish()
    counters = counters_from_beam_result(result)

    def joined(part: str) -> str:
        return "".join(f.read_text() for f in sorted(out.glob(f"{part}-*.txt")))

    assert joined("train") == (tmp_path / "t.txt").read_text()
    assert joined("heldout") == (tmp_path / "h.txt").read_text()
    assert sorted((tmp_path / "dead").read_text().split()) == ["bad_json", "missing_text_field"]
    assert counters["seed_positive.in"] == 43 and counters["seed_positive.kept"] == 41
    assert counters["seed_negative.dropped.empty_text"] == 1
    assert counters["sample.dropped.duplicate_key"] == 1
    assert counters["sample.dropped.is_positive"] == 1
    assert counters["sample.kept"] == 80


def test_seed_sources_are_listed_and_read_through_filesystems(tmp_path: Path) -> None:
    pos, _ = seeds(5, 1)
    write_jsonl(tmp_path / "one.jsonl", pos)
    (tmp_path / "mixed").mkdir()
    write_jsonl(tmp_path / "mixed" / "a.jsonl", pos)
    (tmp_path / "mixed" / "notes.md").write_text("not a seed file")
    assert seed_files(str(tmp_path / "missing"), FIELDS) == []
    assert seed_files(str(tmp_path / "one.jsonl"), FIELDS) == [
        SeedFile(str(tmp_path / "one.jsonl"), "jsonl", FIELDS)
    ]
    try:
        seed_files(str(tmp_path / "mixed"), FIELDS)
        raise AssertionError("a folder with a .md file was accepted")
    except ValueError as exc:
        assert "notes.md" in str(exc)
    reader = SeedReader()
    assert [d.key for d in reader.docs([str(tmp_path / "one.jsonl")], FIELDS)] == [
        d.key for d in pos
    ]
