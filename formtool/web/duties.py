"""What a running `formtool serve` does besides answering pages: it keeps a heartbeat row in the
database fresh (so `formtool restore` knows a server holds the database), purges the access
log daily and, with `--backup-dir`, takes a backup every night. None ever takes the server
down: a failure is logged to stderr (naming no child, case or file) and tried again next time.

With several workers (`serve --workers N`, or several hosts on one database) each keeps its own
heartbeat, but the daily and nightly duties are claimed in the database (`duty_claims`, one
row per duty and day): the first worker to claim does the work, the others skip that day. A
round that fails gives its claim back, so the next attempt may take it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import os
import socket
import uuid
from collections.abc import Callable
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
#: How often each worker tries to claim the day's purge (the first claim of a day wins).
PURGE_CHECK_SECONDS = 3600.0


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


def night_of(at: dt.datetime, hour: int) -> dt.date:
    """The night a backup at `at` (aware) belongs to: the England date of the last `hour`:00
    at or before it. Every worker waking for the same night names the same day."""
    return (at.astimezone(ENGLAND) - dt.timedelta(hours=hour)).date()


def backup_duty(folder: Path) -> str:
    """The duty of backing up into `folder`: one claim a night per folder path, so workers
    giving the same path take one backup between them. Hosts giving the same path to folders
    of their own also share the claim (one host backs up): give each host a path of its own,
    or a folder on shared storage (README)."""
    return "backup " + hashlib.sha256(str(folder.absolute()).encode()).hexdigest()[:32]


#: The daily purge's duty name in duty_claims.
PURGE_DUTY = "purge access log"

#: A daily purge: True when done, False when this database role may not purge (stop trying).
Purge = Callable[[], bool]


class ServerDuties:
    """Started and stopped by the app's lifespan."""

    def __init__(
        self,
        db: Store,
        heartbeat: bool,
        backups: NightlyBackups | None,
        every: float = HEARTBEAT_SECONDS,
        purge: Purge | None = None,
        tidy: Callable[[], object] | None = None,
    ) -> None:
        self.db, self.heartbeat, self.backups, self.every = db, heartbeat, backups, every
        self.purge, self.tidy = purge, tidy
        self.server = uuid.uuid4().hex
        self._tasks: list[asyncio.Task[None]] = []
        self._failing = False

    async def start(self) -> None:
        if self.heartbeat:
            await self._beat()  # before the first page: restore sees the server at once
            self._tasks.append(asyncio.create_task(self._keep_beating()))
        if self.purge is not None:
            self._tasks.append(asyncio.create_task(self._daily(self.purge)))
        if self.backups is not None:
            self._tasks.append(asyncio.create_task(self._nightly(self.backups)))

    async def claim(self, duty: str, day: dt.date) -> bool:
        """Whether this worker does `duty` for `day` (the first claim across all wins)."""
        host = socket.gethostname()
        return bool(await call(self.db.claim_duty, duty, day, self.server, host, os.getpid()))

    async def _daily(self, purge: Purge) -> None:
        """The access log's retention and old sign-in counts, once a day across all workers:
        each tries to claim the day every PURGE_CHECK_SECONDS. A failure is logged and the
        claim given back."""
        while True:
            day = dt.datetime.now(ENGLAND).date()  # real time: a calendar day of duty
            try:
                if await self.claim(PURGE_DUTY, day) and not await self._purge(purge, day):
                    return
            except Exception as exc:  # the database is away: the next round tries again
                log.error("The daily access-log purge failed: %s", printable(exc, 300))
            await asyncio.sleep(PURGE_CHECK_SECONDS)

    async def _purge(self, purge: Purge, day: dt.date) -> bool:
        try:
            return bool(await call(purge))
        except Exception:
            await call(self.db.release_duty, PURGE_DUTY, day, self.server)
            raise

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
            await self._tidy()

    async def _tidy(self) -> None:
        """`tidy` (expired allocation previews and their uploaded files removed) with each
        heartbeat, so children's data uploaded for a preview nobody confirmed goes within
        half a minute of its expiry, whichever worker made it."""
        if self.tidy is None:
            return
        try:
            await call(self.tidy)
        except Exception as exc:  # the database is away: the next beat tries again
            log.warning("Expired allocation previews were not removed: %s", printable(exc, 300))

    async def _nightly(self, plan: NightlyBackups) -> None:
        """One round a night, taken by the worker that claims the night; whatever fails in a
        round (the folder cannot be listed, the backup cannot be taken) is one line on stderr,
        and the next night comes all the same."""
        first = True
        while True:
            try:
                if first:  # at start: unless the folder has a backup from the last day
                    first = False
                    if await call(recent_backup, plan.folder, dt.timedelta(days=1)) is None:
                        await self._claimed_backup(plan)
                else:
                    await self._claimed_backup(plan)
            except Exception as exc:
                log.error("The nightly backup to %s failed: %s", plan.folder, printable(exc, 500))
            # Waiting is clock arithmetic and sleep: only stopping the server ends it.
            due = next_backup_at(dt.datetime.now(dt.UTC), plan.hour)  # real time
            while (wait := (due - dt.datetime.now(dt.UTC)).total_seconds()) > 0:  # real time
                await asyncio.sleep(min(wait, 3600))  # re-read the clock at least hourly

    async def _claimed_backup(self, plan: NightlyBackups) -> None:
        """The night's backup if this worker claims it first; a failed one is given back."""
        duty = backup_duty(plan.folder)
        night = night_of(dt.datetime.now(dt.UTC), plan.hour)  # real time
        if not await self.claim(duty, night):
            log.info("The backup to %s of the night of %s is claimed already.", plan.folder, night)
            return
        try:
            await self._back_up(plan)
        except Exception:
            await call(self.db.release_duty, duty, night, self.server)
            raise

    async def _back_up(self, plan: NightlyBackups) -> None:
        report = await call(self.db.backup, plan.folder, SERVER_USER, plan.keep)
        log.info("Backup written and verified: %s (%d rows)", report.path, report.rows)
