"""Subject access: one zip with everything formtool holds about one child (a case) or one
member of staff, for a subject access request under UK GDPR Article 15.

For a child: every audit of the case (its facts, where it stands, its dates and grades),
every return's original file as it was received, the answers and action rows, moderation,
events, concerns, challenges, the emails about it, rejected files naming it, the packs and
forms formtool wrote for it that are still on disk, and the access-log entries showing who
viewed them. For a member of staff: every row naming them (by name, address or account),
their account and sessions, and in full the audits that are about their own practice (a
supervision audit or an observation); children's details in the audits they only worked on
are left out, as third parties' data. Each zip has `index.html` (a plain, accessible summary
with a contents list) and `data.json` (the same, machine-readable, table by table).

The request is recorded in the access log (against each audit) and in the register of
data-protection work; a request for someone nothing is held about is refused and recorded
too, as that is also the answer given. Names from the input (a file's name as emailed, a case
number) never become paths in the zip: each is made a safe stem.

`file_holds` searches a file formtool wrote for a person's identifiers (inside Word and Excel
parts, PDFs' text and email attachments, within fixed bounds), for correction and erasure.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import html
import io
import json
import re
import zipfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from formtool import clock
from formtool.definitions.identifiers import safe_file_stem
from formtool.errors import FormtoolError, printable
from formtool.periods import show_date, show_time
from formtool.store import BACKUP, SUBJECT_ACCESS, Rewrite, Store

#: Search bounds: a file (or a part inside one) larger than this is searched in its first
#: part only; a zip's parts, a PDF's pages and nesting are capped too.
MAX_SEARCH_BYTES = 64 * 1024 * 1024
MAX_PARTS = 2000
MAX_PAGES = 2000
MAX_DEPTH = 3
#: Columns a member of staff's copy leaves out of audits they only worked on (the child's).
CHILDS = frozenset({"facts", "warnings", "content", "case_number"})
#: Columns never shown in a copy (secrets, and bytes that go as files).
SECRET = frozenset(
    {"password_hash", "totp_secret", "totp_last_step", "content", "id_hash", "checksum"}
)


class SubjectError(FormtoolError):
    """A subject access, correction or erasure that cannot be done; the message says why."""


@dataclass(frozen=True)
class Subject:
    """Who a request is about: a child (by case number) or a member of staff (their name as
    audits give it, and any addresses and formtool accounts of theirs)."""

    case_number: str = ""
    names: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    logins: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return "child" if self.case_number else "staff"

    @property
    def label(self) -> str:
        if self.case_number:
            return f"case {printable(self.case_number, 80)}"
        return f"member of staff {printable(self.names[0] if self.names else '', 80)}"


def child(case_number: str) -> Subject:
    number = case_number.strip()
    if not number:
        raise SubjectError("Give the case number (CASE_NUMBER) the request is about.")
    return Subject(case_number=number)


def staff(db: Store, name: str, emails: Iterable[str] = (), logins: Iterable[str] = ()) -> Subject:
    """A member of staff: `name` as the audits give it; their addresses are the ones given
    and those the audits they audited (or prepared) record for them."""
    name = name.strip()
    if len(name) < 3:
        raise SubjectError(
            "Give the member of staff's name as the audits give it (--staff 'Jo Bloggs'), "
            "at least 3 characters."
        )
    found = {e.strip() for e in emails if e.strip()} | set(db.staff_addresses(name))
    return Subject(names=(name,), emails=tuple(sorted(found)), logins=tuple(logins))


# --- what is held --------------------------------------------------------------------------


@dataclass
class Holdings:
    """Every row held about the subject by table (plain dicts), the audits wholly about them,
    and the files still on disk."""

    subject: Subject
    tables: dict[str, list[dict[str, Any]]]
    whole_audits: list[str] = field(default_factory=list)

    @property
    def audit_ids(self) -> list[str]:
        return [str(a["audit_id"]) for a in self.tables.get("audits", [])]

    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.tables.items() if v}


def holdings(db: Store, subject: Subject) -> Holdings:
    """What the database holds about the subject ({} tables: nothing)."""
    if subject.kind == "child":
        tables = db.case_holdings(subject.case_number)
        audits = tables.get("audits", [])
        if audits:  # as the records spell it
            subject = replace(subject, case_number=str(audits[0]["case_number"]))
        return Holdings(subject, tables)
    tables = db.staff_holdings(subject.names, subject.emails, subject.logins)
    names = {n.casefold() for n in subject.names}
    about = [
        str(a["audit_id"])
        for a in tables.get("audits", [])
        if str(json.loads(a["facts"] or "{}").get("staff_name", "")).casefold() in names
    ]
    if about:  # their own practice: the whole audit, as a child's would be
        whole = db.audits_holdings(about)
        for name, rows in whole.items():
            known = {json.dumps(_plain(r), sort_keys=True) for r in tables.get(name, [])}
            extra = [r for r in rows if json.dumps(_plain(r), sort_keys=True) not in known]
            tables[name] = tables.get(name, []) + extra
    return Holdings(subject, tables, about)


# --- the zip -------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A row (or value) as JSON can hold it: dates as ISO text, bytes left out."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k not in SECRET}
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return None
    return value


def _shown(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, dt.datetime):
        return show_time(value)
    if isinstance(value, dt.date):
        return show_date(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return printable(value)


def zip_name(name: str, prefix: str) -> str:
    """A path inside the zip for a file called `name` (from the input: made safe)."""
    suffix = Path(name).suffix.lower()
    stem = Path(name).stem or name
    if not re.fullmatch(r"\.[a-z0-9]{1,5}", suffix):
        suffix, stem = "", name
    return f"{prefix}-{safe_file_stem(stem, 60, part=True)}{suffix}"


@dataclass
class Member:
    """One file in the zip: its path there, the bytes, and what it is."""

    path: str
    data: bytes
    about: str


def _readable(path: Path) -> bytes | None:
    try:
        return path.read_bytes() if path.stat().st_size <= MAX_SEARCH_BYTES else None
    except OSError:
        return None


def _members(holdings: Holdings) -> tuple[list[Member], list[str]]:
    """The files the zip carries (return files as received; tracked files still on disk)
    and notes on those it cannot."""
    members, notes = [], []
    folders = {a: f"{n:02d}-{safe_file_stem(a, 60)}" for n, a in enumerate(holdings.audit_ids, 1)}
    children = holdings.subject.kind == "child"
    for row in holdings.tables.get("returns", []):
        audit = str(row["audit_id"])
        if not children and audit not in holdings.whole_audits:
            continue  # a child's evidence: not the staff member's to have
        if not row.get("content"):
            removed = row.get("content_removed_at")
            when = f" on {show_date(removed)}" if removed else ""
            notes.append(f"Return {row['id']} of {audit}: its original file was removed{when}.")
            continue
        path = f"{folders.get(audit, 'other')}/returns/{zip_name(row['file_name'], str(row['id']))}"
        row["file"] = path
        members.append(Member(path, row["content"], f"return {row['id']} of {audit}"))
    for row in holdings.tables.get("stored_files", []):
        if row.get("removed_at"):
            continue
        if not children and row.get("audit_id") not in holdings.whole_audits:
            continue  # a file they wrote about a child: listed, not copied
        disk = Path(str(row["path"]))
        data = _readable(disk)
        if data is None:
            notes.append(f"{row['kind'].capitalize()} {disk.name}: no longer readable on disk.")
            continue
        inside = f"files/{zip_name(disk.name, str(row['id']))}"
        row["file"] = inside
        members.append(Member(inside, data, f"{row['kind']} {disk.name}"))
    return members, notes


#: Headings for the tables, in the order the index shows them.
TITLES = {
    "audits": "Audits",
    "grades": "Grades and moderation",
    "returns": "Returned forms",
    "answers": "Answers",
    "actions": "Actions",
    "concerns": "Immediate concerns",
    "challenges": "Challenges to a grade",
    "events": "History",
    "audit_copies": "Earlier copies of a form (before it was reassigned)",
    "outbox": "Emails",
    "rejections": "Rejected files",
    "chosen_slots": "Chosen samples",
    "stored_files": "Files formtool wrote",
    "activity_runs": "Activity runs",
    "programmes": "Programme policies",
    "data_requests": "Data-protection requests",
    "users": "Your formtool account",
    "sessions": "Sign-in sessions",
    "access_log": "Who viewed these records (the access log)",
}


def _columns(name: str, rows: list[dict[str, Any]]) -> list[str]:
    seen = list(dict.fromkeys(c for r in rows for c in r if c not in SECRET and c != "file"))
    if any("file" in r for r in rows):
        seen.insert(0, "file")
    return seen


def _others(holdings: Holdings) -> dict[str, str]:
    """For a member of staff's copy: each audit they only worked on (and its case number)
    -> an opaque reference, "audit 1", "case 1"...: the audit id carries the child's case
    number, which is the child's data, not theirs."""
    whole = set(holdings.whole_audits)
    audits: dict[str, str] = {}
    cases: dict[str, str] = {}
    for row in sorted(holdings.tables.get("audits", []), key=lambda r: str(r["audit_id"])):
        if row["audit_id"] not in whole:
            audits[str(row["audit_id"])] = f"audit {len(audits) + 1}"
            cases.setdefault(str(row["case_number"]), f"case {len(cases) + 1}")
    return {**cases, **audits}


def _rows_shown(holdings: Holdings, name: str) -> list[dict[str, Any]]:
    """A table's rows as the copy shows them: for a member of staff, audits they only worked
    on lose the child's details, and their ids and case numbers become "audit N" wherever
    they appear."""
    rows = holdings.tables.get(name, [])
    if holdings.subject.kind == "child":
        return rows
    whole = set(holdings.whole_audits)
    hide = Rewrite(_others(holdings))
    shown = []
    for row in rows:
        if row.get("audit_id") in whole:
            shown.append(row)
            continue
        kept = {k: v for k, v in row.items() if k not in CHILDS}
        shown.append({k: hide.text(v) if isinstance(v, str) else v for k, v in kept.items()})
    return shown


def _html_table(name: str, rows: list[dict[str, Any]]) -> str:
    columns = _columns(name, rows)
    head = "".join(f'<th scope="col">{html.escape(c.replace("_", " "))}</th>' for c in columns)
    body = []
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column)
            if column == "facts" and value:
                value = "; ".join(f"{k}: {v}" for k, v in json.loads(value).items())
            text = html.escape(_shown(value))
            if column == "file" and value:
                text = f'<a href="{html.escape(str(value))}">{text}</a>'
            cells.append(f"<td>{text}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    caption = html.escape(TITLES.get(name, name))
    return (
        f'<section aria-labelledby="{name}"><h2 id="{name}">{caption}</h2>'
        f'<p>{len(rows)} record(s).</p><div class="wrap"><table><caption>{caption}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div></section>"
    )


STYLE = (
    "body{font-family:Arial,Helvetica,sans-serif;line-height:1.5;margin:1.5rem;max-width:80rem}"
    "table{border-collapse:collapse;margin-bottom:1.5rem}th,td{border:1px solid #555;"
    "padding:.3rem .5rem;text-align:left;vertical-align:top}caption{text-align:left;"
    "font-weight:bold}.wrap{overflow-x:auto}"
)


def index_html(holdings: Holdings, about: Mapping[str, Any], members: list[Member]) -> str:
    """The readable summary: what this is, a contents list, every table, the files."""
    subject = holdings.subject
    title = f"Records held about {subject.label}"
    names = [n for n in TITLES if holdings.tables.get(n)]
    contents = "".join(
        f'<li><a href="#{n}">{html.escape(TITLES[n])}</a> ({len(holdings.tables[n])})</li>'
        for n in names
    )
    intro = [
        f"Made on {show_date(about['made_on'])} by {html.escape(about['made_by'])} from "
        f"{html.escape(about['database'])}, request {about['request']}"
        + (f" ({html.escape(about['reference'])})" if about["reference"] else "")
        + ".",
        "Every table below is also in data.json, and each returned form is in this zip as "
        "it was received (its name made safe).",
    ]
    if subject.kind == "staff":
        intro.append(
            "Audits you worked on are shown without the child's details (they are another "
            "person's data); audits of your own practice are shown in full."
        )
    sections = "".join(_html_table(n, _rows_shown(holdings, n)) for n in names)
    files = "".join(
        f'<li><a href="{html.escape(m.path)}">{html.escape(m.path)}</a>: '
        f"{html.escape(m.about)}</li>"
        for m in members
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in about["notes"])
    return (
        '<!DOCTYPE html>\n<html lang="en-GB"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body><main>"
        f"<h1>{html.escape(title)}</h1>"
        + "".join(f"<p>{p}</p>" for p in intro)
        + '<nav aria-labelledby="contents"><h2 id="contents">Contents</h2><ul>'
        + contents
        + '<li><a href="#files">Files in this zip</a></li></ul></nav>'
        + sections
        + '<section aria-labelledby="files"><h2 id="files">Files in this zip</h2><ul>'
        + '<li><a href="data.json">data.json</a>: every table, machine-readable</li>'
        + files
        + "</ul>"
        + (f"<h3>Not included</h3><ul>{notes}</ul>" if notes else "")
        + "</section></main></body></html>\n"
    )


def build_zip(holdings: Holdings, about: Mapping[str, Any]) -> bytes:
    """The zip: index.html, data.json and the files."""
    members, notes = _members(holdings)
    about = {**about, "notes": notes}
    data = {
        "request": _plain(dict(about)),
        "subject": {
            "kind": holdings.subject.kind,
            "case_number": holdings.subject.case_number,
            "names": list(holdings.subject.names),
            "emails": list(holdings.subject.emails),
            "accounts": list(holdings.subject.logins),
        },
        "tables": {
            n: [_plain(r) for r in _rows_shown(holdings, n)]
            for n in TITLES
            if holdings.tables.get(n)
        },
        "files": [{"path": m.path, "about": m.about} for m in members],
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("index.html", index_html(holdings, about, members))
        archive.writestr("data.json", json.dumps(data, indent=2, ensure_ascii=False))
        for member in members:
            archive.writestr(member.path, member.data)
    return out.getvalue()


@dataclass(frozen=True)
class Access:
    """A subject access request answered: the zip, its suggested name, the register's
    number and what it holds."""

    data: bytes
    name: str
    request: int
    counts: dict[str, int]
    files: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "request": self.request,
            "name": self.name,
            "bytes": len(self.data),
            "records": self.counts,
            "files": self.files,
        }


def subject_access(
    db: Store, subject: Subject, user: str, reference: str = "", address: str = ""
) -> Access:
    """Everything held about `subject` as one zip, recorded in the access log and the
    register. SubjectError (recorded too) when nothing is held."""
    check_reference(reference, subject)
    found = holdings(db, subject)
    request = {"reference": reference, "address": address}
    if not found.tables:
        number = db.record_request(
            "subject access", subject.kind, user, {**request, "detail": {"held": 0}}
        )
        raise SubjectError(
            f"No records held for {subject.label} in {db.url}. That answer is recorded in "
            f"the register as request {number} (formtool data-requests)."
        )
    counts = found.counts()
    number = db.record_request(
        "subject access",
        subject.kind,
        user,
        {**request, "detail": {"held": counts}},
        found.audit_ids,
        "records copied for a subject access request",
    )
    about = {
        "kind": "subject access",
        "made_on": clock.today(),
        "made_by": user,
        "database": db.url,
        "request": number,
        "reference": reference,
    }
    data = build_zip(found, about)
    files = len(zipfile.ZipFile(io.BytesIO(data)).namelist()) - 2
    return Access(data, f"subject-access-{number}.zip", number, counts, files)


def write_access(db: Store, access: Access, subject: Subject, out: Path, user: str) -> Path:
    """Write the zip to `out` (a file, or a folder for its own name) and track it, so
    retention and an erasure find it."""
    path = out / access.name if out.is_dir() else out
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(access.data)
    db.record_file(path, SUBJECT_ACCESS, case_number=subject.case_number or None, user=user)
    return path


def names_any(text: str, values: Iterable[str]) -> bool:
    """Whether `text` holds one of `values` as a whole word, whatever the case."""
    return Rewrite(dict.fromkeys((v.strip() for v in values), "")).finds(text)


def check_reference(reference: str, subject: Subject, what: str = "--reference") -> None:
    """A request's reference and reason go in the register, which never holds who it is
    about (an erasure must not keep what it erased)."""
    if names_any(reference, (subject.case_number, *subject.names, *subject.emails)):
        raise SubjectError(
            f"[{what}] names the person the request is about; the register never holds "
            "that. Give the council's request number, or say why without naming them."
        )


# --- searching a file formtool wrote -------------------------------------------------------


_TAG = re.compile(rb"<[^>]*>")
#: Parts of a Word or Excel file that hold no text anyone typed: layout, fonts, pictures.
_NO_TEXT = re.compile(
    r"(?i)(?:^|/)(?:styles|stylesWithEffects|theme\d*|fontTable|settings|webSettings|numbering)"
    r"\.xml$|(?:^|/)(?:fonts|media)/|\.(?:png|jpe?g|gif|emf|wmf|odttf|ttf|bin)$"
)


def _needle(value: str) -> re.Pattern[bytes]:
    """A value as bytes to look for in lower-cased text: as UTF-8 or as XML writes it
    (`&amp;`), any run of spaces or line breaks between its words."""
    forms = {value, html.escape(value, quote=False), html.escape(value)}
    return re.compile(
        b"|".join(
            rb"\s+".join(re.escape(w.lower().encode("utf-8")) for w in f.split()) for f in forms
        )
    )


def _texts(data: bytes) -> Iterable[bytes]:
    """The ways bytes may hold text, lower-cased, cheapest first: as they are (UTF-8), and
    without XML's tags (Word may split a name across runs), or as UTF-16 (Outlook's .msg).
    A zip or a PDF is binary: its text is in its parts."""
    if data[:4] == b"PK\x03\x04" or data[:5] == b"%PDF-":
        return
    lowered = data.lower()
    yield lowered
    if lowered.lstrip()[:1] == b"<" and (b"</w:t>" in lowered or b"</t>" in lowered):
        yield _TAG.sub(b"", lowered)
    if b"\x00" in data[:4096]:
        yield data.decode("utf-16-le", "ignore").lower().encode("utf-8")


def _pdf_text(data: bytes) -> Iterable[str]:
    """A PDF's bookmarks, properties and page text, piece by piece (the caller stops once
    everything is found)."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        yield " ".join(str(v) for v in (reader.metadata or {}).values())

        def titles(outline: Any) -> Iterable[str]:
            for item in outline:
                yield from titles(item) if isinstance(item, list) else [str(item.title)]

        yield " ".join(titles(reader.outline))
        for number, page in enumerate(reader.pages):
            if number >= MAX_PAGES:
                return
            yield page.extract_text() or ""
    except (PyPdfError, ValueError, KeyError, TypeError, OSError):
        return


def _parts(data: bytes, depth: int) -> Iterable[bytes]:
    """The pieces of a zip (Word, Excel, a zip) or an email a file carries."""
    if depth >= MAX_DEPTH:
        return
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for info in archive.infolist()[:MAX_PARTS]:
                    if _NO_TEXT.search(info.filename):
                        continue
                    with archive.open(info) as part:
                        yield part.read(MAX_SEARCH_BYTES)
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
            return
    elif re.match(rb"(?i)(?:[\w-]+:[^\r\n]*\r?\n)+", data[:2000]):
        message: Any = email.message_from_bytes(data, policy=email.policy.default)
        for number, part in enumerate(message.walk()):
            if number >= MAX_PARTS or part.is_multipart():
                continue
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                yield payload


def holds_values(
    data: bytes, values: Sequence[str], depth: int = 0, first: bool = False
) -> set[str]:
    """Which of `values` the bytes hold, whatever the case: as text, inside the parts of a
    zip or an email, or in a PDF's text (with `first`, the search stops at the first)."""
    wanted = {v: _needle(v) for v in values if v.strip()}
    found: set[str] = set()

    def look(text: bytes) -> bool:
        found.update(v for v, n in wanted.items() if v not in found and n.search(text))
        return len(found) == len(wanted) or bool(first and found)

    data = data[:MAX_SEARCH_BYTES]
    if any(look(text) for text in _texts(data)):
        return found
    if data[:5] == b"%PDF-":
        for text in _pdf_text(data):
            if look(text.lower().encode("utf-8")):
                return found
    for part in _parts(data, depth):
        found |= holds_values(part, [v for v in wanted if v not in found], depth + 1, first)
        if len(found) == len(wanted) or (first and found):
            break
    return found


def file_holds(path: Path, values: Sequence[str], first: bool = False) -> set[str]:
    """Which of `values` a file on disk holds (a file that cannot be read holds none)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_SEARCH_BYTES)
    except OSError:
        return set()
    return holds_values(data, values, first=first)


def files_about(
    db: Store,
    markers: Sequence[str],
    values: Sequence[str] = (),
    audit_ids: Collection[str] | None = None,
    case_number: str = "",
    search_own: bool = False,
) -> list[tuple[Any, set[str]]]:
    """Tracked files still on disk (never backups) about someone, with what each holds. With
    `audit_ids`: the files of those audits (or of the case) and the files of no audit that
    hold one of `markers` (an audit id, the case number, a name); another audit's own files
    hold that audit alone and are not searched. Without: every file holding a marker. With
    `values`, only the files that also hold one of those. With `search_own`, the audits' own
    files count only when they hold a marker too (a member of staff's name is in the files
    of the audits naming them until they are made again)."""
    found: list[tuple[Any, set[str]]] = []
    wanted = set(values)
    for row in db.stored_files():
        if row.kind == BACKUP:
            continue
        own = audit_ids is not None and (
            row.audit_id in audit_ids
            or bool(case_number and (row.case_number or "").casefold() == case_number.casefold())
        )
        if audit_ids is not None and row.audit_id is not None and not own:
            continue
        if own and not wanted and not search_own:
            found.append((row, set()))  # theirs alone: nothing to search for
            continue
        held = file_holds(Path(row.path), [*markers, *values], first=not wanted)
        named = bool(held - wanted) or (own and not search_own)
        if named and (not wanted or held & wanted):
            found.append((row, held))
    return found
