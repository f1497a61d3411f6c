"""The manifest: the list of shards a consumer reads, with counts and checksums (FORMAT.md,
"Manifest").

Manifests of several runs merge only when their tokenizers are the same; `verify` re-reads every
shard and names the broken ones (docs/tokenizer.md). No Beam and no torch: the trainer loads
manifests on GPU hosts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from tokenizer import storage
from tokenizer.loading import TokenizerInfo
from tokenizer.shard_format import DOMAINS, ShardFormatError, count_shard

MANIFEST_SCHEMA_VERSION = 1
MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = "mathcorpus.manifest"
# Checksums are computed in 8 MiB reads: few calls, bounded memory.
HASH_CHUNK_BYTES = 8 << 20


class ManifestError(ValueError):
    """A manifest cannot be read, merged or trusted; the message says which file and why."""


@dataclass(frozen=True)
class ShardEntry:
    """One shard as listed in a manifest."""

    path: str
    """Relative to the manifest's folder (or an absolute path / URL on another store)."""
    rows: int
    """Documents in the shard."""
    tokens: int
    """Tokens in the shard (sum of `n_tokens`; no bos/eos)."""
    bytes: int
    """File size in bytes."""
    sha256: str
    """sha256 (hex) of the file."""
    source: str
    """Source name (e.g. `openwebmath`)."""
    domain: str
    """`math`, `code` or `text`."""

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "rows": self.rows,
            "tokens": self.tokens,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "source": self.source,
            "domain": self.domain,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShardEntry:
        return cls(
            path=str(data["path"]),
            rows=int(data["rows"]),
            tokens=int(data["tokens"]),
            bytes=int(data["bytes"]),
            sha256=str(data["sha256"]),
            source=str(data["source"]),
            domain=str(data["domain"]),
        )


@dataclass(frozen=True)
class Totals:
    """Sums over a group of shards."""

    shards: int = 0
    rows: int = 0
    tokens: int = 0
    bytes: int = 0

    def add(self, entry: ShardEntry) -> Totals:
        return Totals(
            shards=self.shards + 1,
            rows=self.rows + entry.rows,
            tokens=self.tokens + entry.tokens,
            bytes=self.bytes + entry.bytes,
        )

    def to_json(self) -> dict[str, int]:
        return {
            "shards": self.shards,
            "rows": self.rows,
            "tokens": self.tokens,
            "bytes": self.bytes,
        }


@dataclass(frozen=True)
class Manifest:
    """A manifest in memory. `folder` is where it lives: shard paths are relative to it."""

    tokenizer: TokenizerInfo
    shards: tuple[ShardEntry, ...]
    folder: str = ""
    """Folder of manifest.json (absolute); empty for one not yet placed anywhere."""
    sources: dict[str, str] = field(default_factory=dict)
    """source name -> domain (every source of the shards)."""

    def shard_path(self, entry: ShardEntry) -> str:
        """Absolute path (or URL) of a shard."""
        return storage.resolve_relative(self.folder, entry.path)

    def totals(self) -> Totals:
        total = Totals()
        for entry in self.shards:
            total = total.add(entry)
        return total

    def totals_by(self, key: str) -> dict[str, Totals]:
        """Totals per `source` or per `domain`, sorted by name."""
        groups: dict[str, Totals] = {}
        for entry in self.shards:
            name = getattr(entry, key)
            groups[name] = groups.get(name, Totals()).add(entry)
        return dict(sorted(groups.items()))

    def to_json(self) -> dict[str, Any]:
        by_source = {
            name: {"domain": self.sources.get(name, ""), **t.to_json()}
            for name, t in self.totals_by("source").items()
        }
        return {
            "format": MANIFEST_FORMAT,
            "schema_version": MANIFEST_SCHEMA_VERSION,
            "tokenizer": self.tokenizer.to_json(),
            "shards": [e.to_json() for e in self.shards],
            "totals": {
                **self.totals().to_json(),
                "by_source": by_source,
                "by_domain": {k: t.to_json() for k, t in self.totals_by("domain").items()},
            },
        }


def build_manifest(
    tokenizer: TokenizerInfo, shards: Iterable[ShardEntry], folder: str = ""
) -> Manifest:
    """A manifest of `shards` (sorted by path), checking that each source has one domain."""
    entries = tuple(sorted(shards, key=lambda e: e.path))
    sources: dict[str, str] = {}
    problems: list[str] = []
    paths = [e.path for e in entries]
    duplicates = sorted({p for p in paths if paths.count(p) > 1})
    if duplicates:
        problems.append(f"shards listed more than once: {duplicates}")
    for entry in entries:
        if entry.domain not in DOMAINS:
            problems.append(f"{entry.path}: domain {entry.domain!r} is not one of {DOMAINS}")
        known = sources.setdefault(entry.source, entry.domain)
        if known != entry.domain:
            problems.append(
                f"source {entry.source!r} appears with domains {known!r} and {entry.domain!r}; "
                "give one of the runs another --source name"
            )
    if problems:
        raise ManifestError("inconsistent manifest:\n" + "\n".join(f"  - {p}" for p in problems))
    folder = storage.normalize(folder) if folder else ""
    return Manifest(tokenizer, entries, folder, dict(sorted(sources.items())))


def manifest_file(path: str) -> str:
    """`path` itself when it names a .json file, else `<path>/manifest.json`."""
    return path if path.endswith(".json") else storage.join(path, MANIFEST_FILE)


def manifest_from_json(data: Any, folder: str, origin: str) -> Manifest:
    """Parse a manifest document (checks format, version and field types)."""
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise ManifestError(f"{origin}: not a mathcorpus manifest (format != {MANIFEST_FORMAT!r})")
    version = data.get("schema_version")
    if version != MANIFEST_SCHEMA_VERSION:
        raise ManifestError(
            f"{origin}: manifest schema version {version!r}, this reader reads "
            f"{MANIFEST_SCHEMA_VERSION}"
        )
    try:
        info = TokenizerInfo.from_json(data["tokenizer"])
        entries = [ShardEntry.from_json(item) for item in data["shards"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ManifestError(f"{origin}: malformed manifest: {exc!r}") from exc
    try:
        return build_manifest(info, entries, folder)
    except ManifestError as exc:
        raise ManifestError(f"{origin}: {exc}") from exc


def load_manifest(path: str) -> Manifest:
    """Load `manifest.json` (or the manifest in folder `path`; local, gs:// or s3://)."""
    file = manifest_file(path)
    try:
        with storage.open_input(file) as fh:
            data = json.loads(fh.read().decode("utf-8"))
    except FileNotFoundError as exc:
        raise ManifestError(f"{file}: no manifest there (has the run finished?)") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{file}: cannot read the manifest: {exc}") from exc
    return manifest_from_json(data, storage.parent(file), file)


def write_manifest(manifest: Manifest, path: str) -> str:
    """Write the manifest atomically (temp file, then rename) to `path` (a .json file or a
    folder); returns the file written."""
    file = manifest_file(path)
    tmp = file + ".tmp"
    text = json.dumps(manifest.to_json(), indent=2, ensure_ascii=False) + "\n"
    with storage.open_output(tmp) as fh:
        fh.write(text.encode("utf-8"))
    storage.replace(tmp, file)
    return file


def _describe(manifest: Manifest, label: str) -> str:
    t = manifest.tokenizer
    return f"{label} (tokenizer {t.fingerprint[:12]}..., vocab {t.vocab_size})"


def merge_manifests(
    manifests: Sequence[Manifest], folder: str | None, labels: Sequence[str] | None = None
) -> Manifest:
    """One manifest over the shards of all `manifests`, with paths relative to `folder` (None:
    absolute paths, for a combination that stays in memory).

    Refuses manifests made with different tokenizers (their token ids mean different things)
    and a shard file listed twice.
    """
    if not manifests:
        raise ManifestError("nothing to merge: give at least one manifest")
    names = list(labels) if labels is not None else [m.folder or "?" for m in manifests]
    first = manifests[0]
    for manifest, label in zip(manifests[1:], names[1:], strict=True):
        if manifest.tokenizer.fingerprint != first.tokenizer.fingerprint:
            raise ManifestError(
                "cannot merge manifests made with different tokenizers: "
                f"{_describe(first, names[0])} and {_describe(manifest, label)}. Token ids of "
                "one tokenizer mean nothing to another: re-run `mathcorpus shards` for one of "
                "them with the other's --tokenizer."
            )
    target = storage.normalize(folder) if folder is not None else None
    entries: list[ShardEntry] = []
    seen: dict[str, str] = {}
    for manifest, label in zip(manifests, names, strict=True):
        for entry in manifest.shards:
            absolute = manifest.shard_path(entry)
            if absolute in seen:
                raise ManifestError(
                    f"shard {absolute} is listed by both {seen[absolute]} and {label}"
                )
            seen[absolute] = label
            path = storage.relative_to(absolute, target) if target is not None else absolute
            entries.append(replace(entry, path=path))
    return build_manifest(first.tokenizer, entries, target or "")


def load_manifests(paths: Sequence[str]) -> Manifest:
    """Several manifests read as one (the trainer's way to take several runs): the same
    tokenizer is required; shard paths become absolute."""
    return merge_manifests([load_manifest(p) for p in paths], None, list(paths))


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with storage.open_input(path) as fh:
        while chunk := fh.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class VerifyReport:
    """The outcome of `verify_manifest`: every problem found, per shard."""

    manifest: str
    shards_checked: int = 0
    problems: list[str] = field(default_factory=list)
    broken_shards: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, shard: str | None, message: str) -> None:
        self.problems.append(f"{shard}: {message}" if shard else message)
        if shard and shard not in self.broken_shards:
            self.broken_shards.append(shard)


def _verify_shard(manifest: Manifest, entry: ShardEntry, report: VerifyReport) -> None:
    path = manifest.shard_path(entry)
    name = entry.path
    size = storage.file_size(path)
    if size is None:
        report.fail(name, f"file is missing ({path})")
        return
    if size != entry.bytes:
        report.fail(name, f"size {size} bytes, manifest says {entry.bytes} (truncated or altered)")
    digest = file_sha256(path)
    if digest != entry.sha256:
        report.fail(name, f"sha256 {digest[:16]}... != manifest {entry.sha256[:16]}... (altered)")
    try:
        counted = count_shard(path)
    except (ShardFormatError, OSError, ValueError) as exc:
        report.fail(name, f"unreadable: {exc}")
        return
    if counted.rows != entry.rows:
        report.fail(name, f"{counted.rows} rows in the file, manifest says {entry.rows}")
    if counted.tokens != entry.tokens:
        report.fail(name, f"{counted.tokens} tokens in the file, manifest says {entry.tokens}")
    if counted.n_tokens_mismatches:
        report.fail(name, f"{counted.n_tokens_mismatches} rows whose n_tokens != token count")
    meta = counted.meta
    if meta.tokenizer_fingerprint != manifest.tokenizer.fingerprint:
        report.fail(name, "written with another tokenizer (fingerprint differs from manifest)")
    if (meta.source, meta.domain) != (entry.source, entry.domain):
        report.fail(
            name,
            f"file says source/domain {meta.source}/{meta.domain}, "
            f"manifest says {entry.source}/{entry.domain}",
        )
    if counted.max_token_id >= manifest.tokenizer.vocab_size:
        report.fail(
            name,
            f"token id {counted.max_token_id} >= vocab size {manifest.tokenizer.vocab_size}",
        )


def verify_manifest(path: str) -> VerifyReport:
    """Check every shard of the manifest at `path`: present, size, sha256, readable, rows and
    tokens re-counted from the Parquet data, tokenizer, source and domain; and the totals."""
    file = manifest_file(path)
    report = VerifyReport(file)
    try:
        with storage.open_input(file) as fh:
            data = json.loads(fh.read().decode("utf-8"))
        manifest = manifest_from_json(data, storage.parent(file), file)
    except FileNotFoundError:
        report.fail(None, f"{file}: no manifest there")
        return report
    except (ManifestError, OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        report.fail(None, f"{file}: {exc}")
        return report
    for entry in manifest.shards:
        _verify_shard(manifest, entry, report)
        report.shards_checked += 1
    written = data.get("totals", {})
    expected = manifest.to_json()["totals"]
    if written != expected:
        report.fail(None, "totals do not match the sum of the shards listed")
    return report
