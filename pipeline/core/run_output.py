"""Atomic, restartable run outputs on any Beam file system (local, gs://, s3://).

A run writes into `<output>/_staging/` and, only after the pipeline succeeded, renames its files
into `<output>/`, then writes `config.json` and finally `stats.json`. `stats.json` is the
completion marker: an output folder with it is finished; one without it is a killed run whose
leftovers are removed before the rerun. Rerunning a finished output with the same config skips
the work; with a different config it stops with a clear error unless `overwrite` is set.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from apache_beam.io.filesystems import FileSystems

from pipeline.core.files import delete_tree, match_files

LOG = logging.getLogger("mathcorpus.run_output")
STATS_FILE = "stats.json"
CONFIG_FILE = "config.json"
STAGING_DIR = "_staging"


class OutputConflict(RuntimeError):
    """A finished output exists and was written with another config."""


def config_fingerprint(fields: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of the config fields that decide the output."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def read_json(path: str) -> Any:
    with FileSystems.open(path) as fh:
        return json.loads(fh.read().decode("utf-8"))


def write_json_atomic(path: str, data: Any) -> None:
    """Write JSON to `path.tmp`, then rename it over `path` (atomic on local file systems)."""
    tmp = path + ".tmp"
    with FileSystems.create(tmp) as fh:
        fh.write(json.dumps(data, indent=2, sort_keys=False, default=str).encode("utf-8"))
        fh.write(b"\n")
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([tmp], [path])


def _delete_tree(path: str) -> None:
    delete_tree(path)


class RunOutput:
    """The output folder of one stage run: staging, completion check, atomic commit."""

    def __init__(
        self, output_dir: str, fingerprint_fields: Mapping[str, Any], owned_globs: Iterable[str]
    ) -> None:
        """`owned_globs`: patterns (relative to the folder) of the files a run of this stage
        writes, removed before a rerun or an overwrite (e.g. `pool-*.parquet`)."""
        self.dir = output_dir.rstrip("/")
        self.fingerprint = config_fingerprint(fingerprint_fields)
        self.owned_globs = tuple(owned_globs)
        self.staging = self.path(STAGING_DIR)

    def path(self, *parts: str) -> str:
        return FileSystems.join(self.dir, *parts)

    def is_complete(self) -> bool:
        return FileSystems.exists(self.path(STATS_FILE))

    def finished_with_same_config(self, overwrite: bool) -> bool:
        """True when a finished output with this config exists (the caller skips the run).

        Raises OutputConflict when a finished output has another config and overwrite is off.
        """
        if not self.is_complete():
            return False
        previous = None
        if FileSystems.exists(self.path(CONFIG_FILE)):
            previous = read_json(self.path(CONFIG_FILE)).get("fingerprint")
        if previous == self.fingerprint:
            return True
        if not overwrite:
            raise OutputConflict(
                f"{self.dir} already holds a finished run with a different config "
                f"(fingerprint {previous} != {self.fingerprint}); choose another --output "
                "or pass --overwrite to replace it"
            )
        return False

    def finished_stats(self, overwrite: bool) -> dict[str, Any] | None:
        """The stats of a finished output with this config (the caller skips the run), else
        None. Raises OutputConflict as `finished_with_same_config` does."""
        if not self.finished_with_same_config(overwrite):
            return None
        LOG.info("%s is already finished with this config; nothing to do", self.dir)
        return read_json(self.path(STATS_FILE))

    def begin(self) -> None:
        """Remove a killed run's leftovers and the previous outputs; create an empty staging."""
        _delete_tree(self.staging)
        self._remove_owned()
        for name in (STATS_FILE, CONFIG_FILE):
            if FileSystems.exists(self.path(name)):
                FileSystems.delete([self.path(name)])
        FileSystems.mkdirs(self.staging)

    def _remove_owned(self) -> None:
        doomed: list[str] = []
        for pattern in self.owned_globs:
            doomed.extend(match_files(self.path(pattern)))
        if doomed:
            FileSystems.delete(doomed)

    def commit(self, config_json: Mapping[str, Any], stats: Mapping[str, Any]) -> None:
        """Move staged files into the folder, then write config.json, then stats.json (last)."""
        staged = match_files(FileSystems.join(self.staging, "**"))
        prefix = self.staging.rstrip("/") + "/"
        sources: list[str] = []
        targets: list[str] = []
        for src in staged:
            relative = src[len(prefix) :] if src.startswith(prefix) else src.rsplit("/", 1)[-1]
            target = self.path(relative)
            parent = target.rsplit("/", 1)[0]
            if not FileSystems.exists(parent):
                FileSystems.mkdirs(parent)
            sources.append(src)
            targets.append(target)
        if sources:
            FileSystems.rename(sources, targets)
        _delete_tree(self.staging)
        write_json_atomic(
            self.path(CONFIG_FILE), {"fingerprint": self.fingerprint, "config": dict(config_json)}
        )
        write_json_atomic(self.path(STATS_FILE), dict(stats))
