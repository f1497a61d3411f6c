"""Session fixtures of the trainer tests: a tiny tokenizer and real code/math shards."""

from __future__ import annotations

from pathlib import Path

import pytest
from tokenizers import Tokenizer

from tests.helpers import real_runs, write_tiny_tokenizer


@pytest.fixture(scope="session")
def trainer_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    path = write_tiny_tokenizer(tmp_path_factory.mktemp("trainer_tokenizer"), vocab_size=512)
    return Tokenizer.from_file(str(path))


@pytest.fixture(scope="session")
def real_shards(
    tmp_path_factory: pytest.TempPathFactory, trainer_tokenizer: Tokenizer
) -> dict[str, Path]:
    """{"math": folder, "code": folder}: 2 shards each, manifests written."""
    return real_runs(tmp_path_factory.mktemp("real_shards"), trainer_tokenizer)
