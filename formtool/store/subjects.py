"""Subject access, correction and erasure for one child or member of staff."""

from __future__ import annotations

from formtool.store.units import Units


class SubjectStore(Units):
    """The Store's methods for this subject (see units.py)."""
