"""Which definition a form was made from: the form catalog (definitions/catalog.py) for
current versions, the store's snapshots for versions that have since changed.

Generating (or allocating) a form records its definition's snapshot; a later edit of the YAML
must raise `version:`, or formtool refuses it. A return is read and checksummed with the
version named in its identity, so republishing a tool never breaks forms still out.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from formtool.definitions import FormDefinition, FormResolver, all_forms, form_catalog
from formtool.errors import DefinitionError, Issue, IssueCode, Rejected
from formtool.store.forms import save_snapshot, snapshot, snapshots


def form_for(engine: sa.Engine, form_id: str, version: int) -> FormDefinition | None:
    """The definition of form `form_id` at `version`, current or stored; None if unknown."""
    with engine.connect() as conn:
        return form_in(conn, form_id, version)


def form_in(conn: sa.Connection, form_id: str, version: int) -> FormDefinition | None:
    """`form_for` inside a transaction already open. A stored definition is rebuilt once per
    catalog (the form catalog memoises snapshots)."""
    catalog = form_catalog()
    current = catalog.forms().get(form_id)
    if current is not None and current.version == version:
        return current
    found = snapshot(conn, form_id, version)
    return catalog.from_snapshot(found.definition) if found is not None else None


def resolver(engine: sa.Engine) -> FormResolver:
    """A reader's resolver backed by this database's snapshots."""

    def resolve(form_id: str, version: int) -> FormDefinition:
        found = form_for(engine, form_id, version)
        if found is not None:
            return found
        if form_id in all_forms():
            raise Rejected(IssueCode.unknown_version, form_id, version)
        raise Rejected(IssueCode.unknown_form, form_id)

    return resolve


def record_snapshots(conn: sa.Connection, forms: Iterable[FormDefinition]) -> None:
    """Keep the definitions that are generating forms; refuse a changed definition whose
    version was not raised (its old forms would no longer read)."""
    issues = []
    for form in {f.id: f for f in forms}.values():
        stored = save_snapshot(conn, form.id, form.version, form.digest, form.snapshot)
        if stored is not None:
            issues.append(_not_bumped(form))
    if issues:
        raise DefinitionError(issues)


def _not_bumped(form: FormDefinition) -> Issue:
    return Issue(
        IssueCode.version_not_bumped,
        form.path,
        location="1",
        value=f"this definition of '{form.id}'",
        expected=str(form.version),
    )


def version_issues(engine: sa.Engine, forms: Iterable[FormDefinition]) -> list[Issue]:
    """`forms check` against a database: definitions changed without a new version."""
    with engine.connect() as conn:
        stored = {(s.form_id, s.version): s.digest for s in snapshots(conn)}
    return [_not_bumped(f) for f in forms if stored.get((f.id, f.version), f.digest) != f.digest]
