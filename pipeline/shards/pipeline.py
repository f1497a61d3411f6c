"""`mathcorpus shards`: documents -> tokenized Parquet shards + manifest.json.

    mathcorpus shards --input runs/corpus --source openwebmath --domain math \\
        --tokenizer runs/tokenizer --output runs/shards/math

Other inputs (JSONL/Parquet datasets, code trees) and Dataflow: docs/stages/shards.md. The
manifest is written after stats.json: the run's last file.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipeline.core.config_errors import ConfigError
from pipeline.core.counters import stats_document
from pipeline.core.dead_letters import (
    DEAD_LETTER,
    DEAD_LETTER_GLOB,
    WriteDeadLetters,
)
from pipeline.core.files import match_with_sizes
from pipeline.core.run_output import (
    STATS_FILE,
    RunOutput,
    read_json,
    write_json_atomic,
)
from pipeline.core.stage_cli import format_funnel, stage_main, stage_parser
from pipeline.core.stage_run import pipeline_options, run_and_count
from pipeline.shards.config import (
    ShardsConfig,
)
from pipeline.shards.inputs import (
    InputFile,
    list_inputs,
)
from pipeline.shards.transforms import (
    BuildShards,
)
from tokenizer.loading import (
    TokenizerInfo,
    TokenizerLoadError,
    read_tokenizer_json,
    tokenizer_from_json,
    tokenizer_info,
)
from tokenizer.manifest import MANIFEST_FILE, ShardEntry, build_manifest
from tokenizer.shard_format import (
    SHARD_FILE_PREFIX,
    SHARD_FORMAT_VERSION,
)

LOG = logging.getLogger("mathcorpus.shards")
# Written by the workers into staging, read and removed by the driver before the commit.
SHARD_INDEX_PREFIX = "_shard_index"
# --- driver ---


def load_tokenizer_info(config: ShardsConfig) -> TokenizerInfo:
    try:
        tokenizer = tokenizer_from_json(read_tokenizer_json(config.tokenizer), config.tokenizer)
        return tokenizer_info(
            tokenizer, bos=config.bos_token, eos=config.eos_token, pad=config.pad_token
        )
    except TokenizerLoadError as exc:
        raise ConfigError("shards tokenizer", [f"tokenizer: {exc}"]) from exc


def shards_run_output(config: ShardsConfig, info: TokenizerInfo) -> RunOutput:
    return RunOutput(
        config.output,
        config.output_fingerprint_fields(info.fingerprint),
        owned_globs=(
            f"{SHARD_FILE_PREFIX}-*.parquet",
            DEAD_LETTER_GLOB,
            MANIFEST_FILE,
            f"{MANIFEST_FILE}.tmp",
        ),
    )


def _read_shard_index(staging: str) -> list[ShardEntry]:
    files = [p for p, _ in match_with_sizes(FileSystems.join(staging, f"{SHARD_INDEX_PREFIX}*"))]
    entries: list[ShardEntry] = []
    for path in files:
        with FileSystems.open(path) as fh:
            for line in fh.read().decode("utf-8").splitlines():
                if line.strip():
                    entries.append(ShardEntry.from_json(json.loads(line)))
    if files:
        FileSystems.delete(files)
    return entries


def build_pipeline(
    p: beam.Pipeline,
    files: list[InputFile],
    config: ShardsConfig,
    info: TokenizerInfo,
    staging: str,
) -> None:
    built = (
        p | "ListFiles" >> beam.Create(files) | "BuildShards" >> BuildShards(config, info, staging)
    )
    _ = (
        built["entries"]
        | "EntryJson" >> beam.Map(lambda e: json.dumps(e, sort_keys=True))
        | "WriteShardIndex"
        >> beam.io.WriteToText(
            FileSystems.join(staging, SHARD_INDEX_PREFIX),
            file_name_suffix=".jsonl",
            # No empty file when no shard was written: Beam's S3 upload of an empty object fails.
            skip_if_empty=True,
        )
    )
    _ = built[DEAD_LETTER] | "WriteDeadLetters" >> WriteDeadLetters(staging)


def run_shards(config: ShardsConfig, beam_args: Sequence[str] = ()) -> dict[str, Any]:
    """Run the shards pipeline; returns the stats document (also written as stats.json)."""
    options = pipeline_options(beam_args)
    info = load_tokenizer_info(config)
    output = shards_run_output(config, info)
    manifest_path = output.path(MANIFEST_FILE)
    if output.finished_with_same_config(config.overwrite) and FileSystems.exists(manifest_path):
        LOG.info("%s is already finished with this config; nothing to do", config.output)
        return read_json(output.path(STATS_FILE))
    files, excluded = list_inputs(config)
    output.begin()
    started = time.monotonic()
    p = beam.Pipeline(options=options)
    build_pipeline(p, files, config, info, output.staging)
    counters = run_and_count(p)
    elapsed = time.monotonic() - started
    entries = _read_shard_index(output.staging)
    manifest = build_manifest(info, entries, folder=config.output)
    totals = manifest.totals()
    if totals.rows != counters.get("write.kept", 0):
        raise RuntimeError(
            f"shard index lists {totals.rows} rows but the writers counted "
            f"{counters.get('write.kept', 0)}: the run is inconsistent, rerun it"
        )
    stats = stats_document(
        counters,
        config.stages,
        extra={
            "stage": "shards",
            "format_version": SHARD_FORMAT_VERSION,
            "source": config.source,
            "domain": config.domain,
            "tokenizer_fingerprint": info.fingerprint,
            "input_files": len(files),
            "excluded_files": excluded,
            "documents_written": totals.rows,
            "tokens_written": totals.tokens,
            "bytes_written": totals.bytes,
            "shards": totals.shards,
            "elapsed_s": round(elapsed, 3),
        },
    )
    output.commit({**config.to_json(), "tokenizer_fingerprint": info.fingerprint}, stats)
    # Last of all: consumers read manifest.json, so it appears only once every shard is in
    # place (temp file, then rename).
    write_json_atomic(manifest_path, manifest.to_json())
    return stats


def build_arg_parser() -> argparse.ArgumentParser:
    return stage_parser(
        "mathcorpus shards",
        ShardsConfig,
        "Documents (pool folder, JSONL/Parquet dataset, code tree) -> tokenized Parquet shards "
        "+ manifest.json.",
    )


def summary(config: ShardsConfig, stats: dict[str, Any]) -> str:
    return (
        f"{format_funnel(stats)}\n{stats['shards']} shard(s), {stats['documents_written']} "
        f"documents, {stats['tokens_written']} tokens written to {config.output} (manifest.json)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    return stage_main(
        "mathcorpus shards", build_arg_parser(), ShardsConfig, run_shards, summary, argv
    )


def run(argv: Sequence[str] | None = None) -> int:
    """Beam-example style entry point."""
    return main(argv)


if __name__ == "__main__":
    sys.exit(main())
