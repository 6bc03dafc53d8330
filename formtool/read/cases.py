"""Case lists in: a CSV or XLSX with one row per audit, checked whole before anything is written.

Column names are matched loosely ("Case Number", "case_number" and "CASE-NUMBER" are the
same column) because case lists come straight out of a council's case management system.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import hmac
import io
import json
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from formtool.definitions import FormDefinition, all_forms
from formtool.definitions.identifiers import AUDIT_ID_MAX, audit_id_problem, safe_file_stem
from formtool.definitions.scales import FieldKind, parse_date
from formtool.errors import CaseListError, Issue, IssueCode, printable
from formtool.periods import show_date

#: Columns every case list needs, whatever the form.
CORE_COLUMNS = ("case_number", "auditor", "due_date")
_LINE_BREAK = re.compile(r"\r\n?")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class Case:
    """One audit to generate: its identity and the facts pre-filled into the form."""

    audit_id: str
    form_id: str
    form_version: int
    facts: dict[str, str]  # header column -> display text, in the form's header order
    row: int = 0
    auditor_email: str = ""  # from an `auditor_email` column, for `formtool send`
    preparer_email: str = ""  # two-stage tools: who prepares the file (`preparer_email`)
    form_format: str = "docx"  # the auditor's preferred format (`auditor_format`)
    #: The database's identity key, when the form is made for a database: only formtool
    #: holding that database can then mint a checksum its import accepts.
    checksum_key: bytes | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def checksum(self) -> str:
        return facts_checksum(
            self.audit_id, self.form_id, self.form_version, self.facts, self.checksum_key
        )

    @property
    def checksum_scheme(self) -> str:
        return checksum_scheme(self.checksum_key)

    @property
    def case_number(self) -> str:
        return self.facts.get("case_number", "")


def checksum_scheme(key: bytes | None) -> str:
    return "hmac" if key else "sha256"


def facts_checksum(
    audit_id: str, form_id: str, version: int, facts: Mapping[str, str], key: bytes | None = None
) -> str:
    """A short hash of the audit's identity and pre-filled facts, so an edited header is
    caught on import. Keyed (HMAC-SHA256 with the database's own key, 20 hex digits) when a
    key is given, so a form relabelled to another audit cannot carry a checksum that passes;
    unkeyed (SHA-256, 16 digits) for audits issued before keying."""
    canonical = json.dumps(
        [audit_id, form_id, version, sorted(facts.items())],
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")
    if key:
        return hmac.new(key, canonical, hashlib.sha256).hexdigest()[:20]
    return hashlib.sha256(canonical).hexdigest()[:16]


def write_case_list(path: Path, rows: list[dict[str, str]]) -> None:
    """Rows as a UTF-8 CSV case list; the columns are every key any row has, in order."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def cell_text(value: str) -> str:
    """A case-list cell as a generated form gives it back untouched, so the form passes its
    own import check: line breaks as \\n (Word and Excel return \\n whatever the list had),
    characters XML cannot hold dropped, the ends trimmed."""
    return _NOT_XML.sub("", _LINE_BREAK.sub("\n", value)).strip()


def normalise_column(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def column_keys(header: list[str], form: FormDefinition) -> list[str]:
    """The case-list column each heading means: a key ("case_number", matched loosely) or a
    label the form prints ("Social Worker Name" -> worker). A key beats a label."""
    labels = {normalise_column(h.label): h.column for h in form.header}
    keys = [normalise_column(c) for c in header]
    return [
        k
        if k in {h.column for h in form.header} or k not in labels or labels[k] in keys
        else labels[k]
        for k in keys
    ]


def audit_id_for(form: FormDefinition, case_number: str, due: dt.date) -> str:
    """A readable, stable audit id: FORM-CASE-YYYYMM (one audit per case, form and month).

    FORM is the form id's initials when it has several words (early_help -> EH).
    The case number becomes a safe part of a file name (`12/345` -> `12-345`), short enough
    for the id to stay within AUDIT_ID_MAX characters.
    """
    words = form.id.split("_")
    code = ("".join(w[0] for w in words) if len(words) > 1 else form.id).upper()
    room = AUDIT_ID_MAX - len(code) - len("--YYYYMM")
    return f"{code}-{safe_file_stem(case_number, room, part=True).upper()}-{due:%Y%m}"


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """The header and data rows of a CSV or XLSX file, or CaseListError with the reason."""
    name = str(path)
    if not path.is_file():
        raise CaseListError(f"[{name}] file not found. Check the path.")
    data = path.read_bytes()
    if not data.strip():
        raise CaseListError(f"[{name}] the case list is empty. Export it again with a header row.")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _xlsx_rows(name, data)
    not_csv = f"[{name}] is not a CSV text file. Save the case list as 'CSV UTF-8' or .xlsx."
    if data.startswith((b"PK\x03\x04", b"%PDF", b"\xd0\xcf\x11\xe0")):
        raise CaseListError(not_csv)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CaseListError(
            f"[{name}] is not UTF-8 text (byte {exc.start}). In Excel use Save As > "
            "'CSV UTF-8 (Comma delimited)'."
        ) from None
    if "\x00" in text:
        raise CaseListError(not_csv)
    rows = _csv_rows(name, text)
    if not rows:
        raise CaseListError(f"[{name}] the case list is empty. Export it again with a header row.")
    return rows[0], rows[1:]


def _csv_rows(name: str, text: str) -> list[list[str]]:
    """The non-blank rows; line breaks inside quoted cells are kept (CR, LF or CRLF)."""
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        return [r for r in reader if any(c.strip() for c in r)]
    except csv.Error as exc:
        raise CaseListError(
            f"[{name}] cannot be read as CSV (line {reader.line_num}: {printable(exc)}). "
            "Save the case list again as 'CSV UTF-8' or .xlsx."
        ) from None


def _xlsx_rows(name: str, data: bytes) -> tuple[list[str], list[list[str]]]:
    import openpyxl  # deferred: only case lists in .xlsx need it

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise CaseListError(
            f"[{name}] cannot be opened as an Excel workbook ({exc}). Save it again as .xlsx."
        ) from None
    sheet = workbook.worksheets[0]
    rows = [
        ["" if v is None else _cell_text(v) for v in row]
        for row in sheet.iter_rows(values_only=True)
        if any(v not in (None, "") for v in row)
    ]
    workbook.close()
    if not rows:
        raise CaseListError(f"[{name}] the first sheet is empty. Put the case list on sheet 1.")
    return rows[0], rows[1:]


def _cell_text(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def load_cases(path: str | Path, form: FormDefinition) -> list[Case]:
    """Every case in the list for this form; CaseListError listing every problem otherwise."""
    path = Path(path)
    header, rows = read_rows(path)
    return cases_from_rows(str(path), header, rows, form)


def cases_from_rows(
    name: str, header: list[str], rows: list[list[str]], form: FormDefinition
) -> list[Case]:
    """The cases of a table already in memory (`name` is what messages call it)."""
    columns = column_keys(header, form)
    missing = [
        c for c in dict.fromkeys((*CORE_COLUMNS, *form.required_columns)) if c not in columns
    ]
    if missing:
        raise CaseListError(
            [Issue(IssueCode.missing_column, name, ", ".join(missing), value=form.id)]
        )
    if not rows:
        raise CaseListError(f"[{name}] has a header row but no cases. Add one row per audit.")
    cases, issues = _build_cases(name, form, columns, rows)
    if issues:
        raise CaseListError(issues)
    if not cases:
        raise CaseListError(f"[{name}] has no rows for form '{form.id}' in its form column.")
    return cases


def _format(text: str) -> str:
    """docx (Word, the default), xlsx (Excel) or web (a private link to the form in a
    browser), however the list spells it."""
    folded = " ".join(text.strip().lower().lstrip(".").split())
    if folded in ("web", "web form", "browser"):
        return "web"
    return "xlsx" if folded in ("xlsx", "excel", "xls") else "docx"


def forms_in(path: str | Path) -> list[str]:
    """The form ids named in a case list's `form` column (an allocation), in first-seen order."""
    header, rows = read_rows(Path(path))
    columns = [normalise_column(c) for c in header]
    if "form" not in columns:
        raise CaseListError(f"[{path}] has no form column. Name the form with --form.")
    index = columns.index("form")
    known = all_forms()
    named: dict[str, None] = {}
    for number, raw in enumerate(rows, start=2):
        form_id = cell_text(raw[index]) if index < len(raw) else ""
        if form_id and form_id not in known:
            raise CaseListError(
                f"[{path} · row {number} · form] '{printable(form_id, 120)}' is not a form "
                f"here. Use one of {', '.join(sorted(known))}."
            )
        named.setdefault(form_id)
    return [f for f in named if f]


def _build_cases(
    name: str, form: FormDefinition, columns: list[str], rows: Iterable[list[str]]
) -> tuple[list[Case], list[Issue]]:
    cases: list[Case] = []
    issues: list[Issue] = []
    seen: set[str] = set()  # folded: CSC-P1 and csc-p1 would be one file on Windows or macOS
    for number, raw in enumerate(rows, start=2):  # row 1 is the header
        record = {c: (cell_text(raw[i]) if i < len(raw) else "") for i, c in enumerate(columns)}
        if record.get("form", form.id) != form.id:
            continue  # an allocation lists several forms; this row is for another one
        facts, row_issues = _facts(name, form, record, number)
        audit_id, id_issues = _audit_id(name, form, record, number, not row_issues)
        if row_issues or id_issues:
            issues += row_issues + id_issues
            continue
        if audit_id.casefold() in seen:
            issues.append(
                Issue(
                    IssueCode.duplicate_case,
                    name,
                    "case_number",
                    str(number),
                    record["case_number"],
                )
            )
            continue
        seen.add(audit_id.casefold())
        cases.append(_case(audit_id, form, facts, number, record))
    return cases, issues


def _facts(
    name: str, form: FormDefinition, record: dict[str, str], number: int
) -> tuple[dict[str, str], list[Issue]]:
    """The row's facts in the form's header order (dates in the form's format), and every
    missing or unreadable value."""
    issues: list[Issue] = []
    facts: dict[str, str] = {}
    date_columns = {h.column for h in form.header if h.kind is FieldKind.date}
    required = set(CORE_COLUMNS) | set(form.required_columns)
    for field in form.header:
        value = " ".join(record.get(c, "") for c in field.columns if record.get(c, ""))
        if not value and (field.required or field.column in required):
            where = " + ".join(field.columns)
            issues.append(Issue(IssueCode.missing_value, name, where, str(number), form.id))
        elif value and field.column in date_columns:
            parsed = parse_date(value)
            if parsed is None:
                issues.append(Issue(IssueCode.bad_date, name, field.column, str(number), value))
            else:
                value = show_date(parsed)
        facts[field.column] = value
    for column in CORE_COLUMNS:  # core columns count even if a form does not print them
        if column not in facts and not record.get(column):
            issues.append(Issue(IssueCode.missing_value, name, column, str(number), form.id))
    return facts, issues


def _audit_id(
    name: str, form: FormDefinition, record: dict[str, str], number: int, usable: bool
) -> tuple[str, list[Issue]]:
    """The row's audit id: its `audit_id` cell, checked, else one made from the case number
    and due date (when the row is otherwise `usable`). Ids name files, so they are checked
    here, before anything is written."""
    if "audit_id" in record:
        audit_id = record["audit_id"]
    elif not usable:
        return "", []  # the row's problems are reported already
    else:
        due = parse_date(record["due_date"])
        if due is None:
            return "", [
                Issue(IssueCode.bad_date, name, "due_date", str(number), record["due_date"])
            ]
        audit_id = audit_id_for(form, record["case_number"], due)
    problem = audit_id_problem(audit_id)
    if not problem:
        return audit_id, []
    return audit_id, [
        Issue(IssueCode.bad_audit_id, name, "audit_id", str(number), audit_id, problem)
    ]


def _case(
    audit_id: str, form: FormDefinition, facts: dict[str, str], number: int, record: dict[str, str]
) -> Case:
    return Case(
        audit_id,
        form.id,
        form.version,
        facts,
        number,
        record.get("auditor_email", ""),
        record.get("preparer_email", ""),
        _format(record.get("auditor_format", "")),
    )
