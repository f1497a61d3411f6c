"""MathML -> LaTeX, element by element, on small hand-written MathML."""

from __future__ import annotations

import pytest

from pipeline.extract.mathml_to_latex import convert_mathml, join_tex, text_to_tex


def tex(body: str, **attrs: str) -> str:
    """Convert `<math>body</math>` (attributes on the <math> element from attrs)."""
    attributes = "".join(f' {k}="{v}"' for k, v in attrs.items())
    return convert_mathml(
        f'<math xmlns="http://www.w3.org/1998/Math/MathML"{attributes}>{body}</math>'
    )


def test_tokens_and_rows() -> None:
    assert tex("<mi>x</mi><mo>+</mo><mn>2</mn>") == "x+2"
    assert tex("<mrow><mi>a</mi><mo>=</mo><mi>b</mi></mrow>") == "a=b"
    # Pretty-printed pages pad token text with white space; it is not content.
    assert tex("<mi>\n   y\n </mi><mo> = </mo><mn> 10 </mn>") == "y=10"


@pytest.mark.parametrize(
    ("char", "expected"),
    [
        ("∑", r"\sum"),
        ("∫", r"\int"),
        ("≤", r"\leq"),
        ("≥", r"\geq"),
        ("≠", r"\neq"),
        ("α", r"\alpha"),
        ("Ω", r"\Omega"),
        ("∞", r"\infty"),
        ("→", r"\to"),
        ("×", r"\times"),
        ("±", r"\pm"),
        ("∈", r"\in"),
        ("∂", r"\partial"),
        ("−", "-"),
        ("\u2062", ""),  # invisible times
    ],
)
def test_unicode_operators_become_tex_commands(char: str, expected: str) -> None:
    assert tex(f"<mo>{char}</mo>") == expected


def test_control_words_get_a_space_only_before_letters() -> None:
    assert tex("<mi>α</mi><mi>x</mi>") == r"\alpha x"
    assert tex("<mi>α</mi><mn>2</mn>") == r"\alpha2"
    assert tex("<mo>±</mo><msqrt><mi>y</mi></msqrt>") == r"\pm\sqrt{y}"
    assert join_tex([r"\beta", "", "y"]) == r"\beta y"


def test_identifiers() -> None:
    assert tex("<mi>sin</mi><mi>x</mi>") == r"\sin x"
    assert tex("<mi>softmax</mi>") == r"\mathrm{softmax}"
    assert tex('<mi mathvariant="bold">v</mi>') == r"\mathbf{v}"
    assert tex('<mi mathvariant="double-struck">R</mi>') == r"\mathbb{R}"
    assert tex('<mi mathvariant="normal">Γ</mi>') == r"\Gamma"  # upright Greek is TeX's default
    assert tex("<mi>𝐱</mi>") == r"\mathbf{x}"  # U+1D431 MATHEMATICAL BOLD SMALL X
    assert tex("<mi>ℝ</mi>") == r"\mathbb{R}"


def test_fractions_roots_scripts() -> None:
    assert tex("<mfrac><mn>1</mn><mi>n</mi></mfrac>") == r"\frac{1}{n}"
    assert tex('<mfrac linethickness="0"><mi>n</mi><mi>k</mi></mfrac>') == r"{n \atop k}"
    assert tex("<msqrt><mi>x</mi><mo>+</mo><mn>1</mn></msqrt>") == r"\sqrt{x+1}"
    assert tex("<mroot><mi>x</mi><mn>3</mn></mroot>") == r"\sqrt[3]{x}"
    assert tex("<msup><mi>x</mi><mn>2</mn></msup>") == "x^{2}"
    assert tex("<msub><mi>a</mi><mi>i</mi></msub>") == "a_{i}"
    assert tex("<msubsup><mi>x</mi><mi>i</mi><mn>2</mn></msubsup>") == "x_{i}^{2}"
    assert tex("<msup><mi>f</mi><mo>′</mo></msup>") == "f'"
    assert tex("<msup><mi>f</mi><mo>″</mo></msup>") == "f''"
    # A compound base is braced so the script applies to all of it.
    assert tex("<msup><mrow><mo>(</mo><mi>a</mi><mo>)</mo></mrow><mn>2</mn></msup>") == "{(a)}^{2}"


def test_over_and_under() -> None:
    assert tex("<mover><mi>x</mi><mo>^</mo></mover>") == r"\hat{x}"
    assert tex("<mover><mi>x</mi><mo>¯</mo></mover>") == r"\bar{x}"
    assert tex("<mover><mi>v</mi><mo>→</mo></mover>") == r"\vec{v}"
    assert tex("<mover><mi>x</mi><mo>˙</mo></mover>") == r"\dot{x}"
    assert tex("<munder><mi>x</mi><mo>_</mo></munder>") == r"\underline{x}"
    assert tex("<munder><mo>lim</mo><mrow><mi>n</mi><mo>→</mo><mi>∞</mi></mrow></munder>") == (
        r"\lim_{n\to\infty}"
    )
    assert tex(
        "<munderover><mo>∑</mo><mrow><mi>k</mi><mo>=</mo><mn>1</mn></mrow><mi>n</mi></munderover>"
    ) == (r"\sum_{k=1}^{n}")
    assert tex("<mover><mi>A</mi><mi>B</mi></mover>") == r"\overset{B}{A}"
    assert tex("<munder><mi>A</mi><mi>B</mi></munder>") == r"\underset{B}{A}"


def test_tables() -> None:
    matrix = (
        "<mtable><mtr><mtd><mn>1</mn></mtd><mtd><mn>0</mn></mtd></mtr>"
        "<mtr><mtd><mn>0</mn></mtd><mtd><mn>1</mn></mtd></mtr></mtable>"
    )
    assert tex(matrix) == r"\begin{matrix}1 & 0 \\ 0 & 1\end{matrix}"
    aligned = (
        '<mtable columnalign="right left"><mtr><mtd><mi>x</mi></mtd><mtd><mo>=</mo><mn>1</mn></mtd>'
        "</mtr></mtable>"
    )
    assert tex(aligned) == r"\begin{aligned}x & =1\end{aligned}"
    labelled = (
        "<mtable><mlabeledtr><mtd><mtext>(1)</mtext></mtd><mtd><mi>y</mi></mtd></mlabeledtr>"
        "</mtable>"
    )
    assert tex(labelled) == r"\begin{matrix}y\end{matrix}"


def test_text_space_fenced_style() -> None:
    assert tex("<mtext>if </mtext><mi>x</mi>") == r"\text{if}x"
    assert tex("<mtext>for&#xA0;</mtext><mi>x</mi>") == r"\text{for }x"  # no-break space is content
    assert tex("<mtext>50% & more</mtext>") == r"\text{50\% \& more}"
    assert tex('<mi>a</mi><mspace width="1em"/><mi>b</mi>') == r"a\quad b"
    assert tex('<mi>a</mi><mspace width="thinmathspace"/><mi>b</mi>') == r"a\,b"
    assert tex('<mi>a</mi><mspace width="-0.1em"/><mi>b</mi>') == "ab"
    assert tex("<mfenced><mi>a</mi><mi>b</mi></mfenced>") == "(a,b)"
    assert (
        tex('<mfenced open="[" close="]" separators=";"><mi>a</mi><mi>b</mi></mfenced>') == "[a;b]"
    )
    assert tex('<mstyle displaystyle="true"><mi>z</mi></mstyle>') == "z"
    assert tex("<mi>a</mi><mphantom><mi>b</mi></mphantom>") == "a"
    assert tex(
        "<mmultiscripts><mi>F</mi><mi>i</mi><none/><mprescripts/><mn>2</mn><none/></mmultiscripts>"
    ) == ("{}_{2}F_{i}")


def test_semantics_prefers_the_tex_annotation() -> None:
    body = (
        "<semantics><mrow><mi>x</mi></mrow>"
        '<annotation encoding="application/x-tex">x_{\\text{source}}</annotation></semantics>'
    )
    assert tex(body) == r"x_{\text{source}}"
    # No TeX annotation: the presentation markup is converted, other annotations ignored.
    body = '<semantics><mi>y</mi><annotation encoding="text/plain">why</annotation></semantics>'
    assert tex(body) == "y"


def test_alttext_is_used_before_conversion() -> None:
    assert tex("<mi>q</mi>", alttext="q^{\\ast}") == r"q^{\ast}"


def test_namespace_prefixes_and_entities() -> None:
    markup = (
        '<mml:math xmlns:mml="http://www.w3.org/1998/Math/MathML"><mml:mi>a</mml:mi>'
        "<mml:mo>&InvisibleTimes;</mml:mo><mml:mi>b</mml:mi></mml:math>"
    )
    assert convert_mathml(markup) == "ab"


def test_unknown_elements_keep_their_content() -> None:
    assert tex("<mi>a</mi><mfoo><mi>b</mi></mfoo><mbar>c</mbar>") == "abc"


def test_tex_specials_in_tokens() -> None:
    assert text_to_tex("{x}") == r"\{x\}"
    assert tex("<mo>{</mo><mi>x</mi><mo>}</mo>") == r"\{x\}"


def test_quadratic_formula() -> None:
    body = (
        "<mi>x</mi><mo>=</mo><mfrac><mrow><mo>−</mo><mi>b</mi><mo>±</mo><msqrt><msup><mi>b</mi>"
        "<mn>2</mn></msup><mo>−</mo><mn>4</mn><mi>a</mi><mi>c</mi></msqrt></mrow><mrow><mn>2</mn>"
        "<mi>a</mi></mrow></mfrac>"
    )
    assert tex(body, display="block") == r"x=\frac{-b\pm\sqrt{b^{2}-4ac}}{2a}"
