"""What a reader noticed while reading a return that the auditor should be asked about.

Readers never change what the auditor wrote in silence: where a file's text can be read
more than one way (typed beside the answer box, tracked changes, a date that could be
either day-month order), the reader stores what Office shows and leaves a `Note`, which
validation turns into a warning on the return.
"""

from __future__ import annotations

from dataclasses import dataclass

from formtool.errors import Issue, IssueCode


@dataclass(frozen=True)
class Note:
    """One warning found while reading: its code, the answer's key, and what was seen."""

    code: IssueCode
    field: str = ""
    value: str = ""
    expected: str = ""

    def issue(self, file: str, audit_id: str = "") -> Issue:
        return Issue(
            self.code, file, self.field, value=self.value, expected=self.expected, audit_id=audit_id
        )
