"""How much a returned file may hold, and the budget that enforces it while reading.

The limits are generous for real forms (an evidence box of 8,000 words, a file of 20 MB)
and small enough that no file, however built, can make an import use much memory or time.
"""

from __future__ import annotations

from collections import defaultdict

from formtool.errors import IssueCode, Rejected

MAX_FILE_BYTES = 20 * 1024 * 1024  # a form or an email carrying forms
MAX_FIELD_CHARS = 50_000  # one answer: about 8,000 words
MAX_TEXT_CHARS = 2_000_000  # everything read from one file
MAX_ROWS = 200  # rows of one action table (forms have 10; auditors add a few)


def _chars(count: int) -> str:
    return f"{count:,} characters"


class TextBudget:
    """Text gathered per key, cut at the per-field cap; the whole file at the total cap."""

    field_limit = MAX_FIELD_CHARS

    def __init__(self) -> None:
        self._parts: dict[str, list[str]] = defaultdict(list)
        self._sizes: dict[str, int] = {}
        self._total = 0

    def seen(self, key: str) -> bool:
        return key in self._sizes

    def start(self, key: str) -> None:
        self._sizes[key] = 0

    def add(self, key: str, piece: str) -> None:
        size = self._sizes.get(key, 0)
        if size > MAX_FIELD_CHARS:
            return  # already over: reported by texts()
        self._sizes[key] = size + len(piece)
        self._count(len(piece))
        self._parts[key].append(piece)

    def take(self, key: str, text: str) -> str:
        """Account for a whole text read at once (already cut to field_limit + 1)."""
        self._count(len(text))
        if len(text) > MAX_FIELD_CHARS:
            raise Rejected(
                IssueCode.field_too_long,
                f"over {_chars(MAX_FIELD_CHARS)}",
                _chars(MAX_FIELD_CHARS),
                field=key,
            )
        return text

    def _count(self, size: int) -> None:
        self._total += size
        if self._total > MAX_TEXT_CHARS:
            raise Rejected(
                IssueCode.too_much_text, f"over {_chars(MAX_TEXT_CHARS)}", _chars(MAX_TEXT_CHARS)
            )

    def texts(self) -> dict[str, str]:
        for key, size in self._sizes.items():
            if size > MAX_FIELD_CHARS:
                raise Rejected(
                    IssueCode.field_too_long,
                    f"over {_chars(MAX_FIELD_CHARS)}",
                    _chars(MAX_FIELD_CHARS),
                    field=key,
                )
        return {key: "".join(self._parts.get(key, ())).strip() for key in self._sizes}
