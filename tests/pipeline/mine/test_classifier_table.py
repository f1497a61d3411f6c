"""The scoring table gives fastText's own log-odds, on real pages and on awkward lines."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from pipeline.mine.classifier import (
    LABEL_MATH,
    LABEL_OTHER,
    TABLE_FILE,
    ClassifierConfig,
    MathScorer,
    train_classifier,
)
from pipeline.mine.classifier_table import ClassifierTable
from pipeline.mine.classifier_text import classifier_text
from tests.helpers import seeds

SMALL = ClassifierConfig(bucket=100_000)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    pos, neg = seeds(150, 7)
    train_classifier(pos, neg, str(folder), SMALL)
    return folder


def fasttext_logit(model, line: str) -> float:  # type: ignore[no-untyped-def]
    """The exact log-odds the slow way: fastText's hidden vector . (w_math - w_other)."""
    labels = list(model.get_labels())
    output = np.asarray(model.get_output_matrix(), dtype=np.float64)
    direction = output[labels.index(LABEL_MATH)] - output[labels.index(LABEL_OTHER)]
    return float(np.dot(model.get_sentence_vector(line), direction))


def load_fasttext(folder: Path):  # type: ignore[no-untyped-def]
    import fasttext

    return fasttext.load_model(str(folder / "model.bin"))


def test_table_matches_fasttext_on_awkward_lines(trained: Path) -> None:
    model = load_fasttext(trained)
    scorer = MathScorer.load(str(trained))
    in_vocab = model.get_words()[:40]
    lines = [
        "",
        "   ",
        " ".join(in_vocab),
        " ".join(reversed(in_vocab)),
        "zzzqx qqqzz " + " ".join(in_vocab[:5]) + " unknownword",
        "__label__math " + " ".join(in_vocab[:6]),  # a label token is neither a word nor a hash
        f"{in_vocab[0]}\t{in_vocab[1]}\x00{in_vocab[2]}\r{in_vocab[3]}\x0b\x0c{in_vocab[4]}",
        "héllo wörld ∫ x ² 数学 𝑥 " + in_vocab[3],
        classifier_text("Solve $x^2+\\frac{1}{2}=0$ for x. Then $\\sqrt{2}$ is irrational."),
    ]
    for line in lines:
        assert scorer.logit_of_line(line) == pytest.approx(fasttext_logit(model, line), abs=1e-5)
    # A newline ends the line in fastText (what follows is not read): the same here.
    assert scorer.logit_of_line(f"{in_vocab[0]} {in_vocab[1]}\nx y z") == pytest.approx(
        fasttext_logit(model, f"{in_vocab[0]} {in_vocab[1]}"), abs=1e-6
    )


def test_table_matches_fasttext_on_every_real_page(
    trained: Path, real_page_texts: list[tuple[dict[str, str], str]]
) -> None:
    model = load_fasttext(trained)
    scorer = MathScorer.load(str(trained))
    worst = 0.0
    for _row, text in real_page_texts:
        line = classifier_text(text)
        worst = max(worst, abs(scorer.logit(text) - fasttext_logit(model, line)))
    assert worst < 1e-4, worst


def test_table_is_saved_with_the_model_and_checked_on_load(trained: Path, tmp_path: Path) -> None:
    meta = json.loads((trained / "model.json").read_text())
    assert meta["scoring_table"]["file"] == TABLE_FILE
    table = ClassifierTable.load(str(trained / TABLE_FILE))
    assert table.model_sha256 == meta["sha256"]
    assert table.row_scores.shape == (table.nwords + SMALL.bucket,)
    assert table.word_ngrams == SMALL.word_ngrams
    line = classifier_text("Find the derivative of $x^3$ with respect to $x$.")
    # A folder without the table (written before it existed) builds it from model.bin.
    old = tmp_path / "old"
    old.mkdir()
    shutil.copy(trained / "model.bin", old / "model.bin")
    old_meta = {k: v for k, v in meta.items() if k != "scoring_table"}
    (old / "model.json").write_text(json.dumps(old_meta))
    assert MathScorer.load(str(old)).logit_of_line(line) == pytest.approx(
        table.logit_of_line(line), abs=1e-9
    )
    # A table from another model is refused, naming both hashes.
    stale = tmp_path / "stale"
    shutil.copytree(trained, stale)
    (stale / "model.json").write_text(json.dumps({**meta, "sha256": "0" * 64}))
    with pytest.raises(ValueError, match="built from a model with sha256"):
        MathScorer.load(str(stale))


def test_table_refuses_models_it_cannot_reproduce() -> None:
    # The refusal reads only the labels and fastText's args: a stand-in with other settings.
    args = SimpleNamespace(loss="loss_name.ova", maxn=6, bucket=10, wordNgrams=2)
    model = SimpleNamespace(
        get_labels=lambda: ["__label__a", "__label__b"],
        f=SimpleNamespace(isQuant=lambda: True, getArgs=lambda: args),
    )
    with pytest.raises(ValueError) as info:
        ClassifierTable.from_fasttext(model, LABEL_MATH, LABEL_OTHER, "")
    message = str(info.value)
    for part in ("labels are", "quantized", "softmax", "maxn is 6"):
        assert part in message, message
