"""Generated web pages for the built-in sample crawl (our own text, no third-party data).

Math pages carry generated problems and solutions written in the markups a real crawl has
(`$..$` for MathJax, `<script type="math/tex">`, MathML with a TeX annotation, KaTeX, TeX images);
other pages are generated prose on everyday topics. Every page has the navigation, sidebar and
footer boilerplate that an extractor should drop. All randomness comes from the `random.Random`
passed in, so a seed gives the same crawl.
"""

from __future__ import annotations

import html
import random
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

# Markup styles a math page can use for its formulas.
MATH_STYLES = ("tex_dollar", "mathjax_script", "mathml", "katex", "tex_image")


@dataclass(frozen=True, slots=True)
class MathItem:
    """One generated problem: prose with TeX formulas, and its worked answer."""

    question: str
    """Prose with formulas written as `$TeX$` (turned into a page markup later)."""
    answer: str
    """The worked solution, same convention."""


def _quadratic(rng: random.Random) -> MathItem:
    r1, r2 = rng.randint(-9, 9), rng.randint(-9, 9)
    b, c = -(r1 + r2), r1 * r2
    return MathItem(
        f"Solve the quadratic equation $x^2 {b:+d}x {c:+d} = 0$ and check both roots.",
        f"Factoring gives $(x {-r1:+d})(x {-r2:+d}) = 0$, so $x = {r1}$ or $x = {r2}$. "
        r"The quadratic formula $x = \frac{-b \pm \sqrt{b^2 - 4ac}}{2a}$ "
        f"gives the same roots because the discriminant is ${b * b - 4 * c}$.",
    )


def _derivative(rng: random.Random) -> MathItem:
    a, n, k = rng.randint(2, 9), rng.randint(2, 6), rng.randint(2, 7)
    return MathItem(
        f"Find the derivative of $f(x) = {a}x^{{{n}}} + {k}\\sin x$ with respect to $x$.",
        f"By the power rule and the derivative of the sine, $f'(x) = {a * n}x^{{{n - 1}}} + "
        f"{k}\\cos x$. At $x = 0$ the slope of the tangent line is ${k}$.",
    )


def _integral(rng: random.Random) -> MathItem:
    a, m, u = rng.randint(1, 9), rng.randint(1, 4), rng.randint(1, 5)
    value = a * u ** (m + 1)
    return MathItem(
        f"Evaluate the definite integral $\\int_0^{{{u}}} {a}x^{{{m}}}\\,dx$.",
        f"An antiderivative is $\\frac{{{a}}}{{{m + 1}}}x^{{{m + 1}}}$, so the integral equals "
        f"$\\frac{{{value}}}{{{m + 1}}}$ by the fundamental theorem of calculus.",
    )


def _probability(rng: random.Random) -> MathItem:
    red, green, draw = rng.randint(3, 12), rng.randint(3, 12), 2
    total = red + green
    return MathItem(
        f"A bag contains {red} red marbles and {green} green marbles. Two marbles are drawn "
        "without replacement. What is the probability that both are red?",
        f"The probability is $\\frac{{\\binom{{{red}}}{{{draw}}}}}{{\\binom{{{total}}}{{{draw}}}}}"
        f" = \\frac{{{red * (red - 1)}}}{{{total * (total - 1)}}}$, counting unordered pairs.",
    )


def _series(rng: random.Random) -> MathItem:
    n = rng.randint(10, 200)
    return MathItem(
        f"Compute the sum of the first {n} positive integers and prove the formula by induction.",
        f"We claim $\\sum_{{k=1}}^{{n}} k = \\frac{{n(n+1)}}{{2}}$. The base case $n = 1$ holds; "
        f"if it holds for $n$, adding $n+1$ gives $\\frac{{(n+1)(n+2)}}{{2}}$. For $n = {n}$ the "
        f"sum is ${n * (n + 1) // 2}$.",
    )


def _matrix(rng: random.Random) -> MathItem:
    a, b, c, d = (rng.randint(-6, 9) for _ in range(4))
    return MathItem(
        f"Compute the determinant and the trace of the matrix $A = \\begin{{pmatrix}} {a} & {b} "
        f"\\\\ {c} & {d} \\end{{pmatrix}}$.",
        f"The determinant is $\\det A = ({a})({d}) - ({b})({c}) = {a * d - b * c}$ and the trace "
        f"is $\\operatorname{{tr}} A = {a + d}$; the eigenvalues satisfy "
        f"$\\lambda^2 - {a + d}\\lambda + {a * d - b * c} = 0$.",
    )


def _number_theory(rng: random.Random) -> MathItem:
    m = rng.choice([3, 5, 7, 11, 13])
    return MathItem(
        f"Prove that $n^{{{m}}} - n$ is divisible by ${m}$ for every integer $n$.",
        f"By Fermat's little theorem $n^{{{m}}} \\equiv n \\pmod{{{m}}}$ because ${m}$ is prime, "
        f"hence ${m} \\mid n^{{{m}}} - n$. A direct proof uses induction and the binomial theorem.",
    )


def _geometry(rng: random.Random) -> MathItem:
    a, b = rng.randint(3, 20), rng.randint(3, 20)
    return MathItem(
        f"In triangle $ABC$ the legs have lengths ${a}$ and ${b}$ and the angle between them is a "
        "right angle. Find the hypotenuse and the radius of the inscribed circle.",
        f"By Pythagoras $c = \\sqrt{{{a}^2 + {b}^2}} = \\sqrt{{{a * a + b * b}}}$, and the "
        f"inradius of a right triangle is $r = \\frac{{a + b - c}}{{2}}$.",
    )


MATH_GENERATORS: tuple[Callable[[random.Random], MathItem], ...] = (
    _quadratic,
    _derivative,
    _integral,
    _probability,
    _series,
    _matrix,
    _number_theory,
    _geometry,
)

MATH_PROSE = (
    "We start from the definition and simplify step by step.",
    "Recall the theorem proved in the previous lecture before reading the solution.",
    "The key observation is that both sides are polynomials of the same degree.",
    "Students often forget to check the boundary case, so we verify it explicitly.",
    "This exercise appears in most first-year calculus and algebra courses.",
    "A careful sketch of the graph makes the argument easier to follow.",
    "Try the problem yourself before looking at the worked answer below.",
    "The same method works for any coefficients, which we prove in general.",
    "Notice how the identity follows from expanding the product.",
    "One can also argue geometrically, but the algebraic proof is shorter.",
)

TOPICS: dict[str, tuple[str, ...]] = {
    "cooking": (
        "garlic",
        "olive oil",
        "oven",
        "recipe",
        "simmer",
        "onions",
        "basil",
        "dough",
        "butter",
        "tomato sauce",
        "skillet",
        "flavour",
        "dinner",
        "pasta",
        "roast",
        "seasoning",
    ),
    "travel": (
        "hotel",
        "beach",
        "museum",
        "train station",
        "itinerary",
        "passport",
        "old town",
        "harbour",
        "guided tour",
        "mountains",
        "sunset",
        "local market",
        "ferry",
        "hostel",
    ),
    "football": (
        "striker",
        "midfield",
        "penalty",
        "league table",
        "coach",
        "transfer window",
        "goalkeeper",
        "stadium",
        "season",
        "derby",
        "supporters",
        "injury",
        "kick-off",
        "referee",
    ),
    "gadgets": (
        "smartphone",
        "battery life",
        "screen",
        "charger",
        "firmware update",
        "headphones",
        "camera",
        "processor",
        "laptop",
        "keyboard",
        "warranty",
        "bluetooth",
        "price",
    ),
    "gardening": (
        "compost",
        "seedlings",
        "roses",
        "watering",
        "greenhouse",
        "soil",
        "pruning",
        "tomatoes",
        "mulch",
        "flower bed",
        "frost",
        "harvest",
        "shade",
        "hedge",
    ),
    "cinema": (
        "director",
        "screenplay",
        "premiere",
        "box office",
        "actor",
        "sequel",
        "soundtrack",
        "festival",
        "trailer",
        "critics",
        "plot twist",
        "cinematography",
        "streaming",
    ),
}

PROSE_TEMPLATES = (
    "Last weekend we finally tried the {a} everyone keeps talking about, and the {b} surprised us.",
    "If you are planning ahead, think about the {a} first; the {b} can wait until later.",
    "Our readers asked about the {a}, so here is what we learned from the {b}.",
    "Nobody expected the {a} to matter this much, but the {b} changed everything.",
    "The best advice we got was simple: keep an eye on the {a} and never rush the {b}.",
    "Compared with last year, the {a} is better value, although the {b} is still a weak spot.",
    "We spoke to three people who know the {a} well, and all of them mentioned the {b}.",
    "A quick tip: the {a} works best when the {b} is ready before you start.",
    "It rained all morning, which made the {a} difficult and the {b} almost impossible.",
    "Here is our honest opinion about the {a}, the {b}, and everything in between.",
)

NAV_ITEMS = ("Home", "News", "Archive", "About us", "Contact", "Subscribe", "Log in")


def prose_paragraph(rng: random.Random, topic: str, sentences: int) -> str:
    words = TOPICS[topic]
    out = []
    for _ in range(sentences):
        a, b = rng.sample(words, 2)
        out.append(rng.choice(PROSE_TEMPLATES).format(a=a, b=b))
    return " ".join(out)


def math_paragraphs(rng: random.Random, n_items: int) -> list[MathItem]:
    return [rng.choice(MATH_GENERATORS)(rng) for _ in range(n_items)]


def _split_tex(text: str) -> list[tuple[bool, str]]:
    """Split `prose $tex$ prose` into (is_math, piece) pieces."""
    pieces: list[tuple[bool, str]] = []
    for i, piece in enumerate(text.split("$")):
        if piece:
            pieces.append((i % 2 == 1, piece))
    return pieces


def render_formula(tex: str, style: str) -> str:
    """One formula in the given markup style (HTML)."""
    escaped = html.escape(tex, quote=False)
    if style == "tex_dollar":
        return f"${escaped}$"
    if style == "mathjax_script":
        return f'<script type="math/tex">{escaped}</script>'
    if style == "mathml":
        return (
            '<math xmlns="http://www.w3.org/1998/Math/MathML"><semantics><mrow><mi>'
            f'{html.escape(tex[:1])}</mi></mrow><annotation encoding="application/x-tex">'
            f"{escaped}</annotation></semantics></math>"
        )
    if style == "katex":
        return (
            '<span class="katex"><span class="katex-mathml"><math><semantics><mrow><mi>'
            f'{html.escape(tex[:1])}</mi></mrow><annotation encoding="application/x-tex">'
            f'{escaped}</annotation></semantics></math></span><span class="katex-html" '
            f'aria-hidden="true"><span class="base"><span class="mord">{escaped[:8]}</span>'
            "</span></span></span>"
        )
    if style == "tex_image":
        src = "https://latex.codecogs.com/gif.latex?" + urllib.parse.quote(tex)
        return f'<img class="tex" src="{html.escape(src)}" alt="{html.escape(tex)}">'
    raise ValueError(f"unknown math style {style!r}; valid: {MATH_STYLES}")


def render_math_text(text: str, style: str) -> str:
    return "".join(
        render_formula(piece, style) if is_math else html.escape(piece, quote=False)
        for is_math, piece in _split_tex(text)
    )


def page_html(
    *,
    site_name: str,
    title: str,
    body_html: str,
    rng: random.Random,
    head_extra: str = "",
    charset_meta: str | None = "utf-8",
) -> str:
    """A whole page: head, navigation, article, sidebar and footer boilerplate."""
    nav = "".join(
        f'<li><a href="/{item.lower().replace(" ", "-")}">{item}</a></li>' for item in NAV_ITEMS
    )
    related = "".join(
        f'<li><a href="/post/{rng.randint(1000, 9999)}">Related post {rng.randint(1, 99)}</a></li>'
        for _ in range(5)
    )
    meta = f'<meta charset="{charset_meta}">' if charset_meta else ""
    return (
        f"<!DOCTYPE html><html><head>{meta}<title>{html.escape(title)} | {html.escape(site_name)}"
        f"</title>{head_extra}</head><body>"
        f'<header><div class="logo">{html.escape(site_name)}</div><nav><ul>{nav}</ul></nav>'
        "</header>"
        f"<main><article><h1>{html.escape(title)}</h1>{body_html}</article></main>"
        f'<aside class="sidebar"><h3>Popular</h3><ul>{related}</ul>'
        '<p class="ad">Advertisement: subscribe to our newsletter for weekly updates.</p></aside>'
        f"<footer><p>© 2024 {html.escape(site_name)}. All rights reserved.</p>"
        '<p><a href="/privacy">Privacy policy</a> · <a href="/terms">Terms of use</a> · '
        '<a href="/cookies">Cookie settings</a></p></footer></body></html>'
    )


MATHJAX_HEAD = (
    '<script>window.MathJax = {tex: {inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]]}};</script>'
    '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>'
)


# --- math in forum words: the vocabulary a first seed of LaTeX problem sets does not cover ---

FORUM_QUESTIONS: tuple[Callable[[random.Random], str], ...] = (
    lambda r: (
        f"how do i factor x squared minus {r.randint(3, 9)} x plus {r.randint(2, 9)}? my teacher "
        "says factoring is quicker than the formula but i keep getting the signs wrong"
    ),
    lambda r: (
        f"stuck on homework: what is the slope of the line through the points {r.randint(1, 9)} "
        f"comma {r.randint(1, 9)} and {r.randint(1, 9)} comma {r.randint(1, 9)}? do i subtract "
        "the y values first or the x values"
    ),
    lambda r: (
        f"whats the derivative of {r.randint(2, 9)} x cubed plus sine of x? is it just the "
        "exponent times the coefficient and then cosine for the second part"
    ),
    lambda r: (
        f"area of a circle with radius {r.randint(2, 12)}? i squared the radius and multiplied "
        "by pi but the answer key has a different number"
    ),
    lambda r: (
        "can someone explain why you flip the inequality sign when you divide both sides by a "
        "negative number? it feels like a random rule"
    ),
    lambda r: (
        f"how many ways can you pick {r.randint(2, 5)} students out of {r.randint(8, 30)}? is "
        "it n choose k or n factorial, i always mix up combinations and permutations"
    ),
    lambda r: (
        f"is the square root of {r.choice([2, 3, 5, 6, 7, 8])} rational? my friend says yes "
        "because the calculator shows a number"
    ),
    lambda r: (
        f"what is the remainder when {r.randint(100, 999)} is divided by {r.randint(3, 12)}? "
        "long division gives me a decimal instead"
    ),
)

FORUM_REPLIES = (
    "you want two numbers that multiply to the constant term and add up to the middle "
    "coefficient, then set each bracket equal to zero",
    "rise over run: subtract the y values, then divide by the difference of the x values in "
    "the same order",
    "use the power rule, bring the exponent down and lower it by one, and the derivative of "
    "sine is cosine",
    "pi r squared, so square the radius first and multiply by pi, leave pi in the answer",
    "multiplying by a negative reverses the number line, so the smaller side becomes the "
    "bigger side and the sign flips",
    "order does not matter when you pick a group, so it is combinations, n choose k",
    "suppose it is a fraction in lowest terms, square both sides and show both the top and the "
    "bottom must be even, which is a contradiction",
    "thanks, that makes sense now! i forgot to check my answer by plugging it back in",
    "double check with a calculator but show your working, the teacher marks the steps",
    "the remainder is what is left after the biggest whole multiple, so do not divide all the "
    "way to decimals",
)

FORUM_CHATTER = (
    "Posted in the homework board.",
    "Edit: fixed a typo in the numbers.",
    "Any hint is welcome, I have a test on friday.",
    "Quote from the original post.",
)


def forum_math_thread(rng: random.Random, formula_item: MathItem | None = None) -> str:
    """A forum thread (body HTML) asking and answering a math question in plain words; with
    `formula_item`, a tutor's reply writes its solution in TeX (`$..$`)."""
    parts = [f"<p>{rng.choice(FORUM_CHATTER)}</p>"]
    for _ in range(rng.randint(2, 3)):
        parts.append(f"<p>{html.escape(rng.choice(FORUM_QUESTIONS)(rng))}</p>")
        for reply in rng.sample(FORUM_REPLIES, rng.randint(2, 3)):
            parts.append(f"<p>Reply: {html.escape(reply)}</p>")
    if formula_item is not None:
        parts.append(
            "<p>Tutor reply: "
            f"{render_math_text(formula_item.question, 'tex_dollar')} "
            f"{render_math_text(formula_item.answer, 'tex_dollar')}</p>"
        )
    return "".join(parts)


def seed_page_text(rng: random.Random, n_items: int) -> str:
    """The extracted text of a LaTeX problem-set page (what a seed corpus such as OpenWebMath
    holds): prose and problems with inline `$..$` TeX."""
    items = math_paragraphs(rng, n_items)
    lines = [rng.choice(MATH_PROSE)]
    for i, item in enumerate(items, start=1):
        lines.append(f"Problem {i}")
        lines.append(item.question)
        lines.append("Solution")
        lines.append(item.answer)
        lines.append(rng.choice(MATH_PROSE))
    return "\n".join(lines)
