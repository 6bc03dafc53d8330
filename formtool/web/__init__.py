"""The web workspace (`formtool serve`): the monthly cycle in a browser, on the same store and
the same library functions as the command line.

Secure by default, because it holds children's personal data:

- it listens on 127.0.0.1 unless told otherwise, and refuses any other address until at least
  one account exists (`formtool users add NAME --role officer`);
- with no account at all, every page shows how to create the first one and nothing else;
- accounts have roles (viewer, officer, moderator), checked on every route; passwords are
  argon2 hashes; failed sign-ins slow down, then lock out, per name and per client address;
- session cookies are signed with a secret kept in the database, HttpOnly, SameSite=Lax and
  Secure behind HTTPS; every form carries a CSRF token; uploads are limited per file, per
  request and in number while they stream; everything is escaped; a strict
  Content-Security-Policy allows no inline script; pages are never cached;
- every action is recorded in the audit's events with `web:<user name>`;
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

__all__ = ["MailConfig", "create_app", "is_loopback", "mail_config", "serve"]

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


def serve(
    engine: Any,
    host: str,
    port: int,
    behind_https: bool,
    settings: Any,
    on_ready: Callable[[str], None],
) -> None:
    """Run the workspace under uvicorn until interrupted; `on_ready(url)` once listening."""
    import uvicorn

    from formtool.errors import FormtoolError
    from formtool.users import list_users

    loopback = is_loopback(host)
    if not loopback and not list_users(engine):
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
        engine,
        settings,
        behind_https,
        mail=mail_config(),
        allowed_hosts=LOOPBACK_NAMES if loopback else None,
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
        proxy_headers=True,
        limit_concurrency=200,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=10,
    )
    Server(config).run(sockets=[sock])
