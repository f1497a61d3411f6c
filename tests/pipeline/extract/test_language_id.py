"""Language id (lid.176, offline): the truncated sample agrees with the whole text on real pages."""

from __future__ import annotations

from pipeline.extract.language_id import DEFAULT_MAX_CHARS, LanguageIdentifier, shared_identifier


def test_empty_text_is_undetermined_and_languages_are_told_apart() -> None:
    identify = shared_identifier().identify
    assert identify("   \n ").language == "und"
    english = identify("The derivative of a polynomial is found term by term, as shown below.")
    chinese = identify("求函数的导数，并说明它在区间上的单调性。这是一道微积分的练习题。")
    german = identify("Die Ableitung eines Polynoms wird gliedweise berechnet, wie unten gezeigt.")
    assert (english.language, chinese.language, german.language) == ("en", "zh", "de")
    assert 0.5 < english.score <= 1.0


def test_default_sample_gives_the_whole_texts_language_on_real_pages(
    real_page_texts: list[tuple[dict[str, str], str]],
) -> None:
    # The default reads only the first DEFAULT_MAX_CHARS characters (cost is linear in them):
    # on the real pages that must not change any page's language.
    short = shared_identifier()
    whole = LanguageIdentifier(max_chars=10**9)
    longer_than_sample = 0
    for row, text in real_page_texts:
        longer_than_sample += len(text) > DEFAULT_MAX_CHARS
        assert short.identify(text).language == whole.identify(text).language, row["filename"]
    assert longer_than_sample > len(real_page_texts) // 2  # the check is not vacuous
