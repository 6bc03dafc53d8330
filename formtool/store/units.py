"""What every part of the `Store` facade shares: the engine, and the one way to open a unit of
work (a connection to read, a transaction to write). The facade is one object made of a few
classes by subject (facade.py for the audit cycle; data protection and sign-in each in their
own module) so that each subject's methods sit beside the SQL they run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from formtool.store.engine import masked, transaction


class Units:
    """The engine and how a method opens its unit of work."""

    def __init__(self, engine: sa.Engine, read_only: bool = False) -> None:
        self.engine = engine  # for store/ itself, migrations and tests
        #: Opened read-only (a read-only SQLite file or folder): nothing can be recorded, not
        #: even in the access log, so output with personal data is refused (see cli.py).
        self.read_only = read_only

    @property
    def url(self) -> str:
        """The database URL with any password masked, for messages."""
        return masked(self.engine.url)

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn:
            yield conn

    def _write(self) -> Any:
        return transaction(self.engine)
