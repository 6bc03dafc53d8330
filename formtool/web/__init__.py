"""The web workspace (`formtool serve`): the monthly cycle in a browser, on the same store and
the same library functions as the command line; and the auditors' web form (webform.py), a
third way to answer an audit tool, through a private link and a one-time code.

Secure by default, because it holds children's personal data:

- it listens on 127.0.0.1 unless told otherwise, and refuses any other address until at least
  one account exists (`formtool users add NAME --role officer --role admin`);
- with no account at all, every page shows how to create the first one and nothing else;
- accounts have roles (viewer, officer, moderator, admin: formtool.access.roles.ROLES), checked
  on every route; passwords follow a policy and are argon2 hashes, computed a few at a time;
  failed sign-ins slow down per address and per account+address, counted in the database;
- sessions are server-side: the cookie holds a random id (HttpOnly, SameSite=Lax, Secure behind
  HTTPS), the database its SHA-256; sign-out, password and role changes end them, and so do
  the idle and absolute lifetimes; every form carries a CSRF token bound to the session;
- uploads are limited per file, per request and in number while they stream, and a request
  body must arrive in time; everything is escaped; a strict Content-Security-Policy allows no
  inline script; pages are never cached;
- every action is recorded in the audit's events with `web:<user name>`, and every sign-in and
  view or download of personal data in the access log; the server's own log names no child,
  case or file;
- X-Forwarded-* headers count only from the proxy named by `serve --proxy`;
- everything it serves ships in the package: no CDN, no internet needed.

`serve --workers N` binds the socket once and forks N uvicorn processes that accept on it.
What a request needs from an earlier one lives in the database (sessions, the sign-in
throttle, allocation previews, the reports' generation, the claims of background duties), so
any worker, or any host behind a reverse proxy on the same PostgreSQL, can answer it. The
workers of one server share its private folder (generated forms, .eml drafts).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import select
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from formtool.errors import printable
from formtool.web.app import MailConfig, create_app
from formtool.web.duties import NightlyBackups

__all__ = [
    "MailConfig",
    "NightlyBackups",
    "Workers",
    "allowed_hosts",
    "create_app",
    "is_loopback",
    "mail_config",
    "serve",
]

LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def mail_config() -> MailConfig:
    """SMTP for the workspace's Send button, from the environment (the password stays in
    FORMTOOL_SMTP_PASSWORD, as for `formtool send`): FORMTOOL_SMTP=HOST:PORT,
    FORMTOOL_SMTP_USER, FORMTOOL_SMTP_STARTTLS=1, FORMTOOL_MAIL_FROM."""
    env = os.environ
    return MailConfig(
        sender=env.get("FORMTOOL_MAIL_FROM", "") or MailConfig.sender,
        smtp=env.get("FORMTOOL_SMTP", ""),
        starttls=env.get("FORMTOOL_SMTP_STARTTLS", "") in ("1", "yes", "true"),
        user=env.get("FORMTOOL_SMTP_USER", ""),
    )


def _check_proxy(proxy: str) -> None:
    from formtool.errors import FormtoolError

    try:
        ipaddress.ip_address(proxy.strip("[]"))
    except ValueError:
        raise FormtoolError(
            f"--proxy '{proxy}' is not an IP address. Give the address the reverse proxy "
            "connects from, e.g. --proxy 127.0.0.1."
        ) from None


def _listen(host: str, port: int) -> socket.socket:
    from formtool.errors import FormtoolError

    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise FormtoolError(
            f"Cannot listen on {host}:{port} ({exc.strerror or exc}). Is another "
            "formtool serve running there? Choose another --port."
        ) from None
    sock.set_inheritable(True)
    return sock


def allowed_hosts(host: str) -> list[str] | None:
    """The Host headers a server bound to `host` answers: on this computer, its loopback names
    and the address itself (127.0.0.2 too); elsewhere any (a proxy or DNS name decides)."""
    if not is_loopback(host):
        return None
    bare = host.strip("[]")
    names = [*LOOPBACK_NAMES, bare]
    if ":" in bare:
        names.append(f"[{bare}]")
    return list(dict.fromkeys(names))


def serve(
    db: Any,
    host: str,
    port: int,
    behind_https: bool,
    settings: Any,
    on_ready: Callable[[str], None],
    proxy: str | None = None,
    backups: NightlyBackups | None = None,
    workers: int = 1,
) -> None:
    """Run the workspace under uvicorn until interrupted; `on_ready(url)` once listening (with
    `workers` > 1, once every worker is). `proxy`: the address of the reverse proxy whose
    X-Forwarded-* headers are believed; `backups`: the nightly backup (--backup-dir), taken by
    one worker a night. Each worker keeps a heartbeat row in the database while it runs, so
    `formtool restore` refuses to replace the database under it."""
    from formtool.access.accounts import list_users
    from formtool.errors import FormtoolError

    loopback = is_loopback(host)
    if proxy is not None:
        _check_proxy(proxy)
    if not loopback and not list_users(db):
        raise FormtoolError(
            f"Serving on {host} lets other computers reach this data, so it "
            "needs an account first: run `formtool users add NAME --role "
            "officer`, then serve again."
        )
    if not loopback and not behind_https:
        logging.getLogger("formtool.web").warning(
            "Serving on %s over plain HTTP: passwords and case data cross the network "
            "unencrypted. Put formtool behind an HTTPS reverse proxy and pass --https.",
            host,
        )
    sock = _listen(host, port)
    shown_host = f"[{host.strip('[]')}]" if ":" in host else host
    url = f"http://{shown_host}:{sock.getsockname()[1]}"

    def server(work_dir: Path | None, ready: Callable[[], None]) -> Any:
        import uvicorn

        app = create_app(
            db,
            settings,
            behind_https,
            mail=mail_config(),
            allowed_hosts=allowed_hosts(host),
            trusted_proxy=proxy,
            purge_daily=True,
            heartbeat=True,
            backups=backups,
            work_dir=work_dir,
        )

        class Server(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets)
                if self.started:
                    ready()

        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            server_header=False,
            proxy_headers=False,  # only the named proxy's headers count (create_app)
            limit_concurrency=200,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=10,
        )
        return Server(config)

    if workers <= 1:
        server(None, lambda: on_ready(url)).run(sockets=[sock])
        return
    shared = Path(tempfile.mkdtemp(prefix="formtool-web-"))  # one private folder for all
    try:
        server(shared, lambda: None)  # a setting that stops serve does so here, said once
        Workers(workers, sock, lambda ready: server(shared, ready), db).run(lambda: on_ready(url))
    finally:
        sock.close()
        shutil.rmtree(shared, ignore_errors=True)  # the uploads and forms hold personal data


#: How long the workers have to finish their requests after Ctrl+C before they are killed.
STOP_SECONDS = 15.0


class Workers:
    """`serve --workers N`: N forked uvicorn processes accepting on one listening socket.
    The parent only watches: it says the server is ready once every worker is, reports a
    worker that stops (and then stops the others, so a service manager restarts the whole
    server cleanly), and on Ctrl+C or SIGTERM stops them all."""

    def __init__(
        self, count: int, sock: socket.socket, make: Callable[[Callable[[], None]], Any], db: Any
    ) -> None:
        self.count, self.sock, self.make, self.db = count, sock, make, db
        self.pids: list[int] = []

    def run(self, on_ready: Callable[[], None]) -> None:
        from formtool.errors import FormtoolError

        read_end, write_end = os.pipe()
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            for _ in range(self.count):
                pid = os.fork()
                if pid == 0:  # the worker: never returns into the parent's code
                    os.close(read_end)
                    os._exit(self._worker(write_end))
                self.pids.append(pid)
            os.close(write_end)
            self._wait_ready(read_end)
            on_ready()
            pid, status = os.wait()  # a worker stopping on its own is the end of the server
            self.pids.remove(pid)
            raise FormtoolError(
                f"Worker process {pid} stopped ({_how(status)}), so the other workers were "
                "stopped too. The messages above say why; start formtool serve again (a "
                "service manager such as systemd can restart it)."
            )
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            os.close(read_end)
            self._stop()

    def _wait_ready(self, read_end: int) -> None:
        """Until each worker has said it listens; a worker stopping first ends it all."""
        from formtool.errors import FormtoolError

        ready = 0
        while ready < self.count:
            readable, _, _ = select.select([read_end], [], [], 0.2)
            if readable:
                ready += len(os.read(read_end, self.count - ready))
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid:
                self.pids.remove(pid)
                raise FormtoolError(
                    f"Worker process {pid} stopped while starting ({_how(status)}). The "
                    "messages above say why; fix that and start formtool serve again."
                )

    def _worker(self, ready_end: int) -> int:
        """One worker's life: its own database connections (the parent's are not shared
        across a fork), its own uvicorn on the shared socket. The exit status."""
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            self.db.after_fork()
            server = self.make(lambda: _say_ready(ready_end))
            server.run(sockets=[self.sock])
            return 0 if server.started else 1
        except KeyboardInterrupt:
            return 0
        except BaseException as exc:  # one line, as the command line says it: no traceback
            logging.getLogger("formtool.web").error(
                "Worker process %d stopped: %s", os.getpid(), printable(exc, 500)
            )
            return 1

    def _stop(self) -> None:
        """SIGTERM to every worker still running (uvicorn finishes its requests), then
        SIGKILL to any still there after STOP_SECONDS."""
        for pid in self.pids:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        while self.pids:
            pid, _status = os.waitpid(-1, os.WNOHANG)
            if pid:
                self.pids.remove(pid)
            elif time.monotonic() > deadline:
                for pid in self.pids:
                    _signal(pid, signal.SIGKILL)
                deadline = float("inf")
            else:
                time.sleep(0.05)


def _say_ready(ready_end: int) -> None:
    os.write(ready_end, b"r")  # one byte per worker listening


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM to the parent stops the workers as Ctrl+C does


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it has just stopped
        os.kill(pid, signum)


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
