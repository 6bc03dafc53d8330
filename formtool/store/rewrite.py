"""Texts and what each becomes, matched as whole words whatever their case: how a correction
rewrites an old value, how an erasure takes identifiers out of the access log, and how a
member of staff's copy hides the audits that are not theirs. One matcher, so "Riley" is never
found inside "Rileys" by one of them and missed by another."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any


@dataclass(frozen=True)
class Rewrite:
    """Old texts and what each becomes, matched as whole words whatever their case."""

    terms: Mapping[str, str]

    @cached_property
    def pattern(self) -> re.Pattern[str] | None:
        olds = sorted({t for t in self.terms if t.strip()}, key=len, reverse=True)
        if not olds:
            return None
        return re.compile(
            r"(?<!\w)(?:" + "|".join(re.escape(t) for t in olds) + r")(?!\w)", re.IGNORECASE
        )

    @cached_property
    def folded(self) -> dict[str, str]:
        return {k.casefold(): v for k, v in self.terms.items()}

    def finds(self, value: object) -> bool:
        """Whether `value` holds one of the old texts as a whole word."""
        return (
            isinstance(value, str) and self.pattern is not None and bool(self.pattern.search(value))
        )

    def text(self, value: str) -> str:
        if self.pattern is None or not value:
            return value
        return self.pattern.sub(lambda m: self.folded.get(m[0].casefold(), m[0]), value)

    def facts(self, value: str, field: str = "") -> str:
        """JSON text (facts, warnings) with every string in it rewritten; a value under the
        key `field` is replaced whole when it is one of the old texts."""
        try:
            data = json.loads(value)
        except ValueError:
            return self.text(value)
        changed = self._walk(data, field)
        return value if changed == data else json.dumps(changed, ensure_ascii=False)

    def _walk(self, data: Any, field: str, key: str = "") -> Any:
        if isinstance(data, str):
            if key and key == field and data.casefold() in self.folded:
                return self.folded[data.casefold()]
            return self.text(data)
        if isinstance(data, dict):
            return {k: self._walk(v, field, k) for k, v in data.items()}
        if isinstance(data, list):
            return [self._walk(v, field) for v in data]
        return data
