"""Maths markup -> TeX text, one markup kind at a time, on small hand-written pages.

The last tests run each snippet through both extraction backends: the TeX must survive their
boilerplate removal, once, where it stood.
"""

from __future__ import annotations

import pytest

from pipeline.extract.extractors import EXTRACTOR_NAMES, extract_page, get_extractor
from pipeline.extract.math_markup import (
    MATH_FORMATS,
    clean_tex,
    has_math_markers,
    has_tex_delimiters,
    rewrite_math,
    tex_from_image,
)


def page(body: str) -> str:
    return f"<!DOCTYPE html><html><head><title>t</title></head><body>{body}</body></html>"


def text_of(body: str) -> str:
    """The rewritten page's body as text (tags dropped), for compact assertions."""
    from lxml import etree

    doc = etree.HTML(rewrite_math(page(body)).html)
    return "".join(doc.find("body").itertext())


# --- the cheap pre-check --------------------------------------------------------------------


@pytest.mark.parametrize(
    "html",
    [
        '<script type="math/tex">x</script>',
        '<script type="math/tex; mode=display">x</script>',
        "<math><mi>x</mi></math>",
        '<m:math xmlns:m="http://www.w3.org/1998/Math/MathML"><m:mi>x</m:mi></m:math>',
        '<span class="katex">x</span>',
        '<span class="mwe-math-element">x</span>',
        '<span class="math-container">$x$</span>',
        "<d-math>x</d-math>",
        "<dt-math>x</dt-math>",
        "<mjx-container><mjx-math></mjx-math></mjx-container>",
        '<img src="https://latex.codecogs.com/png.latex?x^2">',
        '<img src="https://s0.wp.com/latex.php?latex=x%5E2">',
        '<img class="latex" alt="x^2" src="a.png">',
    ],
)
def test_markers_found(html: str) -> None:
    assert has_math_markers(page(html))


@pytest.mark.parametrize(
    "html",
    [
        "<p>Mathematics and math class, $5 and $10.</p>",
        '<div class="rank-math-schema"></div><a href="/so-much-math-in-football">x</a>',
        '<style type="text/css"></style><p>context, texture, text</p>',
        '<a href="/latex-mask-identified">latex gloves</a>',
        "<script>Math.floor(1)</script><p>\\(not markup\\)</p>",
    ],
)
def test_markers_absent(html: str) -> None:
    assert not has_math_markers(page(html))


def test_tex_delimiters_detected_in_text() -> None:
    assert has_tex_delimiters(r"Let $x^2$ be")
    assert has_tex_delimiters(r"where \(a\) and \[b\]")
    assert has_tex_delimiters("$$E=mc^2$$")
    assert has_tex_delimiters(r"\begin{align} a \end{align}")
    assert not has_tex_delimiters("It costs $5 and $10.")
    assert not has_tex_delimiters("plain text")


# --- each markup kind -----------------------------------------------------------------------


def test_mathjax_scripts_inline_and_display() -> None:
    body = (
        '<p>Let <script type="math/tex">x^2 < y</script> and '
        '<script type="math/tex; mode=display">\\int_0^1 f</script> end.</p>'
    )
    rw = rewrite_math(page(body))
    assert rw.formats == ("mathjax_script",)
    assert rw.n_expressions == 2
    assert text_of(body) == "Let $x^2 < y$ and $$\\int_0^1 f$$ end."


def test_mathjax_v2_rendering_is_dropped_beside_its_script() -> None:
    body = (
        '<p>A <span class="MathJax_Preview">x2</span>'
        '<span class="MathJax" id="MathJax-Element-1-Frame">'
        '<span class="math">x2</span><span class="MJX_Assistive_MathML"><math><mi>x</mi></math>'
        '</span></span><script type="math/tex" id="MathJax-Element-1">x^2</script> B</p>'
    )
    assert text_of(body) == "A $x^2$ B"


def test_mathjax_mml_script() -> None:
    body = (
        '<p>A <script type="math/mml"><math><msup><mi>x</mi><mn>2</mn></msup></math></script></p>'
    )
    assert text_of(body) == "A $x^{2}$"


def test_tex_already_in_text_is_left_intact() -> None:
    body = r"<p>Inline $a+b$, \(c\), $$d$$ and \[e\].</p><p>And <d-math>f</d-math>.</p>"
    rw = rewrite_math(page(body))
    assert text_of(body) == r"Inline $a+b$, \(c\), $$d$$ and \[e\].And $f$."
    assert rw.formats == ("distill", "tex_delimiters")
    assert rw.n_expressions == 1  # only the d-math; the page's own TeX is not counted


def test_page_without_markup_comes_back_unchanged() -> None:
    html = page("<p>Costs $5.</p>")
    rw = rewrite_math(html)
    assert rw == type(rw)(html, (), 0)


def test_mathml_annotation_alttext_and_conversion() -> None:
    body = (
        "<p>A <math><semantics><mi>x</mi>"
        '<annotation encoding="application/x-tex">x_{ann}</annotation></semantics></math>, '
        'B <math alttext="y_{alt}"><mi>y</mi></math>, '
        'C <math display="block"><mfrac><mn>1</mn><mi>z</mi></mfrac></math> D</p>'
    )
    rw = rewrite_math(page(body))
    assert rw.formats == ("mathml",)
    assert rw.n_expressions == 3
    assert text_of(body) == "A $x_{ann}$, B $y_{alt}$, C $$\\frac{1}{z}$$ D"


def test_prefixed_mathml() -> None:
    body = '<p>A <m:math xmlns:m="http://www.w3.org/1998/Math/MathML"><m:mi>q</m:mi></m:math>.</p>'
    assert text_of(body) == "A $q$."


def test_katex_uses_annotation_and_drops_the_html_rendering() -> None:
    katex = (
        '<span class="katex"><span class="katex-mathml"><math><semantics><mrow><mi>a</mi></mrow>'
        '<annotation encoding="application/x-tex">a^{2}</annotation></semantics></math></span>'
        '<span class="katex-html" aria-hidden="true"><span class="base">a2</span></span></span>'
    )
    body = f'<p>Inline {katex} and</p><span class="katex-display">{katex}</span><p>end</p>'
    rw = rewrite_math(page(body))
    assert rw.formats == ("katex",)
    assert rw.n_expressions == 2
    assert text_of(body) == "Inline $a^{2}$ and$$a^{2}$$end"


def test_wikipedia_math_element_once() -> None:
    wiki = (
        '<span class="mwe-math-element"><span class="mwe-math-mathml-inline mwe-math-mathml-a11y"'
        ' style="display: none;"><math alttext="{\\displaystyle x^{2}}"><semantics><mrow>'
        "<msup><mi>x</mi><mn>2</mn></msup></mrow>"
        '<annotation encoding="application/x-tex">{\\displaystyle x^{2}}</annotation>'
        '</semantics></math></span><img src="x.svg" class="mwe-math-fallback-image-inline" '
        'alt="{\\displaystyle x^{2}}"></span>'
    )
    display = wiki.replace("mathml-inline", "mathml-display").replace(
        "image-inline", "image-display"
    )
    no_mathml = '<span class="mwe-math-element"><img alt="{\\displaystyle y}" src="y.svg"></span>'
    body = f"<p>Square {wiki} is. {display} Also {no_mathml}.</p>"
    rw = rewrite_math(page(body))
    assert rw.formats == ("wikipedia",)
    assert rw.n_expressions == 3
    assert text_of(body) == "Square $x^{2}$ is. $$x^{2}$$ Also $y$."


def test_clean_tex_strips_only_a_whole_style_wrapper() -> None:
    assert clean_tex("{\\displaystyle a+b}") == "a+b"
    assert clean_tex(" {\\textstyle a} ") == "a"
    assert clean_tex("{\\displaystyle a}+{b}") == "{\\displaystyle a}+{b}"  # not one wrapper


@pytest.mark.parametrize(
    ("src", "alt", "classes", "expected"),
    [
        (
            "https://latex.codecogs.com/png.latex?\\dpi{110}&space;x^2&space;+&space;1",
            "",
            set(),
            "x^2 + 1",
        ),
        ("https://latex.codecogs.com/gif.latex?%5Cfrac%7B1%7D%7B2%7D", "", set(), "\\frac{1}{2}"),
        (
            "https://s0.wp.com/latex.php?latex=%5Csqrt%7B2%7D&bg=ffffff&fg=000",
            "",
            set(),
            "\\sqrt{2}",
        ),
        ("https://s0.wp.com/latex.php?latex=a&bg=fff", "\\alpha+1", {"latex"}, "\\alpha+1"),
        ("/cgi-bin/mimetex.cgi?a_1", "", set(), "a_1"),
        ("https://chart.googleapis.com/chart?cht=tx&chl=x%2By", "", set(), "x+y"),
        ("photo.png", "x^2", {"latex"}, "x^2"),
        ("photo.png", "a photo", set(), None),
        ("https://example.com/latex-gloves.jpg", "gloves", set(), None),
    ],
)
def test_tex_from_image(src: str, alt: str, classes: set[str], expected: str | None) -> None:
    assert tex_from_image(src, alt, classes) == expected


def test_mimetex_images_are_rewritten_but_not_a_marker() -> None:
    # Two substring scans keep the pre-check cheap; mimeTeX-only pages are the known gap.
    body = '<p>A <img src="/cgi-bin/mimetex.cgi?x^2"> B</p>'
    assert not has_math_markers(page(body))
    assert text_of(body) == "A $x^2$ B"


def test_tex_images_rewritten_inline() -> None:
    body = (
        '<p>See <img src="https://s0.wp.com/latex.php?latex=%5Cpi&bg=fff" alt="\\pi" class="latex">'
        ' here <img src="cat.jpg" alt="cat">.</p>'
    )
    rw = rewrite_math(page(body))
    assert rw.formats == ("tex_image",)
    assert text_of(body) == "See $\\pi$ here ."
    assert 'alt="cat"' in rw.html


def test_stack_exchange_math_container() -> None:
    body = (
        '<p>Take <span class="math-container">$x_1$</span> and '
        '<span class="math-container">y</span>.</p>'
        '<div class="math-container">$$\\sum_i a_i$$</div>'
    )
    rw = rewrite_math(page(body))
    # Stack Exchange text is TeX already: its own delimiters are reported as well.
    assert rw.formats == ("math_container", "tex_delimiters")
    assert rw.n_expressions == 3
    assert text_of(body) == "Take $x_1$ and $y$.$$\\sum_i a_i$$"


def test_distill_inline_block_and_dt_math() -> None:
    body = "<p>A <d-math>x &lt; y</d-math>, <dt-math>z</dt-math></p><d-math block>\\int f</d-math>"
    rw = rewrite_math(page(body))
    assert rw.n_expressions == 3
    assert text_of(body) == "A $x < y$, $z$$$\\int f$$"


def test_mathjax_v3_container_uses_assistive_mathml_once() -> None:
    container = (
        '<mjx-container class="MathJax" jax="CHTML"{display}><mjx-math aria-hidden="true">'
        '<mjx-mi class="mjx-i"><mjx-c class="mjx-c1D465 TEX-I"></mjx-c></mjx-mi></mjx-math>'
        '<mjx-assistive-mml display="inline"><math><msup><mi>x</mi><mn>2</mn></msup></math>'
        "</mjx-assistive-mml></mjx-container>"
    )
    svg_only = '<mjx-container jax="SVG"><svg><g></g></svg></mjx-container>'
    inline = container.format(display="")
    display = container.format(display=' display="true"')
    body = f"<p>A {inline} B</p>{display}<p>C {svg_only} D</p>"
    rw = rewrite_math(page(body))
    assert rw.formats == ("mathjax_output",)
    assert rw.n_expressions == 2
    assert text_of(body) == "A $x^{2}$ B$$x^{2}$$C  D"


def test_text_after_a_formula_is_kept() -> None:
    body = "<p><b>bold</b> then <math><mi>x</mi></math> tail <i>it</i> more</p>"
    assert text_of(body) == "bold then $x$ tail it more"


def test_odd_inputs() -> None:
    assert rewrite_math("").html == ""
    assert rewrite_math("   ").n_expressions == 0
    xml = '<?xml version="1.0" encoding="utf-8"?>' + page("<p><math><mi>x</mi></math></p>")
    assert rewrite_math(xml).n_expressions == 1
    # C0 control characters (which libxml2 refuses) and pathologically deep markup.
    assert text_of("<p>a\x0bb\x00 <math><mi>x</mi></math></p>") == "ab $x$"
    assert rewrite_math(page("<math>" * 3000 + "x")).html


def test_formats_come_from_the_documented_vocabulary() -> None:
    assert list(MATH_FORMATS) == sorted(MATH_FORMATS)
    body = '<p><d-math>a</d-math><script type="math/tex">b</script><math><mi>c</mi></math></p>'
    formats = rewrite_math(page(body)).formats
    assert formats == ("distill", "mathjax_script", "mathml")
    assert set(formats) <= set(MATH_FORMATS)


def test_figures_holding_maths_become_divs() -> None:
    body = (
        "<figure><div><d-math block>E=mc^2</d-math></div>"
        "<figcaption>energy <d-math>E</d-math></figcaption></figure>"
    )
    html = rewrite_math(page(body)).html
    assert "<figure" not in html and "<figcaption" not in html
    assert (
        rewrite_math(page("<figure><img src=a.png></figure><p><d-math>x</d-math></p>")).html.count(
            "<figure"
        )
        == 1
    )


# --- through both backends ------------------------------------------------------------------

ARTICLE = """
<header><nav><a href="/">Home</a> | <a href="/about">About us</a> | <a href="/x">Contact</a>
</nav></header>
<main><article>
<h1>On the sum of squares</h1>
<p>We recall a classical identity that every student of number theory meets early on, and we
state it with care so that the formula below can be checked by hand for small values.</p>
<p>For every natural number {inline} the sum of the first n squares satisfies the identity
shown next, which one proves by induction on n without much effort at all.</p>
{display}
<p>The base case is immediate, and the inductive step amounts to adding one more square and
simplifying the resulting polynomial expression in n; the details are left to the reader.</p>
<p>A second example uses {wiki} as the quantity of interest throughout this short paragraph.</p>
</article></main>
<footer><p>Copyright 2024 Example Org. All rights reserved. Imprint. Privacy.</p></footer>
"""
INLINE = '<script type="math/tex">n \\geq 1</script>'
DISPLAY = (
    '<p><span class="katex-display"><span class="katex"><span class="katex-mathml">'
    "<math><semantics>"
    '<mrow><mi>S</mi></mrow><annotation encoding="application/x-tex">\\sum_{k=1}^{n} k^2 = '
    '\\frac{n(n+1)(2n+1)}{6}</annotation></semantics></math></span><span class="katex-html" '
    'aria-hidden="true">∑k2=n(n+1)(2n+1)6</span></span></span></p>'
)
WIKI = (
    '<span class="mwe-math-element"><span class="mwe-math-mathml-inline" style="display: none;">'
    '<math alttext="{\\displaystyle \\alpha _{n}}"><mi>α</mi></math></span>'
    '<img class="mwe-math-fallback-image-inline" alt="{\\displaystyle \\alpha _{n}}" src="a.svg">'
    "</span>"
)


@pytest.mark.parametrize("backend", EXTRACTOR_NAMES)
def test_math_text_survives_each_backend(backend: str) -> None:
    html = page(ARTICLE.format(inline=INLINE, display=DISPLAY, wiki=WIKI))
    extraction = extract_page(html, get_extractor(backend))
    text = extraction.text
    assert extraction.n_math == 3
    assert extraction.math_formats == ("katex", "mathjax_script", "wikipedia")
    assert "natural number $n \\geq 1$ the sum" in text
    assert "$$\\sum_{k=1}^{n} k^2 = \\frac{n(n+1)(2n+1)}{6}$$" in text
    assert "uses $\\alpha _{n}$ as the quantity" in text
    assert text.count("\\frac{n(n+1)(2n+1)}{6}") == 1
    assert "∑k2" not in text  # KaTeX's HTML rendering is gone
    assert "All rights reserved" not in text


@pytest.mark.parametrize("backend", EXTRACTOR_NAMES)
def test_page_without_markup_reports_its_own_tex(backend: str) -> None:
    html = page(ARTICLE.format(inline="$n \\geq 1$", display="<p>$$S_n = n^2$$</p>", wiki="$a$"))
    extraction = extract_page(html, get_extractor(backend))
    assert extraction.math_formats == ("tex_delimiters",)
    assert extraction.n_math == 0
    assert "$$S_n = n^2$$" in extraction.text
