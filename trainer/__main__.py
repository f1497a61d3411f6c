"""`python -m trainer --config FILE [overrides]` (what torchrun launches: `torchrun ... -m
trainer`)."""

from __future__ import annotations

import sys

from trainer.cli import train_main

if __name__ == "__main__":
    sys.exit(train_main())
