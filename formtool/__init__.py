"""formtool: case-file audit tools for children's services quality assurance.

Forms as data -> fillable pre-filled Word/Excel forms -> returns read back -> packs.
"""

from formtool.cases import Case, load_cases
from formtool.definitions import FormDefinition, check_form, get_form, load_form, load_forms
from formtool.errors import FormtoolError, Issue, IssueCode
from formtool.generate import generate, render

__all__ = [
    "Case",
    "FormDefinition",
    "FormtoolError",
    "Issue",
    "IssueCode",
    "check_form",
    "generate",
    "get_form",
    "load_cases",
    "load_form",
    "load_forms",
    "render",
]
__version__ = "0.1.0"
