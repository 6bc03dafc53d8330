"""Forms as data: what an audit tool asks and how it is laid out, before any database.

Owns the YAML definitions as frozen dataclasses (forms.py), checking them (check.py,
form_schema.json), the form catalog: which folders they come from and the one cache of them
(catalog.py), their scales and date formats (scales.py), the grid both writers draw from
(layout.py), a form's identity written into every file (identity.py), the rule that
identifiers never become paths (identifiers.py) and the Office XML namespaces (namespaces.py).
Pure: nothing here opens the store; snapshots of definitions that generated forms are kept by
store/catalog.py.
"""

from formtool.definitions.catalog import (
    FormCatalog,
    FormDescription,
    FormSummary,
    all_forms,
    check_form,
    describe_form,
    form_catalog,
    form_files,
    forms_dir,
    get_form,
    list_forms,
    load_form,
    load_forms,
    shipped_forms,
    use_catalog,
    use_forms_dir,
    using_forms_dir,
)
from formtool.definitions.forms import (
    ACTION_ROLES,
    AUDIT,
    COMMON_FILE,
    ITEM_KINDS,
    PREPARED,
    Field,
    FormDefinition,
    FormResolver,
    Item,
    Section,
    from_snapshot,
)

__all__ = [
    "ACTION_ROLES",
    "AUDIT",
    "COMMON_FILE",
    "ITEM_KINDS",
    "PREPARED",
    "Field",
    "FormCatalog",
    "FormDefinition",
    "FormDescription",
    "FormResolver",
    "FormSummary",
    "Item",
    "Section",
    "all_forms",
    "check_form",
    "describe_form",
    "form_catalog",
    "form_files",
    "forms_dir",
    "from_snapshot",
    "get_form",
    "list_forms",
    "load_form",
    "load_forms",
    "shipped_forms",
    "use_catalog",
    "use_forms_dir",
    "using_forms_dir",
]
