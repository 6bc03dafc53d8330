"""Forms as data: what an audit tool asks and how it is laid out, before any database.

Owns loading and checking the YAML definitions (forms.py, check.py, form_schema.json), their
scales and date formats (scales.py), the grid both writers draw from (layout.py), a form's
identity written into every file (identity.py), the rule that identifiers never become paths
(identifiers.py) and the Office XML namespaces (namespaces.py). Pure: nothing here opens the
store; snapshots of definitions that generated forms are kept by store/catalog.py.
"""

from formtool.definitions.forms import (
    ACTION_ROLES,
    COMMON_FILE,
    ITEM_KINDS,
    Field,
    FormDefinition,
    FormResolver,
    Item,
    Section,
    all_forms,
    check_form,
    describe_form,
    form_files,
    forms_dir,
    from_snapshot,
    get_form,
    list_forms,
    load_form,
    load_forms,
)

__all__ = [
    "ACTION_ROLES",
    "COMMON_FILE",
    "ITEM_KINDS",
    "Field",
    "FormDefinition",
    "FormResolver",
    "Item",
    "Section",
    "all_forms",
    "check_form",
    "describe_form",
    "form_files",
    "forms_dir",
    "from_snapshot",
    "get_form",
    "list_forms",
    "load_form",
    "load_forms",
]
