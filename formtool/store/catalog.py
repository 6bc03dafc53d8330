"""Which definition a form was made from: the form catalog (definitions/catalog.py) for
current versions, the store's snapshots for versions that have since changed.

Generating (or allocating) a form records its definition's snapshot; a later edit of the YAML
must raise `version:`, or formtool refuses it. A return is read and checksummed with the
version named in its identity, so republishing a tool never breaks forms still out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from formtool.definitions import FormDefinition, FormResolver, all_forms, form_catalog
from formtool.definitions.history import shipped_definition
from formtool.errors import DefinitionError, FormtoolError, Issue, IssueCode, Rejected
from formtool.store.engine import masked
from formtool.store.forms import save_snapshot, snapshot, snapshots
from formtool.store.schema import audits


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
    """`forms check` against a database: definitions changed without a new version, and
    audits made with versions the database does not hold."""
    with engine.connect() as conn:
        stored = {(s.form_id, s.version): s.digest for s in snapshots(conn)}
    issues = [_not_bumped(f) for f in forms if stored.get((f.id, f.version), f.digest) != f.digest]
    return issues + [
        Issue(
            IssueCode.version_not_held,
            masked(engine.url),
            form_id,
            value=f"{len(ids)} audit(s) ({', '.join(ids[:3])}{', ...' if len(ids) > 3 else ''})",
            expected=str(version),
        )
        for (form_id, version), ids in sorted(unknown_versions(engine).items())
    ]


def pre_snapshot_definition(form_id: str, version: int) -> FormDefinition | None:
    """What made a version's forms before snapshots were kept (migration 0008): the
    definition formtool shipped as that version, else the team folder's when it is that very
    version (schema 0002 kept no digest to compare: from now on the snapshot holds it, and a
    later edit without a new version is refused). None when neither has it."""
    shipped = shipped_definition(form_id, version)
    if shipped is not None:
        return shipped
    try:
        current = form_catalog().forms().get(form_id)
    except FormtoolError:  # a broken team folder must not stop the upgrade
        return None
    return current if current is not None and current.version == version else None


class UnknownVersionsError(FormtoolError):
    """Audits made with form versions this database does not hold: named, never skipped."""

    def __init__(self, missing: dict[tuple[str, int], list[str]], what: str) -> None:
        count = sum(len(ids) for ids in missing.values())
        listed = "; ".join(
            f"{form_id} v{version}: {', '.join(sorted(ids))}"
            for (form_id, version), ids in sorted(missing.items())
        )
        super().__init__(
            f"{what}: {count} audit(s) were made with form versions this database does not "
            f"hold ({listed}). Put each definition, with that version number, in the team's "
            "forms folder (--forms-dir or FORMTOOL_FORMS) and run the command again."
        )
        self.missing = missing


def forms_of(engine: sa.Engine, audits: Iterable[Any], what: str) -> dict[str, FormDefinition]:
    """Each audit's definition by audit id; refuses naming every audit whose version is not
    held (rows need audit_id, form_id and form_version)."""
    found: dict[str, FormDefinition] = {}
    missing: dict[tuple[str, int], list[str]] = defaultdict(list)
    known: dict[tuple[str, int], FormDefinition | None] = {}  # a year holds a few versions
    with engine.connect() as conn:
        for row in audits:
            version = (row.form_id, row.form_version)
            if version not in known:
                known[version] = form_in(conn, *version)
            form = known[version]
            if form is None:
                missing[(row.form_id, row.form_version)].append(row.audit_id)
            else:
                found[row.audit_id] = form
    if missing:
        raise UnknownVersionsError(dict(missing), what)
    return found


def unknown_versions(engine: sa.Engine) -> dict[tuple[str, int], list[str]]:
    """Every audit whose form version this database cannot resolve, by version."""
    a = audits.c
    missing: dict[tuple[str, int], list[str]] = {}
    with engine.connect() as conn:
        for form_id, version in conn.execute(sa.select(a.form_id, a.form_version).distinct()):
            if form_in(conn, form_id, version) is None:
                where = (a.form_id == form_id) & (a.form_version == version)
                ids = conn.execute(sa.select(a.audit_id).where(where).order_by(a.audit_id))
                missing[(form_id, version)] = list(ids.scalars())
    return missing
