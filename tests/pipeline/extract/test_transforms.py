"""ExtractPages on its own: decode, extract with math as LaTeX, language id, drops, dead letters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline.core.dead_letters import DEAD_LETTER
from pipeline.extract.config import ExtractSettings
from pipeline.extract.transforms import ExtractPages
from pipeline.pool.records import HtmlResponse, NormalizedResponse
from tests.helpers import BEAM_TEST_ARGS

MATH = (
    "<html><body><article><h1>The quadratic formula</h1><p>The roots of "
    "<math><mi>a</mi><msup><mi>x</mi><mn>2</mn></msup><mo>+</mo><mi>b</mi><mi>x</mi>"
    "<mo>+</mo><mi>c</mi><mo>=</mo><mn>0</mn></math> are given by the quadratic formula, "
    "which every student of algebra learns to derive by completing the square.</p>"
    "<p>It holds for every polynomial of degree two with real or complex coefficients.</p>"
    "</article></body></html>"
)
PROSE = (
    "<html><body><article><h1>Cycling in Salzburg</h1><p>The city has many cycle paths along "
    "the river, and renting a bicycle at the station is easy for visitors in summer.</p>"
    "<p>Most museums are within a short ride of the old town and its famous squares.</p>"
    "</article></body></html>"
)
GERMAN = (
    "<html><body><article><p>Die Stadt hat viele Radwege entlang des Flusses, und ein Fahrrad "
    "am Bahnhof zu mieten ist im Sommer für Besucher einfach und günstig.</p>"
    "<p>Die meisten Museen liegen nur eine kurze Fahrt von der Altstadt entfernt.</p>"
    "</article></body></html>"
)


def page(
    name: str, html: str | bytes, content_type: str | None = "text/html"
) -> NormalizedResponse:
    url = f"https://example.org/{name}"
    payload = html if isinstance(html, bytes) else html.encode("utf-8")
    response = HtmlResponse(
        url, datetime(2024, 1, 1, tzinfo=UTC), "f.warc.gz", 0, content_type, payload
    )
    return NormalizedResponse(response, url, name, "example.org")


def test_extract_pages_keeps_math_as_latex_and_drops_what_it_should() -> None:
    settings = ExtractSettings(languages=("en",), min_text_chars=100)
    inputs = [
        page("math", MATH),
        page("prose", PROSE),
        page("german", GERMAN),
        page("short", "<html><body><p>Too short.</p></body></html>"),
        page("empty", "<html><body></body></html>"),
    ]

    def kept(rows: list[dict[str, Any]]) -> None:
        by_id = {r["doc_id"]: r for r in rows}
        assert sorted(by_id) == ["math", "prose"]
        math = by_id["math"]
        assert "x^{2}" in math["text"].replace(" ", "") or "x^2" in math["text"].replace(" ", "")
        assert math["n_math"] == 1 and "mathml" in math["math_formats"]
        assert by_id["prose"]["n_math"] == 0 and by_id["prose"]["language"] == "en"
        assert all(r["extractor"] == "resiliparse" and r["url"].endswith(r["doc_id"]) for r in rows)

    with BeamTestPipeline(options=PipelineOptions(BEAM_TEST_ARGS)) as p:
        out = p | beam.Create(inputs) | ExtractPages(settings)
        assert_that(out["pages"], kept)
        assert_that(out[DEAD_LETTER], equal_to([]), label="no dead letters")


def test_extract_pages_keeps_every_language_without_an_allow_list() -> None:
    with BeamTestPipeline(options=PipelineOptions(BEAM_TEST_ARGS)) as p:
        out = (
            p
            | beam.Create([page("german", GERMAN), page("prose", PROSE)])
            | ExtractPages(ExtractSettings(min_text_chars=50))
        )
        languages = out["pages"] | beam.Map(lambda r: (r["doc_id"], r["language"]))
        assert_that(languages, equal_to([("german", "de"), ("prose", "en")]))


def test_an_extractor_failure_is_a_dead_letter_not_a_crash() -> None:
    # A payload that is not bytes makes decoding raise inside the DoFn: one dead letter.
    bad = page("bad", PROSE)
    bad = NormalizedResponse(
        HtmlResponse(bad.url, bad.response.fetch_time, "f.warc.gz", 7, "text/html", 12345),  # type: ignore[arg-type]
        bad.url,
        "bad",
        "example.org",
    )
    with BeamTestPipeline(options=PipelineOptions(BEAM_TEST_ARGS)) as p:
        out = p | beam.Create([bad, page("prose", PROSE)]) | ExtractPages(ExtractSettings())
        assert_that(out["pages"] | beam.Map(lambda r: r["doc_id"]), equal_to(["prose"]))
        reasons = out[DEAD_LETTER] | beam.Map(lambda d: (d.stage, d.reason, d.doc_id, d.offset))
        assert_that(reasons, equal_to([("decode", "decode_error", "bad", 7)]), label="dead")
