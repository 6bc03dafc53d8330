"""The web workspace (`formtool serve`): the monthly cycle in a browser, on the same store and
the same library functions as the command line.

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
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from formtool.web.app import MailConfig, create_app
from formtool.web.duties import NightlyBackups

__all__ = [
    "MailConfig",
    "NightlyBackups",
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
) -> None:
    """Run the workspace under uvicorn until interrupted; `on_ready(url)` once listening.
    `proxy`: the address of the reverse proxy whose X-Forwarded-* headers are believed;
    `backups`: the nightly backup (--backup-dir). It keeps a heartbeat row in the database
    while it runs, so `formtool restore` refuses to replace the database under it."""
    import uvicorn

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
    )
    sock = _listen(host, port)
    shown_host = f"[{host.strip('[]')}]" if ":" in host else host
    url = f"http://{shown_host}:{sock.getsockname()[1]}"

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                on_ready(url)

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
    Server(config).run(sockets=[sock])
