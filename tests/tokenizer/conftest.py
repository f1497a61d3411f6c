"""Fixtures of the tokenizer tests: one tiny tokenizer per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from tokenizers import Tokenizer

from tests.helpers import write_tiny_tokenizer


@pytest.fixture(scope="session")
def tiny_tokenizer_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_tokenizer(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_tokenizer_path: Path) -> Tokenizer:
    return Tokenizer.from_file(str(tiny_tokenizer_path))
