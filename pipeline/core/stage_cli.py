"""The shared shape of a stage's command: flags from its config, run, print a summary."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from pipeline.core.config_errors import ConfigError
from pipeline.core.config_flags import add_config_flags, config_from_flags
from pipeline.core.run_output import OutputConflict
from pipeline.core.stage_run import pipeline_options

BEAM_EPILOG = (
    "Any other --option is passed to Apache Beam (e.g. --runner, "
    "--direct_running_mode=multi_processing --direct_num_workers=2)."
)


def stage_parser(
    prog: str, cls: type, description: str, *, beam: bool = True
) -> argparse.ArgumentParser:
    """An argument parser whose flags are the fields of the stage's config `cls`."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, epilog=BEAM_EPILOG if beam else None
    )
    add_config_flags(parser, cls)
    return parser


def stage_main(
    prog: str,
    parser: argparse.ArgumentParser,
    cls: type,
    run: Callable[[Any, Sequence[str]], Any],
    summary: Callable[[Any, Any], str],
    argv: Sequence[str] | None = None,
    *,
    errors: tuple[type[Exception], ...] = (),
    exit_status: Callable[[Any], int] = lambda result: 0,
) -> int:
    """Parse flags (unknown ones go to Beam), build the config, run, print the summary.
    Exit status: 2 for a config or input problem (the message says what to change), else
    `exit_status(result)` (0: done)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args, beam_args = parser.parse_known_args(argv)
    try:
        # The file systems get the Beam options (object store endpoints, credentials) before
        # the config checks its paths exist.
        pipeline_options(beam_args)
        config = config_from_flags(cls, args)
        result = run(config, beam_args)
    except (ConfigError, OutputConflict, *errors) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    print(summary(config, result))
    return exit_status(result)


def format_funnel(stats: dict[str, Any]) -> str:
    """A short human-readable funnel of a stats.json document, for the terminal."""
    stages = {
        name: s
        for name, s in stats["stages"].items()
        # a helper's notes only (e.g. connected-components rounds) are not a funnel step
        if s["in"] or s["kept"] or s["dropped"] or s["dead_lettered"]
    }
    width = max([10, *(len(name) for name in stages)])
    lines = [f"{'stage':<{width}} {'in':>9} {'kept':>9}  dropped / dead-lettered"]
    for name, s in stages.items():
        losses = {**s["dropped"], **{f"dead:{k}": v for k, v in s["dead_lettered"].items()}}
        detail = ", ".join(f"{k}={v}" for k, v in losses.items()) or "-"
        mark = "" if s["balanced"] else "  (UNBALANCED)"
        lines.append(f"{name:<{width}} {s['in']:>9} {s['kept']:>9}  {detail}{mark}")
    return "\n".join(lines)
