"""Answer extraction and normalisation: the part of a benchmark score that is pure text.

GSM8K and CMATH: the answer is the last number of the generated text (lm-eval's gsm8k-cot
"flexible-extract"), normalised (thousands commas, `$`, trailing `.`/`.0` removed). MATH: the
content of the last `\\boxed{...}` (balanced braces, as Hendrycks et al. 2021's
`last_boxed_only_string`), normalised by their `strip_string` (`normalize_math_answer` below,
ported line by line) and compared for equality: the rule of the MATH paper, which DeepSeekMath's
evaluation also applies before its own equivalence checks. No sympy: equal normal forms only.
"""

from __future__ import annotations

import re
from fractions import Fraction

_NUMBER = re.compile(r"-?[\d,]*\.?\d+")
_NUMBER_OR_FRACTION = re.compile(r"-?[\d,]*\.?\d+(?:/\d+)?")


def normalize_number(text: str) -> str:
    """`1,234.50` -> `1234.5`, `$18.00` -> `18`, `-3.` -> `-3`, `40%` -> `40`: the canonical
    written number (CMATH's golds carry `%`; the percent sign is dropped on both sides)."""
    text = text.strip().replace(",", "").replace("$", "").replace("%", "").rstrip(".")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("", "-"):
        return text
    if text.startswith("-0") and text.strip("-0.") == "":
        return "0"
    return text


def last_number(text: str) -> str | None:
    """The last number written in `text`, normalised; None when there is none."""
    found = _NUMBER.findall(text)
    return normalize_number(found[-1]) if found else None


def last_number_or_fraction(text: str) -> str | None:
    """As last_number, but `3/4` is one answer (CMATH's golds include fractions)."""
    found = _NUMBER_OR_FRACTION.findall(text)
    return normalize_number(found[-1]) if found else None


def numbers_equal(predicted: str | None, gold: str) -> bool:
    """Equal as exact rationals (`18.0` = `18`, `72/180` = `2/5`), else as normalised text."""
    if predicted is None:
        return False
    try:
        return Fraction(normalize_number(predicted)) == Fraction(normalize_number(gold))
    except (ValueError, ZeroDivisionError):
        return normalize_number(predicted) == normalize_number(gold)


def gsm8k_gold_answer(solution: str) -> str:
    """The number after `####` in a GSM8K solution, normalised."""
    return normalize_number(solution.split("####")[-1])


def gsm8k_gold_chain(solution: str) -> str:
    """A GSM8K solution written as the exemplars answer: calculator annotations `<<...>>`
    removed and `#### 18` turned into `The answer is 18.` (the text whose NLL is reported)."""
    body, _, answer = solution.partition("####")
    body = re.sub(r"<<[^>]*>>", "", body).strip()
    return f"{body} The answer is {answer.strip()}."


# --- MATH: the last \boxed{...} ------------------------------------------------------------


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`, or `\\boxed x`) of `text`."""
    at = text.rfind("\\boxed")
    if at < 0:
        at = text.rfind("\\fbox")
        if at < 0:
            return None
    rest = text[at:]
    if rest.startswith("\\boxed "):  # `\boxed 5`: up to the closing `$` or the end
        return rest[len("\\boxed ") :].split("$")[0].strip()
    open_at = rest.find("{")
    if open_at < 0:
        return None
    depth = 0
    for i in range(open_at, len(rest)):
        if rest[i] == "{":
            depth += 1
        elif rest[i] == "}":
            depth -= 1
            if depth == 0:
                return rest[open_at + 1 : i]
    return None  # unbalanced: the generation stopped inside the box


def final_answer_line(text: str) -> str | None:
    """Minerva's `Final Answer: The final answer is X. I hope it is correct.` -> X (the
    fallback when a generation has no box)."""
    match = re.search(r"[Ff]inal [Aa]nswer: The final answer is (.*?)\. I hope", text)
    if not match:
        return None
    return match.group(1).strip().strip("$")


def math_answer(text: str) -> str | None:
    """The answer of a generated MATH solution: the last box, else Minerva's final line."""
    boxed = last_boxed(text)
    return boxed if boxed is not None else final_answer_line(text)


def _fix_fracs(string: str) -> str:
    """`\\frac12` -> `\\frac{1}{2}`, `\\frac1{72}` -> `\\frac{1}{72}` (Hendrycks)."""
    substrs = string.split("\\frac")
    new_str = substrs[0]
    for substr in substrs[1:]:
        new_str += "\\frac"
        if substr.startswith("{"):
            new_str += substr
            continue
        if len(substr) < 2:
            return string
        a, b = substr[0], substr[1]
        if b != "{":
            new_str += "{" + a + "}{" + b + "}" + substr[2:]
        else:
            new_str += "{" + a + "}" + b + substr[2:]
    return new_str


def _fix_a_slash_b(string: str) -> str:
    """`3/4` (integers only) -> `\\frac{3}{4}` (Hendrycks)."""
    parts = string.split("/")
    if len(parts) != 2:
        return string
    try:
        a, b = int(parts[0]), int(parts[1])
    except ValueError:
        return string
    if string != f"{a}/{b}":
        return string
    return "\\frac{" + str(a) + "}{" + str(b) + "}"


def _remove_right_units(string: str) -> str:
    """`5\\text{ cm}` -> `5`: in MATH, `\\text{ ` (with the space) only ever starts a unit."""
    if "\\text{ " in string:
        return string.split("\\text{ ")[0]
    return string


def _fix_sqrt(string: str) -> str:
    """`\\sqrt3` -> `\\sqrt{3}` (Hendrycks)."""
    if "\\sqrt" not in string:
        return string
    splits = string.split("\\sqrt")
    new_string = splits[0]
    for split in splits[1:]:
        if split and split[0] != "{":
            new_string += "\\sqrt{" + split[0] + "}" + split[1:]
        else:
            new_string += "\\sqrt" + split
    return new_string


def normalize_math_answer(string: str) -> str:
    """Hendrycks et al. 2021's `strip_string` (the MATH repository's math_equivalence.py).

    Kept step for step, with two additions of ours (marked): surrounding `$` and a trailing
    period are removed first, as generations often end a sentence with the answer.
    """
    string = string.strip().removesuffix(".").strip("$").strip()  # ours
    string = string.removesuffix(".")  # ours
    string = string.replace("\n", "")  # line breaks
    string = string.replace("\\!", "")  # negative thin spaces
    string = string.replace("\\\\", "\\")
    string = string.replace("tfrac", "frac").replace("dfrac", "frac")
    string = string.replace("\\left", "").replace("\\right", "")
    string = string.replace("^{\\circ}", "").replace("^\\circ", "")  # degrees
    string = string.replace("\\$", "")  # dollar signs
    string = _remove_right_units(string)
    string = string.replace("\\%", "").replace("%", "")  # percent (their "\%" was "%")
    # " 0." is " ." and "{0." is "{.": add the 0 when a number starts with "."
    string = string.replace(" .", " 0.").replace("{.", "{0.")
    if not string:
        return string
    if string[0] == ".":
        string = "0" + string
    # `k = 3` -> `3` when the left side is at most two characters
    parts = string.split("=")
    if len(parts) == 2 and len(parts[0]) <= 2:
        string = parts[1]
    string = _fix_sqrt(string)
    string = string.replace(" ", "")
    string = _fix_fracs(string)
    if string == "0.5":
        string = "\\frac{1}{2}"
    return _fix_a_slash_b(string)


def math_equal(predicted: str | None, gold: str) -> bool:
    """Equal after normalisation (Hendrycks' `is_equiv`; None, no answer, is never equal)."""
    if predicted is None:
        return False
    return normalize_math_answer(predicted) == normalize_math_answer(gold)
