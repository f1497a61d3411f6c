"""The math classifier: preprocessing, training with metadata, reproducibility, scores, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.core.config_errors import ConfigError
from pipeline.mine.classifier import (
    ClassifierConfig,
    MathScorer,
    probability,
    read_seed,
    train_classifier,
)
from pipeline.mine.classifier_text import NUMBER_TOKEN, classifier_text, classifier_tokens
from pipeline.mine.pipeline import classifier_main
from tests.helpers import seeds

# The paper's 2M n-gram buckets allocate a 2 GB matrix (seconds per model); tests other than the
# one checking the defaults use fewer buckets.
SMALL = ClassifierConfig(bucket=100_000)


def test_preprocessing_keeps_latex_structure() -> None:
    text = "Solve $x^2+\\frac{1}{2}=0$ in 2024.\nＦｕｌｌ width"
    assert classifier_text(text) == (
        f"solve $ x ^ 2 + \\frac {{ 1 }} {{ 2 }} = 0 $ in {NUMBER_TOKEN} . full width"
    )
    assert classifier_tokens("\\Sqrt{x_1}") == ["\\sqrt", "{", "x", "_", "1", "}"]
    # Truncation: only the first max_chars characters count.
    assert classifier_text("abc def", max_chars=3) == "abc"
    assert "\n" not in classifier_text("a\nb\r\nc")


def test_training_writes_model_with_metadata_and_is_reproducible(tmp_path: Path) -> None:
    pos, neg = seeds(150, 1)
    config = ClassifierConfig()
    meta = train_classifier(pos, neg, str(tmp_path / "a"), config)
    assert meta["settings"]["dim"] == 256 and meta["settings"]["word_ngrams"] == 3
    assert meta["settings"]["min_count"] == 3 and meta["settings"]["epoch"] == 3
    assert meta["settings"]["lr"] == 0.1
    seed = meta["seed"]
    assert seed["train_positives"] + seed["heldout_positives"] == 150
    assert seed["heldout_positives"] > 0 and seed["heldout_negatives"] > 0
    assert meta["heldout"]["precision"] >= 0.9 and meta["heldout"]["recall"] >= 0.9
    on_disk = json.loads((tmp_path / "a" / "model.json").read_text())
    assert on_disk["sha256"] == meta["sha256"]
    # Same seed, one thread: byte-identical model, whatever order the examples come in.
    again = train_classifier(list(reversed(pos)), list(reversed(neg)), str(tmp_path / "b"), config)
    assert again["sha256"] == meta["sha256"]


def test_scores_are_fasttext_probabilities_without_saturation(tmp_path: Path) -> None:
    pos, neg = seeds(120, 2)
    train_classifier(pos, neg, str(tmp_path), SMALL)
    scorer = MathScorer.load(str(tmp_path))
    import fasttext

    model = fasttext.load_model(str(tmp_path / "model.bin"))
    for doc in (pos[0], neg[0]):
        line = classifier_text(doc.text)
        labels, probs = model.predict(line, k=2)
        p_math = dict(zip(labels, probs, strict=True))["__label__math"]
        # fastText adds 1e-5 to the probabilities it returns.
        assert probability(scorer.logit(doc.text)) == pytest.approx(p_math - 1e-5, abs=1e-4)
    assert scorer.logit(pos[1].text) > 0 > scorer.logit(neg[1].text)


def test_negatives_that_are_positives_are_dropped(tmp_path: Path) -> None:
    pos, neg = seeds(60, 3)
    meta = train_classifier(pos, [*neg, pos[0]], str(tmp_path), SMALL)
    assert meta["seed"]["negatives_excluded"] == 1


def test_empty_seed_and_bad_config_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="positive seed is empty"):
        train_classifier([], seeds(5, 4)[1], str(tmp_path), SMALL)
    with pytest.raises(ConfigError) as info:
        ClassifierConfig(dim=0, lr=-1, holdout_fraction=1.5)
    assert all(f in str(info.value) for f in ("dim", "lr", "holdout_fraction"))


def test_read_seed_counts_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "seed.jsonl"
    path.write_text('{"text": "a page"}\nnot json\n{"text": ""}\n', encoding="utf-8")
    items = list(read_seed(str(path)))
    assert [type(i).__name__ for i in items] == ["SeedDoc", "BadRecord"]


def test_classifier_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pos, neg = seeds(80, 5)
    for name, docs in (("pos.jsonl", pos), ("neg.jsonl", neg)):
        (tmp_path / name).write_text(
            "".join(json.dumps({"id": d.key, "text": d.text}) + "\n" for d in docs)
        )
    code = classifier_main(
        [
            "train",
            "--positives",
            str(tmp_path / "pos.jsonl"),
            "--negatives",
            str(tmp_path / "neg.jsonl"),
            "--id-field",
            "id",
            "--output",
            str(tmp_path / "model"),
            "--bucket",
            "100000",
        ]
    )
    assert code == 0
    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    assert meta["seed"]["train_positives"] + meta["seed"]["heldout_positives"] == 80
    assert "model written" in capsys.readouterr().out
    assert (
        classifier_main(["train", "--positives", "nope.jsonl", "--negatives", "x", "--output", "o"])
        == 2
    )


def test_scoring_counts_tokens_with_the_given_tokenizer(tmp_path: Path) -> None:
    from pipeline.mine.transforms import ScorePages, estimate_tokens
    from tests.helpers import write_tiny_tokenizer
    from tokenizer.loading import load_tokenizer

    pos, neg = seeds(60, 5)
    train_classifier(pos, neg, str(tmp_path / "model"), SMALL)
    tokenizer_json = write_tiny_tokenizer(tmp_path / "tok")
    row = {"doc_id": "d1", "url": "https://a.example/x", "domain": "a.example", "text": pos[0].text}
    with_tokenizer = ScorePages(str(tmp_path / "model"), str(tokenizer_json))
    with_tokenizer.setup()
    scored = next(iter(with_tokenizer.process(row)))
    expected = len(
        load_tokenizer(str(tokenizer_json)).encode(pos[0].text, add_special_tokens=False).ids
    )
    assert scored["n_tokens"] == expected > 0
    estimated = ScorePages(str(tmp_path / "model"), None)
    estimated.setup()
    assert next(iter(estimated.process(row)))["n_tokens"] == estimate_tokens(pos[0].text)
    # A row without text is dead-lettered, not a crash.
    dead = list(estimated.process({"doc_id": "d2", "text": None}))
    assert len(dead) == 1 and "missing_field" in str(dead[0].value)
