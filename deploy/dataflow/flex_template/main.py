"""Entry point of the mathcorpus Dataflow Flex Template (FLEX_TEMPLATE_PYTHON_PY_FILE).

The template launcher calls `python main.py --stage=pool --input=gs://... --output=gs://...`
plus the Dataflow options it adds itself (--runner, --project, --region, --temp_location,
...). Template parameter names must be plain identifiers, so they are the stage's options with
`_` for `-` (`--min_text_chars=50` for `--min-text-chars 50`), and list options take a
comma-separated value (`--languages=en,zh`). Everything that is not one of the stage's own
options passes through to Beam unchanged.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# stage -> module with build_arg_parser() and main(argv) (the `mathcorpus` subcommands).
STAGE_MODULES = {
    "pool": "pipeline.pool.pipeline",
    "dedup": "pipeline.dedup.pipeline",
    "shards": "pipeline.shards.pipeline",
}


def stage_argv(stage: str, params: Sequence[str]) -> list[str]:
    """Template parameters (`--name=value`) -> the stage's argv in its own option spelling."""
    parser: argparse.ArgumentParser = importlib.import_module(
        STAGE_MODULES[stage]
    ).build_arg_parser()
    actions = {
        option: action
        for action in parser._actions  # argparse has no public accessor for this
        for option in action.option_strings
    }
    argv: list[str] = []
    for param in params:
        name, has_value, value = param.partition("=")
        option = "--" + name.removeprefix("--").replace("_", "-")
        action = actions.get(option) if name.startswith("--") else None
        if action is None:
            argv.append(param)  # a Beam / Dataflow option
        elif action.nargs == 0:  # a flag: --overwrite=true / --overwrite=false
            if not has_value or value.lower() in {"1", "true", "yes"}:
                argv.append(option)
        elif action.nargs in ("+", "*"):
            argv.extend([option, *[v for v in value.split(",") if v]])
        else:
            argv.extend([option, value])
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    stage_parser = argparse.ArgumentParser(add_help=False)
    stage_parser.add_argument("--stage", required=True, choices=sorted(STAGE_MODULES))
    known, rest = stage_parser.parse_known_args(args)
    module = importlib.import_module(STAGE_MODULES[known.stage])
    return int(module.main(stage_argv(known.stage, rest)) or 0)


if __name__ == "__main__":
    sys.exit(main())
