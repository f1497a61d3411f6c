"""`python -m mathcorpus`: the same as the `mathcorpus` command."""

import sys

from mathcorpus.cli import main

sys.exit(main())
