"""The "To chase" list: overdue audits, and every returned file that was rejected (against its
audit when its identity was readable, else as an unmatched file), with what to do about each."""

from __future__ import annotations

from starlette.routing import BaseRoute

from formtool.web.pages import ActionRoute, PageRoute


def routes(page: PageRoute, action: ActionRoute) -> list[BaseRoute]:
    return []
