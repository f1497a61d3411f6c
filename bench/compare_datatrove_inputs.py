"""The shared input of bench/compare_datatrove.py: one folder both tools read.

- `pages.warc.gz`: every labelled page of ../shared/data/html (labels.csv), one gzip member per
  record, each an HTTP 200 `text/html` response with a made-up but stable URL derived from the
  page's path (`html/distill/ctc.html` -> `https://distill.example/ctc.html`; `.html.gz` pages are
  decompressed first and lose the `.gz`). The records also carry `WARC-Identified-Payload-Type:
  text/html`, as Common Crawl's do; without it DataTrove's WarcReader sniffs the payload with
  libmagic instead.
- the real WARC/ARC files of ../shared/data/warc, copied under flat names
  (`warcio__example.warc.gz`), malformed ones included unless the caller excludes them.

Only the standard library and warcio (present in both virtual environments) are imported, so
the DataTrove side can build the same records if it ever needs to.
"""

from __future__ import annotations

import csv
import gzip
import io
import shutil
from dataclasses import dataclass
from pathlib import Path

# A fixed capture date: the WARC bytes, hence both tools' input, are the same on every run.
WARC_DATE = "2024-03-01T00:00:00Z"
PAGES_WARC_NAME = "pages.warc.gz"


@dataclass(frozen=True)
class LabelledPage:
    """One page of labels.csv as it appears in pages.warc.gz."""

    filename: str  # relative to ../shared/data, as in labels.csv
    label: str  # "math" or "not-math"
    url: str  # WARC-Target-URI of its record
    html: bytes  # the page source (decompressed), the record's HTTP payload


def page_url(filename: str) -> str:
    """Stable made-up URL of a labelled page: the source folder becomes the host."""
    parts = Path(filename).parts
    if parts[0] == "html":
        parts = parts[1:]
    path = "/".join(parts[1:])
    if path.endswith(".gz"):
        path = path[: -len(".gz")]
    return f"https://{parts[0].replace('_', '-')}.example/{path}"


def read_labelled_pages(shared_data: Path) -> list[LabelledPage]:
    """Every row of html/labels.csv with its page bytes, in the file's order."""
    pages = []
    with (shared_data / "html" / "labels.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            data = (shared_data / row["filename"]).read_bytes()
            if row["filename"].endswith(".gz"):
                data = gzip.decompress(data)
            pages.append(
                LabelledPage(row["filename"], row["label"], page_url(row["filename"]), data)
            )
    urls = [p.url for p in pages]
    if len(set(urls)) != len(urls):
        raise ValueError("two labelled pages map to the same URL; page_url must stay injective")
    return pages


def write_pages_warc(pages: list[LabelledPage], path: Path) -> None:
    """One gzip WARC of HTTP 200 text/html response records, in `pages` order."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with path.open("wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for page in pages:
            http_headers = StatusAndHeaders(
                "200 OK",
                [
                    ("Content-Type", "text/html; charset=utf-8"),
                    ("Content-Length", str(len(page.html))),
                ],
                protocol="HTTP/1.1",
            )
            record = writer.create_warc_record(
                page.url,
                "response",
                payload=io.BytesIO(page.html),
                http_headers=http_headers,
                warc_headers_dict={
                    "WARC-Date": WARC_DATE,
                    "WARC-Identified-Payload-Type": "text/html",
                },
            )
            writer.write_record(record)


def real_warc_files(shared_data: Path) -> list[Path]:
    """The WARC/ARC files under ../shared/data/warc (PROVENANCE.md files excluded), sorted."""
    root = shared_data / "warc"
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".md"))


def flat_name(path: Path, shared_data: Path) -> str:
    """`warc/warcio/example.warc.gz` -> `warcio__example.warc.gz` (one folder, unique names)."""
    return "__".join(path.relative_to(shared_data / "warc").parts)


def build_input_folder(
    shared_data: Path, folder: Path, exclude: frozenset[str] = frozenset()
) -> tuple[list[LabelledPage], list[Path]]:
    """Write pages.warc.gz and copy the real WARCs (minus `exclude`, flat names) into `folder`.

    Returns the labelled pages and the input files, pages.warc.gz first.
    """
    folder.mkdir(parents=True, exist_ok=True)
    pages = read_labelled_pages(shared_data)
    files = [folder / PAGES_WARC_NAME]
    write_pages_warc(pages, files[0])
    for source in real_warc_files(shared_data):
        name = flat_name(source, shared_data)
        if name in exclude:
            continue
        target = folder / name
        shutil.copyfile(source, target)
        files.append(target)
    return pages, files
