"""The math-aware main-content decision (pipeline/extract/main_content.py) on small pages whose
structure is that of the real failures: formula blocks between widgets, an unclosed <figure>,
a formula in a page footer."""

from __future__ import annotations

import pytest

from pipeline.extract.extractors import EXTRACTOR_NAMES, extract_page, get_extractor
from pipeline.extract.main_content import (
    decide_main_content,
    restore_math_lines,
    strip_alt_attributes,
)
from pipeline.extract.math_markup import count_tex, tex_spans

PROSE = (
    "Gradient descent moves the parameters against the gradient of the loss, one small step "
    "at a time, and the step size decides whether it converges or oscillates around the minimum."
)


def test_restore_puts_dropped_math_back_in_place_and_keeps_every_main_line() -> None:
    page = "\n".join(["Menu", "Intro " + PROSE, "$$x_{t+1} = x_t - \\eta g_t$$", PROSE, "Footer"])
    main = "\n".join(["Intro " + PROSE, PROSE])
    content = restore_math_lines(main, page)
    assert content.text.split("\n") == [
        "Intro " + PROSE,
        "$$x_{t+1} = x_t - \\eta g_t$$",
        PROSE,
    ]
    assert (content.tex_in_page, content.tex_in_main, content.restored_lines) == (1, 1, 1)


def test_restore_leaves_out_math_before_or_after_the_main_span() -> None:
    page = "\n".join(["$a$ in the header", PROSE, "Intro " + PROSE, "see $b$ in the footer"])
    main = "\n".join([PROSE, "Intro " + PROSE])
    content = restore_math_lines(main, page)
    assert content.text == main
    assert (content.tex_in_page, content.tex_in_main, content.restored_lines) == (2, 0, 0)


def test_restore_skips_lines_whose_math_the_main_text_already_has() -> None:
    # Another backend broke the same paragraph differently: nothing is missing, nothing doubles.
    page = "\n".join([PROSE, "where $\\alpha$", "is the rate.", "Intro " + PROSE])
    main = "\n".join([PROSE, "where $\\alpha$ is the rate.", "Intro " + PROSE])
    assert restore_math_lines(main, page).text == main


def test_restore_ignores_prose_and_money() -> None:
    page = "\n".join([PROSE, "Subscribe for $5 and get $10 off", "Share", "Intro " + PROSE])
    main = "\n".join([PROSE, "Intro " + PROSE])
    content = restore_math_lines(main, page)
    assert content.text == main and content.restored_lines == 0


def test_decide_makes_no_second_pass_on_pages_without_math() -> None:
    def page_text() -> str:
        raise AssertionError("the whole-page pass ran on a page without maths")

    content = decide_main_content(PROSE, page_text, html=f"<p>{PROSE}</p>")
    assert (content.text, content.tex_in_page, content.restored_lines) == (PROSE, 0, 0)


def test_strip_alt_attributes() -> None:
    html = '<p>a<img src="x.png" alt="a photo of \'x\'"><IMG ALT=plain src=y><area alt="m"></p>'
    assert strip_alt_attributes(html) == '<p>a<img src="x.png"><IMG src=y><area></p>'
    assert strip_alt_attributes("<p>no images</p>") == "<p>no images</p>"


def test_tex_spans_and_count_agree() -> None:
    text = "a $x$ and $$y$$ and \\(z\\) and \\[w\\], costs $5 and $6"
    assert tex_spans(text) == ["\\(z\\)", "\\[w\\]", "$$y$$", "$x$"]
    assert count_tex(text) == 4


def _article(middle: str) -> str:
    paragraphs = "".join(f"<p>{PROSE} ({i})</p>" for i in range(6))
    return (
        "<html><body><nav><a href='/'>Home</a> <a href='/blog'>Blog</a></nav>"
        f"<article><h1>Descent</h1>{paragraphs}{middle}{paragraphs}</article>"
        "<footer>Copyright 2024, $c$ Example Inc.</footer></body></html>"
    )


@pytest.mark.parametrize("backend", EXTRACTOR_NAMES)
def test_an_unclosed_figure_no_longer_swallows_the_rest_of_the_page(backend: str) -> None:
    html = _article(
        '<figure><img src="loss.png" alt="Loss curves">'  # never closed, as on the real page
        "<h2>Momentum</h2><p>The update with momentum is</p>"
        "<div>$$v_{t+1} = \\beta v_t + g_t$$</div><p>and the step follows it.</p>"
    )
    text = extract_page(html, get_extractor(backend)).text
    assert "v_{t+1} = \\beta v_t + g_t" in text
    assert "Loss curves" not in text  # alt texts stay out
    assert "Copyright" not in text


def test_math_in_a_widget_block_is_kept_with_resiliparse() -> None:
    # A formula-only block in a panel that main-content selection reads as chrome.
    widget = (
        '<div class="widget-panel"><div class="controls"><button>Play</button>'
        "<button>Reset</button></div>"
        '<div class="eq">\\(L = \\sum_i (y_i - \\hat y_i)^2\\)</div></div>'
    )
    extraction = extract_page(_article(widget), get_extractor("resiliparse"))
    assert "L = \\sum_i (y_i - \\hat y_i)^2" in extraction.text
    assert extraction.tex_in_main >= 1
    assert "$c$" not in extraction.text  # the footer's formula stays out
