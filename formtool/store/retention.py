"""Retention: what each record kind holds past its period, and its removal."""

from __future__ import annotations

from formtool.store.units import Units


class RetentionStore(Units):
    """The Store's methods for this subject (see units.py)."""
