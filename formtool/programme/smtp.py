"""The connection to the council's mail server, shared by every email formtool sends (forms and
chases: mail.py; amendments; concerns; the web form's one-time codes): connect, encrypt
whenever the server allows, log in, and turn every failure into one `MailError` line.

The SMTP password is read from an environment variable, never from an option (it would end
up in shell history).
"""

from __future__ import annotations

import os
import smtplib
import ssl
from typing import Any

from formtool.errors import FormtoolError, printable

PASSWORD_ENV = "FORMTOOL_SMTP_PASSWORD"
IMPLICIT_TLS_PORTS = frozenset({465})  # SMTPS: TLS from the first byte, no STARTTLS
SMTP_TIMEOUT = 30  # seconds


class MailError(FormtoolError):
    """Mail cannot be built or sent; the message names the auditor, address or server."""


def send_smtp(
    server: str,
    starttls: bool,
    user: str | None,
    run: Any,
    ssl_context: ssl.SSLContext | None = None,
) -> str:
    """Connect, encrypt and log in, then `run(smtp)` sends. The connection is encrypted
    whenever it can be: implicit TLS on port 465, else STARTTLS when the server offers it. A
    user name and password (or `starttls`) require that, and nothing is sent without it;
    otherwise the messages go out in clear and the notice this returns says so ('' when
    encrypted). `ssl_context` is for tests trusting their own server."""
    host, port = _host_port(server)
    password = os.environ.get(PASSWORD_ENV)
    if user and not password:
        raise MailError(
            f"--user given but {PASSWORD_ENV} is not set. Export the password "
            "in that variable (never on the command line)."
        )
    context = ssl_context or ssl.create_default_context()
    try:
        with _connect(host, port, context) as smtp:
            notice = _encrypt(smtp, server, port, context, starttls, bool(user))
            if user:
                smtp.login(user, password or "")
            run(smtp)
    except (OSError, smtplib.SMTPException) as exc:
        reason = printable(str(exc).rstrip("."), 200)
        raise MailError(
            f"Sending through {printable(server)} failed: {reason}. Messages sent before the "
            "failure are recorded; run the command again for the rest."
        ) from None
    return notice


def _host_port(server: str) -> tuple[str, int]:
    host, _, port = server.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise MailError(
            f"--smtp '{printable(server)}' is not HOST:PORT (e.g. smtp.council.gov.uk:587)."
        )
    return host, int(port)


def _connect(host: str, port: int, context: ssl.SSLContext) -> smtplib.SMTP:
    if port in IMPLICIT_TLS_PORTS:
        return smtplib.SMTP_SSL(host, port, timeout=SMTP_TIMEOUT, context=context)
    return smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT)


def _encrypt(
    smtp: smtplib.SMTP,
    server: str,
    port: int,
    context: ssl.SSLContext,
    required: bool,
    login: bool,
) -> str:
    """Encrypt the connection if it is not yet (STARTTLS); '' once encrypted, else the
    one-line notice that the mail goes out in clear, or MailError if that is not allowed."""
    if port in IMPLICIT_TLS_PORTS:
        return ""
    smtp.ehlo_or_helo_if_needed()
    if smtp.has_extn("starttls"):
        smtp.starttls(context=context)
        smtp.ehlo()
        return ""
    if login or required:
        why = (
            "a user name and password are never sent unencrypted"
            if login
            else "STARTTLS was asked for"
        )
        raise MailError(
            f"Mail to {printable(server)} was not sent: the server does not offer STARTTLS "
            f"and {why}. Use the server's implicit TLS port (465) or one that offers STARTTLS."
        )
    return f"Mail to {printable(server)} went out unencrypted: the server does not offer STARTTLS."
