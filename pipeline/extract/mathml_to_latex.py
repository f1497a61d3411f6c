"""Presentation MathML to readable LaTeX, for pages whose MathML carries no TeX of its own.

The fallback of math_markup.py for `<math>` without a TeX annotation or `alttext`: it walks the
page's lxml tree, needs no extra dependency and takes well under a millisecond per formula. Why
not a PyPI converter, and the output style: docs/stages/extract.md.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable

import lxml.html
from lxml import etree

# Unicode characters that MathML carries as token text, and their TeX commands. The list
# covers what MathJax, Wikipedia and office converters emit for school and university maths.
UNICODE_TO_TEX: dict[str, str] = {
    # Greek, lower case (TeX's \epsilon is the lunate U+03F5; U+03B5 is \varepsilon).
    "α": r"\alpha", "β": r"\beta", "γ": r"\gamma", "δ": r"\delta", "ε": r"\varepsilon",
    "ϵ": r"\epsilon", "ζ": r"\zeta", "η": r"\eta", "θ": r"\theta", "ϑ": r"\vartheta",
    "ι": r"\iota", "κ": r"\kappa", "λ": r"\lambda", "μ": r"\mu", "ν": r"\nu", "ξ": r"\xi",
    "ο": "o", "π": r"\pi", "ϖ": r"\varpi", "ρ": r"\rho", "ϱ": r"\varrho", "σ": r"\sigma",
    "ς": r"\varsigma", "τ": r"\tau", "υ": r"\upsilon", "φ": r"\varphi", "ϕ": r"\phi",
    "χ": r"\chi", "ψ": r"\psi", "ω": r"\omega",
    # Greek, upper case (those without a TeX command are Latin look-alikes).
    "Γ": r"\Gamma", "Δ": r"\Delta", "Θ": r"\Theta", "Λ": r"\Lambda", "Ξ": r"\Xi",
    "Π": r"\Pi", "Σ": r"\Sigma", "Υ": r"\Upsilon", "Φ": r"\Phi", "Ψ": r"\Psi",
    "Ω": r"\Omega", "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K",
    "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Χ": "X",
    # Large operators.
    "∑": r"\sum", "∏": r"\prod", "∐": r"\coprod", "∫": r"\int", "∬": r"\iint",
    "∭": r"\iiint", "∮": r"\oint", "⋃": r"\bigcup", "⋂": r"\bigcap", "⨁": r"\bigoplus",
    "⨂": r"\bigotimes", "⋁": r"\bigvee", "⋀": r"\bigwedge", "⨆": r"\bigsqcup",
    # Relations.
    "≤": r"\leq", "≥": r"\geq", "≦": r"\leqq", "≧": r"\geqq", "⩽": r"\leqslant",
    "⩾": r"\geqslant", "≠": r"\neq", "≈": r"\approx", "≡": r"\equiv", "∼": r"\sim",
    "≃": r"\simeq", "≅": r"\cong", "∝": r"\propto", "∈": r"\in", "∉": r"\notin", "∋": r"\ni",
    "⊂": r"\subset", "⊃": r"\supset", "⊆": r"\subseteq", "⊇": r"\supseteq", "⊊": r"\subsetneq",
    "⊋": r"\supsetneq", "≪": r"\ll", "≫": r"\gg", "≺": r"\prec", "≻": r"\succ", "⪯": r"\preceq",
    "⪰": r"\succeq", "⊥": r"\perp", "∥": r"\parallel", "∣": r"\mid", "∤": r"\nmid",
    "⊢": r"\vdash", "⊨": r"\models", "≐": r"\doteq", "≍": r"\asymp", "≔": ":=", "≜": r"\triangleq",
    "≮": r"\nless", "≯": r"\ngtr", "≰": r"\nleq", "≱": r"\ngeq", "≉": r"\not\approx",
    "≢": r"\not\equiv", "⊄": r"\not\subset", "⊈": r"\nsubseteq",
    # Arrows.
    "→": r"\to", "←": r"\leftarrow", "↔": r"\leftrightarrow", "⇒": r"\Rightarrow",
    "⇐": r"\Leftarrow", "⇔": r"\Leftrightarrow", "⟶": r"\longrightarrow",
    "⟵": r"\longleftarrow", "⟷": r"\longleftrightarrow", "⟹": r"\Longrightarrow",
    "⟸": r"\Longleftarrow", "⟺": r"\iff", "↦": r"\mapsto", "⟼": r"\longmapsto",
    "↑": r"\uparrow", "↓": r"\downarrow", "⇑": r"\Uparrow", "⇓": r"\Downarrow",
    "↪": r"\hookrightarrow", "↩": r"\hookleftarrow", "⇝": r"\leadsto", "⇀": r"\rightharpoonup",
    "⇌": r"\rightleftharpoons", "↗": r"\nearrow", "↘": r"\searrow",
    # Binary operators.
    "±": r"\pm", "∓": r"\mp", "×": r"\times", "÷": r"\div", "·": r"\cdot", "⋅": r"\cdot",
    "∘": r"\circ", "∙": r"\bullet", "⊕": r"\oplus", "⊗": r"\otimes", "⊖": r"\ominus",
    "⊙": r"\odot", "∪": r"\cup", "∩": r"\cap", "∧": r"\wedge", "∨": r"\vee", "∖": r"\setminus",
    "⋆": r"\star", "∗": "*", "†": r"\dagger", "‡": r"\ddagger", "⊔": r"\sqcup", "⊓": r"\sqcap",
    "⋄": r"\diamond", "−": "-", "∕": "/", "⊎": r"\uplus", "≀": r"\wr", "⋉": r"\ltimes",
    "⋊": r"\rtimes", "⊲": r"\lhd", "⊳": r"\rhd",
    # Other symbols.
    "∞": r"\infty", "∂": r"\partial", "∇": r"\nabla", "∀": r"\forall", "∃": r"\exists",
    "∄": r"\nexists", "∅": r"\emptyset", "¬": r"\neg", "ℵ": r"\aleph", "ℏ": r"\hbar",
    "ℓ": r"\ell", "℘": r"\wp", "ℜ": r"\Re", "ℑ": r"\Im", "′": r"\prime", "″": r"\prime\prime",
    "…": r"\ldots", "⋯": r"\cdots", "⋮": r"\vdots", "⋱": r"\ddots", "°": r"^{\circ}",
    "∠": r"\angle", "∡": r"\measuredangle", "△": r"\triangle", "□": r"\square", "√": r"\surd",
    "⟨": r"\langle", "⟩": r"\rangle", "〈": r"\langle", "〉": r"\rangle", "⌈": r"\lceil",
    "⌉": r"\rceil", "⌊": r"\lfloor", "⌋": r"\rfloor", "‖": r"\|", "∴": r"\therefore",
    "∵": r"\because", "⊤": r"\top", "♯": r"\sharp", "♭": r"\flat", "✓": r"\checkmark",
    "ℕ": r"\mathbb{N}", "ℤ": r"\mathbb{Z}", "ℚ": r"\mathbb{Q}", "ℝ": r"\mathbb{R}",
    "ℂ": r"\mathbb{C}", "ℙ": r"\mathbb{P}", "ℍ": r"\mathbb{H}", "ı": r"\imath", "ȷ": r"\jmath",
    # Characters that are special to TeX itself.
    "{": r"\{", "}": r"\}", "%": r"\%", "#": r"\#", "&": r"\&", "$": r"\$", "\\": r"\backslash",
    "~": r"\sim", "^": r"\hat{}", "_": r"\_",
    # Spaces and invisible operators (function application, invisible times, separator, plus).
    "\u00a0": " ", "\u2009": r"\,", "\u2005": r"\;", "\u2003": r"\quad", "\u200b": "",
    "\u2061": "", "\u2062": "", "\u2063": "", "\u2064": "",
}  # fmt: skip

# Accents drawn over (mover) or under (munder) a base, by the character MathML puts there.
OVER_ACCENTS: dict[str, str] = {
    "¯": r"\bar", "‾": r"\overline", "_": r"\overline", "^": r"\hat", "ˆ": r"\hat",
    "̂": r"\hat", "~": r"\tilde", "˜": r"\tilde", "̃": r"\tilde", "→": r"\vec", "⃗": r"\vec",
    "˙": r"\dot", "̇": r"\dot", "¨": r"\ddot", "̈": r"\ddot", "ˇ": r"\check", "˘": r"\breve",
    "´": r"\acute", "`": r"\grave", "⏞": r"\overbrace", "︷": r"\overbrace",
    "⟶": r"\overrightarrow", "←": r"\overleftarrow", "↔": r"\overleftrightarrow",
}  # fmt: skip
UNDER_ACCENTS: dict[str, str] = {
    "_": r"\underline", "¯": r"\underline", "‾": r"\underline", "⏟": r"\underbrace",
    "︸": r"\underbrace",
}  # fmt: skip

# Multi-letter identifiers that TeX has as operator names (`\sin x`, `\lim_{n}`).
TEX_OPERATOR_NAMES = frozenset(
    [
        "sin",
        "cos",
        "tan",
        "cot",
        "sec",
        "csc",
        "arcsin",
        "arccos",
        "arctan",
        "sinh",
        "cosh",
        "tanh",
        "coth",
        "log",
        "ln",
        "lg",
        "exp",
        "lim",
        "liminf",
        "limsup",
        "max",
        "min",
        "sup",
        "inf",
        "det",
        "dim",
        "ker",
        "deg",
        "gcd",
        "arg",
        "hom",
        "Pr",
    ]
)
# Bases after which a sub/superscript (or munder/mover) means limits, not a decoration.
_LIMIT_BASES = frozenset(
    [
        r"\sum",
        r"\prod",
        r"\coprod",
        r"\int",
        r"\iint",
        r"\iiint",
        r"\oint",
        r"\bigcup",
        r"\bigcap",
        r"\bigoplus",
        r"\bigotimes",
        r"\bigvee",
        r"\bigwedge",
        r"\lim",
        r"\liminf",
        r"\limsup",
        r"\max",
        r"\min",
        r"\sup",
        r"\inf",
        r"\det",
        r"\gcd",
        r"\Pr",
    ]
)

_MATHVARIANT_COMMANDS: dict[str, str] = {
    "bold": r"\mathbf",
    "double-struck": r"\mathbb",
    "fraktur": r"\mathfrak",
    "script": r"\mathcal",
    "bold-script": r"\mathcal",
    "sans-serif": r"\mathsf",
    "monospace": r"\mathtt",
    "normal": r"\mathrm",
    "bold-italic": r"\boldsymbol",
}
# Styles named in Unicode's "MATHEMATICAL ..." alphanumerics (𝐱, 𝔸, 𝒜), longest first.
_UNICODE_STYLE_COMMANDS: tuple[tuple[str, str], ...] = (
    ("BOLD ITALIC", r"\boldsymbol"),
    ("BOLD SCRIPT", r"\mathcal"),
    ("BOLD FRAKTUR", r"\mathfrak"),
    ("SANS-SERIF BOLD", r"\mathsf"),
    ("SANS-SERIF", r"\mathsf"),
    ("DOUBLE-STRUCK", r"\mathbb"),
    ("FRAKTUR", r"\mathfrak"),
    ("SCRIPT", r"\mathcal"),
    ("MONOSPACE", r"\mathtt"),
    ("BOLD", r"\mathbf"),
    ("ITALIC", ""),
)

_ENDS_WITH_CONTROL_WORD = re.compile(r"\\[A-Za-z]+$")
_WHITESPACE = re.compile(r"\s+")
_TEXT_SPECIALS = str.maketrans({c: "\\" + c for c in "$%#&_{}"})
_SPACE_WIDTH = re.compile(r"^\s*(-?[\d.]+)\s*(em|ex|pt|px|mu)?\s*$")
_NAMED_SPACES = {
    "veryverythinmathspace": r"\,",
    "verythinmathspace": r"\,",
    "thinmathspace": r"\,",
    "mediummathspace": r"\:",
    "thickmathspace": r"\;",
    "verythickmathspace": r"\;",
    "veryverythickmathspace": r"\quad",
}


def local_name(element: etree._Element) -> str:
    """Tag name without namespace or prefix, lower case: `{ns}mi`, `m:mi`, `MI` -> `mi`."""
    tag = element.tag
    if not isinstance(tag, str):  # comments and processing instructions
        return ""
    if "}" in tag:
        tag = tag.rsplit("}", 1)[1]
    if ":" in tag:
        tag = tag.rsplit(":", 1)[1]
    return tag.lower()


def join_tex(parts: Iterable[str]) -> str:
    """Concatenate TeX pieces, with a space only where `\\alpha` would run into `x`."""
    out: list[str] = []
    prev = ""
    for part in parts:
        if not part:
            continue
        if part[0].isalpha() and _ends_with_control_word(prev):
            out.append(" ")
        out.append(part)
        prev = part
    return "".join(out)


def _ends_with_control_word(tex: str) -> bool:
    """True for `...\\alpha`: a letter after it would change the command's name."""
    if not tex or not tex[-1].isascii() or not tex[-1].isalpha():
        return False
    backslash = tex.rfind("\\")
    return backslash >= 0 and tex[backslash + 1 :].isalpha() and tex[backslash + 1 :].isascii()


def _char_to_tex(char: str) -> str:
    mapped = UNICODE_TO_TEX.get(char)
    if mapped is not None:
        return mapped
    if ord(char) < 0x1D400:  # below the Mathematical Alphanumeric Symbols block
        return char
    # 𝐱 is "MATHEMATICAL BOLD SMALL X": rebuild it as \mathbf{x}.
    name = unicodedata.name(char, "")
    if not name.startswith("MATHEMATICAL "):
        return char
    style = name[len("MATHEMATICAL ") :]
    base = unicodedata.normalize("NFKC", char)
    for prefix, command in _UNICODE_STYLE_COMMANDS:
        if style.startswith(prefix):
            base_tex = UNICODE_TO_TEX.get(base, base)
            return f"{command}{{{base_tex}}}" if command else base_tex
    return base


def text_to_tex(text: str) -> str:
    """Token text (already whitespace-trimmed) to TeX, character by character."""
    return join_tex(_char_to_tex(c) for c in text)


def _token_text(element: etree._Element) -> str:
    """All text of a token element, whitespace collapsed: pretty-printed pages pad tokens."""
    return " ".join("".join(element.itertext()).split())


def _with_variant(element: etree._Element, text: str) -> str:
    """Token text to TeX, wrapped in the command for its `mathvariant` (bold, blackboard...)."""
    tex = text_to_tex(text)
    variant = element.get("mathvariant", "")
    command = _MATHVARIANT_COMMANDS.get(variant)
    if not command or not tex:
        return tex
    # MathJax marks upright symbols (Γ, ∞, ∂, digits) "normal": TeX sets them upright anyway.
    if variant == "normal" and not (text.isascii() and text.isalpha()):
        return tex
    return f"{command}{{{tex}}}"


def _mi(element: etree._Element) -> str:
    text = _token_text(element)
    if not text:
        return ""
    if len(text) > 1 and text.isalpha() and text.isascii():
        if text in TEX_OPERATOR_NAMES:
            return "\\" + text
        variant = element.get("mathvariant")
        command = _MATHVARIANT_COMMANDS.get(variant or "normal", r"\mathrm")
        return f"{command}{{{text}}}"
    return _with_variant(element, text)


def _mn(element: etree._Element) -> str:
    return _with_variant(element, _token_text(element))


def _mo(element: etree._Element) -> str:
    text = _token_text(element)
    if text in TEX_OPERATOR_NAMES:
        return "\\" + text
    if len(text) > 1 and text.isalpha() and text.isascii():
        return rf"\operatorname{{{text}}}"
    return text_to_tex(text)


def _mtext(element: etree._Element) -> str:
    # MathML trims ordinary white space around token text; a no-break space is content
    # (TeX's `\text{for }` becomes `<mtext>for&nbsp;</mtext>`), so it is kept as a space.
    text = _WHITESPACE.sub(" ", "".join(element.itertext()).strip(" \t\r\n")).replace("\u00a0", " ")
    if not text.strip():
        return ""
    return rf"\text{{{text.translate(_TEXT_SPECIALS)}}}"


def _ms(element: etree._Element) -> str:
    text = _token_text(element).translate(_TEXT_SPECIALS)
    return rf'\text{{"{text}"}}'


def _mspace(element: etree._Element) -> str:
    if element.get("linebreak") == "newline":
        return r"\\"
    width = element.get("width", "")
    named = _NAMED_SPACES.get(width)
    if named:
        return named
    match = _SPACE_WIDTH.match(width)
    if not match:  # negative or unknown widths: TeX spacing is cosmetic, drop it
        return ""
    value = float(match.group(1))
    unit = match.group(2) or "em"
    em = (
        value
        if unit == "em"
        else value / 2
        if unit == "ex"
        else value / 18
        if unit == "mu"
        else value / 10
    )
    if em >= 1.9:
        return r"\qquad"
    if em >= 0.9:
        return r"\quad"
    if em >= 0.25:
        return r"\;"
    return r"\," if em > 0 else ""


def _children(element: etree._Element) -> list[etree._Element]:
    return [child for child in element if isinstance(child.tag, str)]


def _row(element: etree._Element) -> str:
    return join_tex(convert_element(child) for child in _children(element))


def _argument(element: etree._Element | None) -> str:
    return convert_element(element) if element is not None else ""


def _script_base(tex: str) -> str:
    """Wrap a base in braces when a script would otherwise bind to its last symbol only."""
    if len(tex) <= 1 or _ENDS_WITH_CONTROL_WORD.fullmatch(tex) or tex.isdigit():
        return tex
    if re.fullmatch(r"\\[A-Za-z]+\{[^{}]*\}", tex):  # \mathbf{x}, \bar{a}
        return tex
    return "{" + tex + "}"


def _nth(element: etree._Element, index: int) -> etree._Element | None:
    children = _children(element)
    return children[index] if index < len(children) else None


def _msup(element: etree._Element) -> str:
    base, sup = _argument(_nth(element, 0)), _argument(_nth(element, 1))
    compact = sup.replace(" ", "")
    if compact and not compact.replace(r"\prime", ""):  # f^{\prime} is written f'
        return _script_base(base) + "'" * (len(compact) // len(r"\prime"))
    return f"{_script_base(base)}^{{{sup}}}"


def _msub(element: etree._Element) -> str:
    base, sub = _argument(_nth(element, 0)), _argument(_nth(element, 1))
    return f"{_script_base(base)}_{{{sub}}}"


def _msubsup(element: etree._Element) -> str:
    base = _argument(_nth(element, 0))
    sub, sup = _argument(_nth(element, 1)), _argument(_nth(element, 2))
    return f"{_script_base(base)}_{{{sub}}}^{{{sup}}}"


def _mfrac(element: etree._Element) -> str:
    num, den = _argument(_nth(element, 0)), _argument(_nth(element, 1))
    thickness = element.get("linethickness", "").strip()
    if thickness in {"0", "0pt", "0px", "0em", "0.0"}:  # binomial-style stack, no bar
        return f"{{{num} \\atop {den}}}"
    return rf"\frac{{{num}}}{{{den}}}"


def _msqrt(element: etree._Element) -> str:
    return rf"\sqrt{{{_row(element)}}}"


def _mroot(element: etree._Element) -> str:
    base, index = _argument(_nth(element, 0)), _argument(_nth(element, 1))
    return rf"\sqrt[{index}]{{{base}}}"


def _accent_char(element: etree._Element | None) -> str:
    if element is None or local_name(element) != "mo":
        return ""
    return _token_text(element)


def _mover(element: etree._Element) -> str:
    base_el, over_el = _nth(element, 0), _nth(element, 1)
    base, over = _argument(base_el), _argument(over_el)
    accent = OVER_ACCENTS.get(_accent_char(over_el))
    if accent:
        return f"{accent}{{{base}}}"
    if base in _LIMIT_BASES:
        return f"{base}^{{{over}}}"
    return rf"\overset{{{over}}}{{{base}}}"


def _munder(element: etree._Element) -> str:
    base_el, under_el = _nth(element, 0), _nth(element, 1)
    base, under = _argument(base_el), _argument(under_el)
    accent = UNDER_ACCENTS.get(_accent_char(under_el))
    if accent:
        return f"{accent}{{{base}}}"
    if base in _LIMIT_BASES:
        return f"{base}_{{{under}}}"
    return rf"\underset{{{under}}}{{{base}}}"


def _munderover(element: etree._Element) -> str:
    base = _argument(_nth(element, 0))
    under, over = _argument(_nth(element, 1)), _argument(_nth(element, 2))
    if base in _LIMIT_BASES:
        return f"{base}_{{{under}}}^{{{over}}}"
    return rf"\overset{{{over}}}{{\underset{{{under}}}{{{base}}}}}"


def _mtable(element: etree._Element) -> str:
    rows = []
    for row in _children(element):
        name = local_name(row)
        if name not in {"mtr", "mlabeledtr"}:
            continue
        cells = _children(row)[1:] if name == "mlabeledtr" else _children(row)
        rows.append(" & ".join(convert_element(cell) for cell in cells))
    # MathJax writes `align` environments as tables whose columns alternate right/left.
    aligns = element.get("columnalign", "").split()
    env = "aligned" if aligns[:2] == ["right", "left"] else "matrix"
    return rf"\begin{{{env}}}" + r" \\ ".join(rows) + rf"\end{{{env}}}"


def _mfenced(element: etree._Element) -> str:
    opening = element.get("open", "(")
    closing = element.get("close", ")")
    separators = "".join((element.get("separators", ",") or "").split())
    parts: list[str] = []
    for i, child in enumerate(_children(element)):
        if i and separators:
            parts.append(text_to_tex(separators[min(i - 1, len(separators) - 1)]))
        parts.append(convert_element(child))
    return join_tex([text_to_tex(opening), *parts, text_to_tex(closing)])


def _mmultiscripts(element: etree._Element) -> str:
    children = _children(element)
    if not children:
        return ""
    base = _script_base(convert_element(children[0]))
    post: list[str] = []
    pre: list[str] = []
    target = post
    for child in children[1:]:
        if local_name(child) == "mprescripts":
            target = pre
            continue
        target.append("" if local_name(child) == "none" else convert_element(child))

    def scripts(pairs: list[str]) -> str:
        out = []
        for i in range(0, len(pairs) - 1, 2):
            sub, sup = pairs[i], pairs[i + 1]
            out.append((f"_{{{sub}}}" if sub else "") + (f"^{{{sup}}}" if sup else ""))
        return "".join(out)

    prefix = "{}" + scripts(pre) if pre else ""
    return prefix + base + scripts(post)


def _semantics(element: etree._Element) -> str:
    tex = annotation_tex(element)
    if tex:
        return tex
    first = _nth(element, 0)
    return _argument(first) if first is not None and local_name(first) != "annotation" else ""


def _first_child(element: etree._Element) -> str:
    return _argument(_nth(element, 0))


def _nothing(_element: etree._Element) -> str:
    return ""


_CONVERTERS: dict[str, Callable[[etree._Element], str]] = {
    "math": _row,
    "mrow": _row,
    "mstyle": _row,
    "mpadded": _row,
    "menclose": _row,
    "merror": _row,
    "mtd": _row,
    "mi": _mi,
    "mn": _mn,
    "mo": _mo,
    "mtext": _mtext,
    "ms": _ms,
    "mspace": _mspace,
    "msup": _msup,
    "msub": _msub,
    "msubsup": _msubsup,
    "mfrac": _mfrac,
    "msqrt": _msqrt,
    "mroot": _mroot,
    "mover": _mover,
    "munder": _munder,
    "munderover": _munderover,
    "mtable": _mtable,
    "mfenced": _mfenced,
    "mmultiscripts": _mmultiscripts,
    "semantics": _semantics,
    "maction": _first_child,
    "mphantom": _nothing,  # invisible by definition: spacing only
    "annotation": _nothing,
    "annotation-xml": _nothing,
    "none": _nothing,
    "mprescripts": _nothing,
    "mglyph": _nothing,
}


def convert_element(element: etree._Element) -> str:
    """One MathML element (any namespace or prefix) to TeX; unknown tags yield their children."""
    converter = _CONVERTERS.get(local_name(element))
    if converter is not None:
        return converter(element)
    if not isinstance(element.tag, str):
        return ""
    if len(element):
        return _row(element)
    return text_to_tex(_token_text(element))


_TEX_ENCODINGS = frozenset(
    {"application/x-tex", "tex", "text/x-tex", "latex", "application/x-latex"}
)


# XPath (C speed) rather than a Python walk: Wikipedia formulas have hundreds of nodes.
_ANNOTATIONS = etree.XPath(
    "descendant-or-self::*[local-name()='annotation'"
    " or substring-after(local-name(), ':')='annotation']"
)


def annotation_tex(element: etree._Element) -> str:
    """The TeX source kept in an `<annotation encoding="application/x-tex">` under element."""
    for node in _ANNOTATIONS(element):
        if node.get("encoding", "").lower() in _TEX_ENCODINGS:
            tex = "".join(node.itertext()).strip()
            if tex:
                return tex
    return ""


def mathml_to_latex(math: etree._Element) -> str:
    """A `<math>` element to TeX: its TeX annotation, else its `alttext`, else converted."""
    tex = annotation_tex(math)
    if tex:
        return tex
    alttext = (math.get("alttext") or "").strip()
    if alttext:
        return alttext
    try:
        return convert_element(math).strip()
    except RecursionError:  # pathologically deep markup: its text is the best we can do
        return _token_text(math)


def convert_mathml(markup: str) -> str:
    """MathML markup (a string with one `<math>` root) to TeX; for tests and one-off use."""
    # The HTML parser, as for pages: it knows HTML5's named entities (&InvisibleTimes;).
    root = lxml.html.fragment_fromstring(markup, create_parent="div")
    for element in root.iter():
        if local_name(element) == "math":
            return mathml_to_latex(element)
    return convert_element(root).strip()
