"""BuildPool (pipeline/pool/transforms.py) on WARC files written here: pages, drops, faults.

Each run stages every file's pages, keeps the newest capture of each URL and splits the parts
(pipeline/dedup/transforms.py), so the rows checked are the rows a pool run writes.
"""

from __future__ import annotations

import hashlib
import io
import random
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import BeamAssertException, assert_that, equal_to
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pipeline.core.counters import counters_from_beam_result, stats_document
from pipeline.core.dead_letters import DEAD_LETTER, DeadLetter
from pipeline.dedup.transforms import URL_STAGE, decide_and_write
from pipeline.pool.config import PoolConfig
from pipeline.pool.schema import POOL_SCHEMA
from pipeline.pool.transforms import PARTS, POOL_STAGES, BuildPool
from tests.helpers import BEAM_TEST_ARGS, require_shared

PROSE = (
    "The town council met on Tuesday evening to discuss the opening hours of the new public "
    "library, the repairs to the old bridge and the budget for the coming year. "
)
WEATHER_OLD = "Old forecast: rain all week with strong winds along the coast and cold nights. "
# Capture dates of the weather page (WARC-Date), in three captures over two files.
OLDEST = "2023-12-01T08:00:00Z"
MID = "2024-01-15T08:00:00Z"
NEWEST = "2024-03-05T08:00:00Z"
LATEST_EMPTY = "2024-04-01T08:00:00Z"
WEATHER_NEW = "New forecast: sunshine from Monday, light winds and warm afternoons inland. "


def html(body: str) -> bytes:
    return f"<!DOCTYPE html><html><head><title>t</title></head><body>{body}</body></html>".encode()


TEX_PAGE = html(
    f"<p>{PROSE}</p><p>We solve $x^2 - 5x + 6 = 0$ by factoring: the roots are $x = 2$ and "
    "$x = 3$.</p>"
)
MATHML_PAGE = html(
    f"<p>{PROSE}</p><p>The area of a circle is <math><mi>A</mi><mo>=</mo><mi>&#x3C0;</mi>"
    "<msup><mi>r</mi><mn>2</mn></msup></math> for a radius r.</p>"
)
PROSE_PAGE = html(f"<p>{PROSE}</p><p>{PROSE}</p>")
FRENCH_PAGE = html(
    "<p>Le conseil municipal s'est réuni mardi soir pour discuter des horaires d'ouverture de "
    "la nouvelle bibliothèque, des réparations du vieux pont et du budget de l'année prochaine."
    "</p>"
)

# Normalised URLs of the pages that must come out of the default run.
TEX_URL = "https://math.example/algebra/quadratic"
MATHML_URL = "https://math.example/geometry/circle"
PROSE_URL = "https://news.example/library"
WEATHER_URL = "https://news.example/weather"


def url_id(normalized_url: str) -> str:
    """The documented doc_id: blake2b-64 of the normalised URL."""
    return hashlib.blake2b(normalized_url.encode(), digest_size=8).hexdigest()


@dataclass
class Crawl:
    """The WARC files of one test crawl and what was planted where."""

    files: list[str]
    offsets: dict[str, int]
    """Byte offset of each planted record, by a name given here."""

    def path(self, name: str) -> str:
        return next(f for f in self.files if Path(f).name == name)


class Writer:
    """A WARC file being written, noting the byte offset of each record."""

    def __init__(self, path: Path, gzip: bool) -> None:
        self.fh = path.open("wb")
        self.warc = WARCWriter(self.fh, gzip=gzip)
        self.offsets: dict[str, int] = {}

    def response(
        self,
        name: str,
        url: str,
        body: bytes,
        content_type: str = "text/html; charset=utf-8",
        date: str = "2024-03-01T12:00:00Z",
    ) -> None:
        self.offsets[name] = self.fh.tell()
        record = self.warc.create_warc_record(
            url,
            "response",
            payload=io.BytesIO(body),
            http_headers=StatusAndHeaders(
                "200 OK", [("Content-Type", content_type)], protocol="HTTP/1.1"
            ),
            warc_headers_dict={"WARC-Date": date},
        )
        self.warc.write_record(record)

    def close(self) -> None:
        self.fh.close()


def write_crawl(folder: Path) -> Crawl:
    folder.mkdir(parents=True, exist_ok=True)
    offsets: dict[str, int] = {}

    main = Writer(folder / "crawl.warc.gz", gzip=True)
    main.warc.write_record(main.warc.create_warcinfo_record("crawl.warc.gz", {"software": "t"}))
    # Upper-case host, default port and a tracking parameter: normalised away.
    main.response("tex", "https://Math.Example:443/algebra/quadratic?utm_source=feed", TEX_PAGE)
    main.response("mathml", MATHML_URL, MATHML_PAGE)
    main.response("prose", PROSE_URL, PROSE_PAGE)
    main.response("weather_mid", WEATHER_URL, html(f"<p>{WEATHER_OLD * 3}</p>"), date=MID)
    main.response(
        "png", "https://news.example/logo.png", b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png"
    )
    main.response("empty", "https://news.example/empty", b"")
    main.response("no_text", "https://news.example/blank", html("<div></div>"))
    main.response("short", "https://news.example/short", html("<p>Hello there.</p>"))
    main.response("ftp", "ftp://files.example/readme.html", PROSE_PAGE)
    main.response("bad_date", "https://news.example/undated", PROSE_PAGE, date="yesterday")
    main.close()
    offsets.update(main.offsets)

    # Uncompressed, with the newest and the oldest capture of the weather page.
    recrawl = Writer(folder / "recrawl.warc", gzip=False)
    recrawl.response(
        "weather_new",
        "https://NEWS.example/weather#today",
        html(f"<p>{WEATHER_NEW * 3}</p>"),
        date=NEWEST,
    )
    recrawl.response("weather_old", WEATHER_URL, html(f"<p>{WEATHER_OLD * 3}</p>"), date=OLDEST)
    # The latest capture is empty (e.g. a 204): it must not hide the newest page with content.
    recrawl.response("weather_empty", WEATHER_URL, b"", date=LATEST_EMPTY)
    recrawl.close()
    offsets.update(recrawl.offsets)

    # A good page, then a record whose gzip member the file ends inside.
    cut = Writer(folder / "truncated.warc.gz", gzip=True)
    cut.response("before_cut", "https://news.example/before-cut", PROSE_PAGE)
    cut.response("cut", "https://news.example/cut", PROSE_PAGE)
    cut.close()
    offsets.update(cut.offsets)
    data = (folder / "truncated.warc.gz").read_bytes()
    (folder / "truncated.warc.gz").write_bytes(data[: offsets["cut"] + 60])

    rng = random.Random(3)
    (folder / "garbage.warc.gz").write_bytes(bytes(rng.randrange(256) for _ in range(3000)))
    files = [
        str(folder / n)
        for n in ("crawl.warc.gz", "recrawl.warc", "truncated.warc.gz", "garbage.warc.gz")
    ]
    return Crawl([*files, str(folder / "missing.warc.gz")], offsets)


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory) -> Crawl:
    return write_crawl(tmp_path_factory.mktemp("crawl"))


def config(tmp: Path, **kw: Any) -> PoolConfig:
    """The pool config under test: Deduplicate is another transform, so dedup is off."""
    return PoolConfig(output=str(tmp / "out"), inputs=("unused",), dedup=False, **kw)


def run_pool(
    specs: Sequence[str],
    cfg: PoolConfig,
    check_pages: Callable[[list[dict]], None] | None = None,
    check_dead: Callable[[list[DeadLetter]], None] | None = None,
) -> dict[str, int]:
    """Run BuildPool on `specs` (each file staged by the worker that reads it), then the URL
    decision and the per-part split; matchers on the written rows and the dead letters; the
    stage counters."""
    staging = Path(cfg.output) / "_staging"
    with BeamTestPipeline(options=PipelineOptions(BEAM_TEST_ARGS)) as p:
        out = p | beam.Create(list(enumerate(specs))) | BuildPool(cfg, str(staging))
        assert set(out) == {"keys", PARTS, DEAD_LETTER}
        decide_and_write(
            out["keys"], out[PARTS], str(staging), len(specs), (URL_STAGE,), None, cfg.url_dedup
        )
        if check_dead is not None:
            assert_that(out[DEAD_LETTER], check_dead, label="dead")
    rows = [r for f in sorted(staging.glob("pool-*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert len(list(staging.glob("pool-*.parquet"))) == len(specs), "one pool file per input file"
    if check_pages is not None:
        check_pages(rows)
    return counters_from_beam_result(p.result)


def by_url(rows: Iterable[dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for row in rows:
        if row["url"] in out:
            raise BeamAssertException(f"{row['url']} came out twice")
        out[row["url"]] = row
    return out


def check(condition: bool, message: str) -> None:
    if not condition:
        raise BeamAssertException(message)


# --------------------------------------------------------------------------------------------


def test_pages_that_come_out_and_their_columns(crawl: Crawl, tmp_path: Path) -> None:
    def check_pages(rows: list[dict]) -> None:
        pages = by_url(rows)
        check(
            set(pages)
            == {TEX_URL, MATHML_URL, PROSE_URL, WEATHER_URL, "https://news.example/before-cut"},
            f"pages out: {sorted(pages)}",
        )
        for url, row in pages.items():
            check(list(row) == POOL_SCHEMA.names, f"{url}: columns {list(row)}")
            check(row["doc_id"] == url_id(url), f"{url}: doc_id {row['doc_id']}")
            check(row["n_chars"] == len(row["text"]), f"{url}: n_chars")
            check(row["language"] == "en" and 0.5 < row["language_score"] <= 1.0, f"{url}: lang")
            check(row["fetch_time"].utcoffset().total_seconds() == 0, f"{url}: not UTC")
            check(row["extractor"] == "resiliparse" and row["extractor_version"], url)
        tex = pages[TEX_URL]
        check(tex["domain"] == "math.example", tex["domain"])
        check("$x^2 - 5x + 6 = 0$" in tex["text"], tex["text"])
        check(tex["has_math"] and tex["math_formats"] == ["tex_delimiters"], str(tex))
        check(tex["n_math"] == 0, "TeX already in the text is not counted as converted markup")
        check(Path(tex["warc_file"]).name == "crawl.warc.gz", tex["warc_file"])
        check(tex["warc_offset"] == crawl.offsets["tex"], f"offset {tex['warc_offset']}")
        check(tex["fetch_time"] == datetime(2024, 3, 1, 12, tzinfo=UTC), str(tex["fetch_time"]))
        mathml = pages[MATHML_URL]
        check("$A=\\pi r^{2}$" in mathml["text"], mathml["text"])
        check(mathml["math_formats"] == ["mathml"] and mathml["n_math"] == 1, str(mathml))
        prose = pages[PROSE_URL]
        check(not prose["has_math"] and prose["math_formats"] == [], str(prose))
        check(prose["text"].startswith("The town council met"), prose["text"])
        check(prose["domain"] == "news.example" and prose["encoding"] == "utf-8", str(prose))

    counters = run_pool(crawl.files, config(tmp_path), check_pages=check_pages)
    stats = stats_document(counters, (*POOL_STAGES, URL_STAGE))
    assert stats["all_balanced"], stats["stages"]
    stages = stats["stages"]
    assert stages["files"]["in"] == len(crawl.files)
    assert stages["read"]["dropped"] == {"empty_payload": 2, "not_html": 1, "not_response": 1}
    assert stages["url_dedup"]["dropped"] == {"duplicate_url": 2}
    assert stages["extract"]["dropped"] == {"empty_text": 1, "too_short": 1}
    assert stages["extract"]["notes"]["pages_with_math"] == 2
    # URL dedup decides among extracted pages: the two older weather captures leave there.
    assert stages["language"]["kept"] == 7
    assert stages["url_dedup"]["kept"] == 5


def test_newest_capture_of_a_url_is_kept(crawl: Crawl, tmp_path: Path) -> None:
    def check_pages(rows: list[dict]) -> None:
        weather = by_url(rows)[WEATHER_URL]
        check(weather["fetch_time"] == datetime(2024, 3, 5, 8, tzinfo=UTC), str(weather))
        check(weather["text"].startswith("New forecast"), weather["text"])
        check(Path(weather["warc_file"]).name == "recrawl.warc", weather["warc_file"])
        check(weather["warc_offset"] == crawl.offsets["weather_new"], str(weather["warc_offset"]))

    specs = [crawl.path("crawl.warc.gz"), crawl.path("recrawl.warc")]
    counters = run_pool(specs, config(tmp_path), check_pages=check_pages)
    assert counters["url_dedup.dropped.duplicate_url"] == 2


def test_url_dedup_off_keeps_every_capture(crawl: Crawl, tmp_path: Path) -> None:
    def check_pages(rows: list[dict]) -> None:
        weather = sorted(
            (r["fetch_time"], r["doc_id"], r["text"][:12]) for r in rows if r["url"] == WEATHER_URL
        )
        expected = [
            (datetime(2023, 12, 1, 8, tzinfo=UTC), url_id(WEATHER_URL), "Old forecast"),
            (datetime(2024, 1, 15, 8, tzinfo=UTC), url_id(WEATHER_URL), "Old forecast"),
            (datetime(2024, 3, 5, 8, tzinfo=UTC), url_id(WEATHER_URL), "New forecast"),
        ]
        check(weather == expected, str(weather))

    specs = [crawl.path("crawl.warc.gz"), crawl.path("recrawl.warc")]
    counters = run_pool(specs, config(tmp_path, url_dedup=False), check_pages=check_pages)
    assert counters["url_dedup.in"] == counters["url_dedup.kept"]
    assert "url_dedup.dropped.duplicate_url" not in counters


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/crawl/unreachable.warc.gz"


def test_faults_become_dead_letters_and_the_run_goes_on(crawl: Crawl, tmp_path: Path) -> None:
    unreachable = closed_port_url()
    specs = [*crawl.files, unreachable]

    def check_dead(letters: list[DeadLetter]) -> None:
        got = sorted(
            (d.stage, d.reason, Path(d.source).name, d.offset, d.url, d.extra.get("scope", ""))
            for d in letters
        )
        expected = sorted(
            [
                ("files", "open_failed", "missing.warc.gz", -1, "", ""),
                ("files", "fetch_failed", "unreachable.warc.gz", -1, "", ""),
                (
                    "read",
                    "bad_date",
                    "crawl.warc.gz",
                    crawl.offsets["bad_date"],
                    "https://news.example/undated",
                    "record",
                ),
                # Cut inside the record's WARC headers: its URL was never read.
                ("read", "truncated_gzip", "truncated.warc.gz", crawl.offsets["cut"], "", "file"),
                # Random bytes: no WARC or ARC header at the start of the file.
                ("read", "not_warc", "garbage.warc.gz", 0, "", "file"),
                (
                    "url",
                    "invalid_url",
                    "crawl.warc.gz",
                    crawl.offsets["ftp"],
                    "ftp://files.example/readme.html",
                    "",
                ),
            ]
        )
        check(got == expected, f"\n got {got}\nwant {expected}")

    cfg = config(tmp_path, fetch_attempts=1, fetch_timeout_s=5.0)
    counters = run_pool(specs, cfg, check_dead=check_dead)
    # The page before the cut is kept: a fault ends its file, not the run.
    assert counters["files.in"] == len(specs)
    assert counters["files.note.ended_by_fault"] == 2
    assert counters["url_dedup.kept"] == 5


def test_a_file_of_garbage_alone_gives_one_dead_letter_and_no_page(tmp_path: Path) -> None:
    # An HTTP request and binary noise where a WARC header should be.
    path = tmp_path / "noise.warc"
    path.write_bytes(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(range(256)) * 4)
    counters = run_pool(
        [str(path)],
        config(tmp_path),
        check_pages=equal_to([]),
        check_dead=lambda letters: check(
            [(d.stage, d.reason, Path(d.source).name, d.offset, d.extra["scope"]) for d in letters]
            == [("read", "not_warc", "noise.warc", 0, "file")],
            str(letters),
        ),
    )
    assert counters["files.kept"] == 1 and counters["files.note.ended_by_fault"] == 1


def test_language_allow_list_drops_other_languages(tmp_path: Path) -> None:
    writer = Writer(tmp_path / "mixed.warc.gz", gzip=True)
    writer.response("en", PROSE_URL, PROSE_PAGE)
    writer.response("fr", "https://nouvelles.example/bibliotheque", FRENCH_PAGE)
    writer.close()
    specs = [str(tmp_path / "mixed.warc.gz")]

    only_en = run_pool(
        specs,
        config(tmp_path, languages=("en",)),
        check_pages=lambda rows: check([r["url"] for r in rows] == [PROSE_URL], str(rows)),
    )
    assert only_en["language.dropped.language_not_allowed"] == 1

    def all_languages(rows: list[dict]) -> None:
        langs = {r["url"]: r["language"] for r in rows}
        check(
            langs == {PROSE_URL: "en", "https://nouvelles.example/bibliotheque": "fr"}, str(langs)
        )

    every = run_pool(specs, config(tmp_path), check_pages=all_languages)
    assert every["language.kept"] == 2


def test_real_common_crawl_file(tmp_path: Path) -> None:
    """A real Common Crawl WARC (warcinfo, request/response/metadata triples)."""
    path = require_shared("warc", "jwarc", "cc.warc.gz")

    def check_pages(rows: list[dict]) -> None:
        (row,) = rows
        check(row["url"] == "http://commoncrawl.org/", row["url"])
        check(row["doc_id"] == url_id(row["url"]) and row["domain"] == "commoncrawl.org", str(row))
        check(row["fetch_time"] == datetime(2019, 12, 10, 10, 0, 1, tzinfo=UTC), str(row))
        check((Path(row["warc_file"]).name, row["warc_offset"]) == ("cc.warc.gz", 0), str(row))
        # The main content only: the site's menus and footer are left out.
        check("open repository of web crawl data" in row["text"], row["text"])
        check(not row["has_math"] and row["language"] == "en", str(row))

    counters = run_pool(
        [str(path)], config(tmp_path), check_pages=check_pages, check_dead=equal_to([])
    )
    assert counters["read.kept"] == 1 and counters["language.kept"] == 1
