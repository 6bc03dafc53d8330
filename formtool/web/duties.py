"""What a running `formtool serve` does besides answering pages: it keeps a heartbeat row in the
database fresh (so `formtool restore` knows a server holds the database) and, with
`--backup-dir`, takes a backup every night. Neither ever takes the server down: a failure is
logged to stderr (naming no child, case or file) and tried again next time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

from formtool.clock import ENGLAND
from formtool.errors import printable
from formtool.store import Store, recent_backup
from formtool.web.pages import call

log = logging.getLogger("formtool.web")

#: How often the heartbeat is refreshed (restore counts a server as running for 2 minutes).
HEARTBEAT_SECONDS = 30.0
#: Who the access log names for the nightly backup.
SERVER_USER = "formtool serve"


@dataclass(frozen=True)
class NightlyBackups:
    """`serve --backup-dir DIR --keep N`: a backup into `folder` every night at `hour` (England),
    and one at start unless the folder has one from the last day; the newest `keep` stay."""

    folder: Path
    keep: int = 14
    hour: int = 2


def next_backup_at(after: dt.datetime, hour: int) -> dt.datetime:
    """The first `hour`:00 in England strictly after `after` (aware), as an aware UTC time."""
    local = after.astimezone(ENGLAND)
    due = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if due <= local:
        due = (local + dt.timedelta(days=1)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return due.astimezone(dt.UTC)


class ServerDuties:
    """Started and stopped by the app's lifespan."""

    def __init__(
        self,
        db: Store,
        heartbeat: bool,
        backups: NightlyBackups | None,
        every: float = HEARTBEAT_SECONDS,
    ) -> None:
        self.db, self.heartbeat, self.backups, self.every = db, heartbeat, backups, every
        self.server = uuid.uuid4().hex
        self._tasks: list[asyncio.Task[None]] = []
        self._failing = False

    async def start(self) -> None:
        if self.heartbeat:
            await self._beat()  # before the first page: restore sees the server at once
            self._tasks.append(asyncio.create_task(self._keep_beating()))
        if self.backups is not None:
            self._tasks.append(asyncio.create_task(self._nightly(self.backups)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.heartbeat:
            try:
                await call(self.db.server_stopped, self.server)
            except Exception as exc:  # the database went away: the row goes stale in 2 minutes
                log.warning("Could not remove this server's heartbeat: %s", printable(exc, 300))

    async def _beat(self) -> None:
        try:
            await call(self.db.server_beat, self.server, socket.gethostname(), os.getpid())
        except Exception as exc:  # said once per outage, not every 30 s
            if not self._failing:
                log.warning(
                    "Could not record this server's heartbeat (%s); formtool restore may not "
                    "see that it runs. Trying again every %d s.",
                    printable(exc, 300),
                    self.every,
                )
            self._failing = True
            return
        if self._failing:
            log.warning("This server's heartbeat is recorded again.")
        self._failing = False

    async def _keep_beating(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            await self._beat()

    async def _nightly(self, plan: NightlyBackups) -> None:
        """One round a night; whatever fails in a round (the folder cannot be listed, the
        backup cannot be taken) is one line on stderr, and the next night comes all the same."""
        first = True
        while True:
            try:
                if first:  # at start: unless the folder has a backup from the last day
                    first = False
                    if await call(recent_backup, plan.folder, dt.timedelta(days=1)) is None:
                        await self._back_up(plan)
                else:
                    await self._back_up(plan)
            except Exception as exc:
                log.error("The nightly backup to %s failed: %s", plan.folder, printable(exc, 500))
            # Waiting is clock arithmetic and sleep: only stopping the server ends it.
            due = next_backup_at(dt.datetime.now(dt.UTC), plan.hour)  # real time
            while (wait := (due - dt.datetime.now(dt.UTC)).total_seconds()) > 0:  # real time
                await asyncio.sleep(min(wait, 3600))  # re-read the clock at least hourly

    async def _back_up(self, plan: NightlyBackups) -> None:
        report = await call(self.db.backup, plan.folder, SERVER_USER, plan.keep)
        log.info("Backup written and verified: %s (%d rows)", report.path, report.rows)
