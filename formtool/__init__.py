"""formtool: case-file audit tools for children's services quality assurance.

Forms as data -> fillable pre-filled Word/Excel forms -> returns read back -> packs.

The public API is imported on first use (PEP 562), so `formtool --help` does not pay for
SQLAlchemy, openpyxl or reportlab.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

_EXPORTS = {
    "Case": "formtool.read.cases",
    "load_cases": "formtool.read.cases",
    "FormDefinition": "formtool.definitions",
    "check_form": "formtool.definitions",
    "get_form": "formtool.definitions",
    "load_form": "formtool.definitions",
    "load_forms": "formtool.definitions",
    "FormtoolError": "formtool.errors",
    "Issue": "formtool.errors",
    "IssueCode": "formtool.errors",
    "generate": "formtool.generate",
    "render": "formtool.generate",
    "import_paths": "formtool.read.batch",
    "open_store": "formtool.store",
    "Store": "formtool.store",
    "Month": "formtool.periods",
    "list_forms": "formtool.definitions",
    "describe_form": "formtool.definitions",
    "use_forms_dir": "formtool.definitions",
    "status": "formtool.programme.status",
    "run_allocation": "formtool.programme.allocation",
    "moderate": "formtool.programme.moderation",
    "pmu_pack": "formtool.packs.pmu",
    "file_pack": "formtool.packs.file",
    "load_settings": "formtool.settings",
}
__all__ = [
    "Case",
    "FormDefinition",
    "FormtoolError",
    "Issue",
    "IssueCode",
    "Month",
    "Store",
    "check_form",
    "describe_form",
    "file_pack",
    "generate",
    "get_form",
    "import_paths",
    "list_forms",
    "load_cases",
    "load_form",
    "load_forms",
    "load_settings",
    "moderate",
    "open_store",
    "pmu_pack",
    "render",
    "run_allocation",
    "status",
    "use_forms_dir",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'formtool' has no attribute {name!r}")


if TYPE_CHECKING:  # for type checkers and editors: the same names, imported eagerly
    from formtool.definitions import (
        FormDefinition,
        check_form,
        describe_form,
        get_form,
        list_forms,
        load_form,
        load_forms,
        use_forms_dir,
    )
    from formtool.errors import FormtoolError, Issue, IssueCode
    from formtool.generate import generate, render
    from formtool.packs.file import file_pack
    from formtool.packs.pmu import pmu_pack
    from formtool.periods import Month
    from formtool.programme.allocation import run_allocation
    from formtool.programme.moderation import moderate
    from formtool.programme.status import status
    from formtool.read.batch import import_paths
    from formtool.read.cases import Case, load_cases
    from formtool.settings import load_settings
    from formtool.store import Store, open_store
