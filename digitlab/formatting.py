"""Plain-text renderings shared by the command line, the benchmark, the README and the dashboard."""

from collections.abc import Sequence

MEGABYTE = 1_000_000


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table with every cell rendered by ``str``."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def megabytes(done: int, total: int | None) -> str:
    """Bytes so far of a download in megabytes: ``4.9 of 9.9 MB``, or ``4.9 MB`` when the size is not known."""
    so_far = f"{done / MEGABYTE:.1f}"
    return f"{so_far} of {total / MEGABYTE:.1f} MB" if total else f"{so_far} MB"


def indefinite_article(word: object) -> str:
    """``a`` or ``an``, as ``word`` takes it when read aloud: a 3, an 8, an 11, an ink.

    Numbers go by how they are spoken (eight, eleven and eighteen start with a vowel sound);
    words go by their first letter, which suits the dashboard's plain words.
    """
    text = str(word)
    digits = text.replace(",", "")
    if digits.isdigit():
        # Thousands are read in groups of three: 18,000 is "eighteen thousand", 180,000 "one hundred and eighty".
        leading = digits[: len(digits) % 3 or 3]
        return "an" if leading.startswith("8") or leading in ("11", "18") else "a"
    return "an" if text[:1].lower() in ("a", "e", "i", "o", "u") else "a"
