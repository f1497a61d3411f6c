"""The built-in sample crawl: WARC files our own code generates, for `make demo` and tests.

Math sites in five markups, a forum whose boards are partly math, math in forum words for the
mining loop to discover, duplicates, the non-HTML records and faults of a real crawl, a positive
seed and a small benchmark (docs/architecture.md). `python -m mathcorpus.sample_crawl OUT_DIR`.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from mathcorpus.sample_pages import (
    MATH_PROSE,
    MATHJAX_HEAD,
    MathItem,
    forum_math_thread,
    math_paragraphs,
    page_html,
    prose_paragraph,
    render_math_text,
    seed_page_text,
)

CRAWL_START = datetime(2024, 3, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Section:
    """A URL path prefix of a site and what its pages are about."""

    prefix: str
    """Path prefix such as `/questions` (no trailing slash)."""
    topic: str
    """`math` or a key of sample_pages.TOPICS."""
    pages: int
    """Number of pages generated under the prefix."""
    formula_share: float = 0.0
    """`forum_math` only: share of threads with a tutor's reply written in TeX."""


@dataclass(frozen=True)
class Site:
    domain: str
    name: str
    sections: tuple[Section, ...]
    math_style: str = "tex_dollar"
    """How formulas are written on this site's math pages (sample_pages.MATH_STYLES)."""


def default_sites(scale: float) -> list[Site]:
    """The sites of the sample crawl; `scale` multiplies every page count."""

    def n(pages: int) -> int:
        return max(2, round(pages * scale))

    topic_sites = [
        ("dailyplate.example", "Daily Plate", "cooking", "/recipes"),
        ("wanderlog.example", "Wanderlog", "travel", "/trips"),
        ("matchday.example", "Matchday", "football", "/reports"),
        ("gadgetzone.example", "Gadget Zone", "gadgets", "/reviews"),
        ("greenthumb.example", "Green Thumb", "gardening", "/guides"),
        ("reelreview.example", "Reel Review", "cinema", "/films"),
    ]
    sites = [
        Site("mathqa.example", "MathQA", (Section("/questions", "math", n(160)),), "tex_dollar"),
        Site(
            "calculus-notes.example",
            "Calculus Notes",
            (Section("/lectures", "math", n(70)), Section("/exercises", "math", n(50))),
            "mathjax_script",
        ),
        Site("mathwiki.example", "MathWiki", (Section("/wiki", "math", n(80)),), "mathml"),
        Site("katex-blog.example", "Proof Blog", (Section("/posts", "math", n(50)),), "katex"),
        Site(
            "olympiad-corner.example",
            "Olympiad Corner",
            (Section("/problems", "math", n(60)),),
            "tex_image",
        ),
        Site(
            "talk.example",
            "Talk Forum",
            (
                Section("/t/algebra", "forum_math", n(40)),
                Section("/t/calculus", "forum_math", n(30)),
                Section("/t/cooking", "cooking", n(60)),
                Section("/t/football", "football", n(60)),
                Section("/t/gadgets", "gadgets", n(60)),
                Section("/t/cinema", "cinema", n(60)),
            ),
        ),
    ]
    sites.append(
        Site(
            "homework-help.example",
            "Homework Help",
            (Section("/ask", "forum_math", n(100), formula_share=0.6),),
        )
    )
    for domain, name, topic, prefix in topic_sites:
        sites.append(Site(domain, name, (Section(prefix, topic, n(150)),)))
    return sites


@dataclass
class Capture:
    """One HTTP response to write: URL, capture time, headers and body."""

    url: str
    when: datetime
    body: bytes
    content_type: str | None = "text/html; charset=utf-8"
    status: str = "200 OK"
    extra_headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class SampleCrawl:
    """What `write_sample_crawl` wrote (paths) and the truth about it (for tests and the demo)."""

    warc_files: list[str]
    benchmark_file: str
    pages: int
    math_urls: list[str]
    """Pages of formula problem sets (every formula in markup)."""
    planted_benchmark_ids: list[str]
    forum_math_urls: list[str] = field(default_factory=list)
    """Math threads in forum words (some with one TeX reply): math, but not in `math_urls`."""
    seed_positives: str = ""
    """JSONL (`id`, `url`, `text`) of LaTeX problem sets not in the crawl: a positive seed."""


def _slug(rng: random.Random) -> str:
    words = ("proof", "notes", "guide", "question", "idea", "review", "story", "tips", "update")
    return "-".join(rng.sample(words, 3))


def _math_body(items: list[MathItem], style: str, rng: random.Random) -> str:
    prose = list(rng.sample(range(10), 3))
    parts = [f"<p>{MATH_PROSE[prose[0]]}</p>"]
    for i, item in enumerate(items):
        parts.append(f"<h2>Problem {i + 1}</h2><p>{render_math_text(item.question, style)}</p>")
        parts.append(f"<h3>Solution</h3><p>{render_math_text(item.answer, style)}</p>")
        parts.append(f"<p>{MATH_PROSE[prose[(i + 1) % 3]]}</p>")
    return "".join(parts)


def _topic_body(topic: str, rng: random.Random) -> str:
    paragraphs = [prose_paragraph(rng, topic, rng.randint(3, 6)) for _ in range(rng.randint(3, 6))]
    return "".join(f"<p>{p}</p>" for p in paragraphs)


# The demo benchmark's word problems (GSM8K-like). Their wording appears nowhere in the page
# generators, so only the planted items can match a page under the 10-gram rule; problems built
# from the page templates would share 10-grams with hundreds of pages. No stretch of 10 words
# without a number is shared by two items either (every (name, goods) pair is used once), so
# the contamination report names exactly the planted items.
# 16 names x 3 templates: no two of the 40 items share both a template and a name.
_BENCH_NAMES = (
    "Ilsabet",
    "Quorvin",
    "Maelis",
    "Tobiah",
    "Renske",
    "Oduya",
    "Perpetua",
    "Zygmunt",
    "Anouk",
    "Bertrand",
    "Cosima",
    "Dagfinn",
    "Eulalie",
    "Florian",
    "Gwendolyn",
    "Hjalmar",
)
_BENCH_GOODS = ("quince jars", "brass lanterns", "felt slippers", "walnut crates", "tin kettles")
_BENCH_TEMPLATES = (
    (
        "{name} packs {a} {goods} into every wagon and sends {b} wagons to the harbour market "
        "each week. After {c} weeks, how many {goods} has {name} sent to the harbour?",
        "Each week {name} sends {a} * {b} = {ab} {goods}. Over {c} weeks that is {ab} * {c} = "
        "{abc} {goods}. #### {abc}",
    ),
    (
        "The lighthouse keeper {name} trims {a} wicks on calm nights and {b} wicks on stormy "
        "nights. A month had {c} calm nights and {d} stormy nights. How many wicks were trimmed?",
        "Calm nights need {a} * {c} = {ac} wicks and stormy nights need {b} * {d} = {bd} wicks, "
        "so {name} trimmed {ac} + {bd} = {total} wicks. #### {total}",
    ),
    (
        "{name} had {big} {goods} in the cellar, sold {a} of them to a travelling merchant on "
        "day {d} and then split the rest evenly among {c} cousins. How many {goods} did each "
        "cousin get?",
        "After the sale {big} - {a} = {rest} {goods} were left; shared among {c} cousins each "
        "got {rest} / {c} = {share}. #### {share}",
    ),
)


def benchmark_items(seed: int, count: int) -> list[dict[str, str]]:
    """The demo's own benchmark: generated word problems in GSM8K-like JSONL (question,
    answer); see _BENCH_TEMPLATES for why they have their own wording."""
    rng = random.Random(seed + 7919)
    items = []
    for i in range(count):
        question, answer = _BENCH_TEMPLATES[i % len(_BENCH_TEMPLATES)]
        # Wide ranges: two items of one template share a 10-gram only if their numbers agree.
        a, b, c, d = (rng.randint(3, 199) for _ in range(4))
        share = rng.randint(4, 99)
        values = {
            "name": _BENCH_NAMES[i % len(_BENCH_NAMES)],
            "goods": _BENCH_GOODS[(i // len(_BENCH_NAMES)) % len(_BENCH_GOODS)],
            "a": a,
            "b": b,
            "c": c,
            "d": d,
            "ab": a * b,
            "abc": a * b * c,
            "ac": a * c,
            "bd": b * d,
            "total": a * c + b * d,
            "big": a + share * c,
            "rest": share * c,
            "share": share,
        }
        items.append(
            {
                "id": f"demo-{i:03d}",
                "question": question.format(**values),
                "answer": answer.format(**values),
            }
        )
    return items


def generate_captures(
    seed: int, scale: float
) -> tuple[list[Capture], list[str], list[dict[str, str]], list[str], list[str]]:
    """All page captures in crawl order, the math URLs, the benchmark, the planted ids and the
    forum-math URLs."""
    rng = random.Random(seed)
    bench = benchmark_items(seed, 40)
    planted = bench[:6]
    captures: list[Capture] = []
    math_urls: list[str] = []
    forum_urls: list[str] = []
    when = CRAWL_START
    page_no = 0
    for site in default_sites(scale):
        for section in site.sections:
            for _ in range(section.pages):
                page_no += 1
                url = f"https://{site.domain}{section.prefix}/{page_no}/{_slug(rng)}"
                if section.topic == "math":
                    items = math_paragraphs(rng, rng.randint(2, 4))
                    if planted and rng.random() < 0.05:
                        b = planted.pop()
                        items.append(MathItem(b["question"], b["answer"]))
                    title = f"Problem set {page_no}: " + items[0].question.split("$")[0][:40]
                    body = _math_body(items, site.math_style, rng)
                    head = MATHJAX_HEAD if site.math_style == "tex_dollar" else ""
                    math_urls.append(url)
                elif section.topic == "forum_math":
                    formula = None
                    if rng.random() < section.formula_share:
                        formula = math_paragraphs(rng, 1)[0]
                    title = f"Thread {page_no}: homework question"
                    body = forum_math_thread(rng, formula)
                    head = MATHJAX_HEAD if formula is not None else ""
                    forum_urls.append(url)
                else:
                    title = f"{section.topic.title()} notes #{page_no}"
                    body = _topic_body(section.topic, rng)
                    head = ""
                html_text = page_html(
                    site_name=site.name, title=title, body_html=body, rng=rng, head_extra=head
                )
                when += timedelta(seconds=rng.randint(1, 90))
                captures.append(Capture(url, when, html_text.encode("utf-8")))
    planted_ids = [b["id"] for b in bench[:6] if b not in planted]
    return captures, math_urls, bench, planted_ids, forum_urls


def write_seed_positives(path: Path, seed: int, count: int) -> None:
    """LaTeX problem sets (JSONL: id, url, text) that are not pages of the crawl."""
    rng = random.Random(seed + 104729)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(count):
            record = {
                "id": f"seed-{i:05d}",
                "url": f"https://seed-corpus.example/sets/{i}",
                "text": seed_page_text(rng, rng.randint(2, 4)),
            }
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")


def add_duplicates(captures: list[Capture], rng: random.Random) -> list[Capture]:
    """Recaptures (URL variants, later dates), exact mirrors and near-duplicate copies."""
    extra: list[Capture] = []
    later = timedelta(days=30)
    for cap in rng.sample(captures, len(captures) // 10):
        variant = rng.choice(["", "?utm_source=newsletter&utm_medium=email", "#comments"])
        body = cap.body.replace(b"All rights reserved.", b"All rights reserved. Updated.")
        extra.append(Capture(cap.url + variant, cap.when + later, body))
    math_qa = [c for c in captures if "://mathqa.example/" in c.url]
    for cap in rng.sample(math_qa, max(1, len(math_qa) // 20)):
        mirrored = cap.url.replace("://mathqa.example/", "://mirror-mathqa.example/")
        extra.append(Capture(mirrored, cap.when + timedelta(days=3), cap.body))
    prose = [c for c in captures if "://reelreview.example/" in c.url]
    for cap in rng.sample(prose, max(1, len(prose) // 10)):
        text = cap.body.decode("utf-8")
        words = text.split(" ")
        for _ in range(max(1, len(words) // 60)):
            words[rng.randrange(len(words))] = "indeed"
        url = cap.url.replace("://reelreview.example/films/", "://syndicate-news.example/culture/")
        extra.append(Capture(url, cap.when + timedelta(days=1), " ".join(words).encode("utf-8")))
    return extra


def odd_captures(rng: random.Random) -> list[Capture]:
    """Responses that are not plain HTML pages, or are HTML in awkward ways."""
    when = CRAWL_START + timedelta(days=2)
    png = b"\x89PNG\r\n\x1a\n" + bytes(rng.getrandbits(8) for _ in range(256))
    body_no_type = page_html(
        site_name="Plain Site",
        title="A page served with no content type",
        body_html="<p>" + prose_paragraph(rng, "travel", 6) + "</p>",
        rng=rng,
    ).encode("utf-8")
    bad_bytes = page_html(
        site_name="Legacy Site",
        title="Caf\u00e9 notes",
        body_html="<p>" + prose_paragraph(rng, "cooking", 6) + " Caf\u00e9 cr\u00e8me.</p>",
        rng=rng,
    ).encode("latin-1")  # declared utf-8 below: the bytes \xe9 and \xe8 are invalid UTF-8
    huge = b"<html><body><p>" + b"lorem ipsum " * (600 * 1024) + b"</p></body></html>"
    return [
        Capture(
            "https://dailyplate.example/robots.txt",
            when,
            b"User-agent: *\nAllow: /\n",
            "text/plain",
        ),
        Capture("https://gadgetzone.example/img/phone.png", when, png, "image/png"),
        Capture(
            "https://mathwiki.example/files/notes.pdf",
            when,
            b"%PDF-1.4\n%fake\n",
            "application/pdf",
        ),
        Capture(
            "https://wanderlog.example/old-trip",
            when,
            b"",
            "text/html",
            "301 Moved Permanently",
            [("Location", "https://wanderlog.example/trips/1")],
        ),
        Capture(
            "https://matchday.example/missing",
            when,
            b"<html><body>Not found</body></html>",
            "text/html",
            "404 Not Found",
        ),
        Capture("https://plain-site.example/no-type", when, body_no_type, None),
        Capture("https://legacy-site.example/cafe", when, bad_bytes, "text/html; charset=utf-8"),
        Capture("https://huge-site.example/giant", when, huge, "text/html"),
        Capture("not a url at all", when, body_no_type, "text/html"),
    ]


def _write_capture(writer: WARCWriter, cap: Capture) -> None:
    headers = [("Content-Length", str(len(cap.body)))]
    if cap.content_type is not None:
        headers.insert(0, ("Content-Type", cap.content_type))
    headers.extend(cap.extra_headers)
    date = cap.when.strftime("%Y-%m-%dT%H:%M:%SZ")
    request = writer.create_warc_record(
        cap.url,
        "request",
        payload=io.BytesIO(b""),
        http_headers=StatusAndHeaders(
            f"GET {cap.url} HTTP/1.1", [("User-Agent", "mathcorpus-sample")], is_http_request=True
        ),
        warc_headers_dict={"WARC-Date": date},
    )
    writer.write_record(request)
    response = writer.create_warc_record(
        cap.url,
        "response",
        payload=io.BytesIO(cap.body),
        http_headers=StatusAndHeaders(cap.status, headers, protocol="HTTP/1.1"),
        warc_headers_dict={"WARC-Date": date},
    )
    writer.write_record(response)


def _write_warc(path: Path, captures: Sequence[Capture], gzip_records: bool) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("wb") as fh:
        writer = WARCWriter(fh, gzip=gzip_records)
        writer.write_record(
            writer.create_warcinfo_record(path.name, {"software": "mathcorpus sample_crawl"})
        )
        for cap in captures:
            _write_capture(writer, cap)
            if cap.url.endswith("7"):
                meta = writer.create_warc_record(
                    cap.url,
                    "metadata",
                    payload=io.BytesIO(b"fetchTimeMs: 12\n"),
                    warc_content_type="application/warc-fields",
                )
                writer.write_record(meta)
    tmp.replace(path)


# A record whose WARC headers are broken (Content-Length is not a number): readers must stop
# that file there, keep what came before, and go on with the next file.
BROKEN_RECORD = (
    b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: https://broken.example/\r\n"
    b"Content-Length: not-a-number\r\n\r\nHTTP/1.1 200 OK\r\n\r\n<html>broken</html>\r\n\r\n"
)


def write_sample_crawl(out_dir: str | Path, seed: int = 1234, scale: float = 1.0) -> SampleCrawl:
    """Write the sample crawl's WARC files and benchmark into `out_dir` (created)."""
    out = Path(out_dir)
    crawl = out / "crawl"
    crawl.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed + 1)
    captures, math_urls, bench, planted_ids, forum_urls = generate_captures(seed, scale)
    rng.shuffle(captures)
    duplicates = add_duplicates(captures, rng)
    n_files = 4
    files: list[list[Capture]] = [captures[i::n_files] for i in range(n_files)]
    # Recaptures and copies go in the last file, as a later crawl would have them.
    files[-1].extend(duplicates)
    files[1].extend(odd_captures(rng))
    paths: list[str] = []
    for i, caps in enumerate(files):
        path = crawl / f"sample-{i:05d}.warc.gz"
        _write_warc(path, caps, gzip_records=True)
        paths.append(str(path))
    # Fault 1: a copy of a few records, cut off in the middle of a gzip member.
    tail = rng.sample(captures, 12)
    cut_path = crawl / f"sample-{n_files:05d}-truncated.warc.gz"
    _write_warc(cut_path, tail, gzip_records=True)
    data = cut_path.read_bytes()
    cut_path.write_bytes(data[: int(len(data) * 0.6)])
    paths.append(str(cut_path))
    # Fault 2: an uncompressed file with broken headers after a few good records.
    bad_path = crawl / f"sample-{n_files + 1:05d}-badheaders.warc"
    _write_warc(bad_path, rng.sample(captures, 5), gzip_records=False)
    with bad_path.open("ab") as fh:
        fh.write(BROKEN_RECORD)
    paths.append(str(bad_path))

    bench_dir = out / "benchmarks"
    bench_dir.mkdir(parents=True, exist_ok=True)
    bench_path = bench_dir / "demo_bench.jsonl"
    with bench_path.open("w", encoding="utf-8") as fh:
        for item in bench:
            fh.write(json.dumps(item, ensure_ascii=False) + "\n")
    seed_path = out / "seed" / "positives.jsonl"
    write_seed_positives(seed_path, seed, max(20, round(200 * scale)))
    return SampleCrawl(
        warc_files=paths,
        benchmark_file=str(bench_path),
        pages=len(captures),
        math_urls=math_urls,
        planted_benchmark_ids=planted_ids,
        forum_math_urls=forum_urls,
        seed_positives=str(seed_path),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the built-in sample crawl.")
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every page count")
    args = parser.parse_args(argv)
    sample = write_sample_crawl(args.out_dir, args.seed, args.scale)
    print(f"wrote {len(sample.warc_files)} WARC files with {sample.pages} pages to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
