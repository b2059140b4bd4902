"""Plain-text renderings: the article a word takes, and a download's megabytes."""

import pytest

from digitlab.formatting import indefinite_article, megabytes


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        (8, "an 8"),
        (3, "a 3"),
        (0, "a 0"),
        (1, "a 1"),
        (11, "an 11"),
        (18, "an 18"),
        (80, "an 80"),
        (110, "a 110"),
        ("18,000", "an 18,000"),
        (180000, "a 180000"),
        ("ink", "an ink"),
        ("digit", "a digit"),
    ],
)
def test_a_word_takes_the_article_it_is_read_aloud_with(word, expected):
    assert f"{indefinite_article(word)} {word}" == expected


def test_megabytes_say_how_far_a_download_is():
    assert megabytes(4_900_000, 9_900_000) == "4.9 of 9.9 MB"
    assert megabytes(4_900_000, None) == "4.9 MB"
