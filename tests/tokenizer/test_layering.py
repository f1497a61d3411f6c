"""The shard/manifest contract imports neither Beam nor torch (the trainer loads it on GPU hosts
without Beam; Beam workers stay without torch)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_tokenizer_modules_import_neither_beam_nor_torch() -> None:
    code = (
        "import sys\n"
        "import tokenizer.cli, tokenizer.loading, tokenizer.manifest, tokenizer.shard_format\n"
        "import tokenizer.bpe_training, tokenizer.storage\n"
        "bad = sorted(m for m in ('apache_beam', 'torch', 'pipeline') if m in sys.modules)\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "", f"imported at module load: {result.stdout.strip()}"
