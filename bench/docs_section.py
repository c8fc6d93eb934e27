"""Each benchmark renders its own section of docs/benchmarks.md between two markers; the rest of
the file is left as it is."""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def write_section(start: str, end: str, block: str, docs: Path = DOCS) -> None:
    """Replace the text from `start` to `end` (markers included) with `block`, which begins with
    `start` and ends with `end`; append it when the markers are not there yet."""
    text = docs.read_text()
    if start in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    docs.write_text(text)
