"""The lists a manager works with: audits searched, filtered, sorted, paged and exported,
with bulk steps on the selected ones, and everything outstanding across months."""

from __future__ import annotations

from starlette.routing import BaseRoute

from formtool.web.pages import ActionRoute, PageRoute


def routes(page: PageRoute, action: ActionRoute) -> list[BaseRoute]:
    return []
