"""A council's audit programme as data: who audits, what is sampled, the deadlines, moderation,
the words reports use, who hears of an urgent concern and how long each kind of record is kept
(the retention schedule, which `formtool retention` applies).

A policy is a YAML file (templates/programmes/*.yaml ship `hull`, the default, `rochdale`,
`windsor-maidenhead` and `hampshire`; a team keeps its own in `programmes/` beside its forms).
`load_policy` checks it against programme_schema.json and the rules a schema cannot say, with
file, line and key in every message (`check_policy_file` lists them all), and returns a frozen
`Policy`. The database keeps the active policy as a versioned snapshot (`policy_snapshot` /
`policy_from_snapshot`), set by `formtool programme use`, and every allocation records the name
and version it ran under. Nothing in Python names a council's rule: the constants that were
Hull's live in `hull.yaml`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
from dataclasses import asdict, dataclass, field, fields
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from formtool.definitions import all_forms
from formtool.definitions.check import _LOADER, Lines, _compose, _line
from formtool.errors import FormtoolError, Issue, IssueCode, printable
from formtool.programme import deadlines as days
from formtool.programme.activity import Activity, rule_problems

DEFAULT_POLICY = "hull"
YEAR_KINDS = ("financial", "calendar")
#: Which team an auditor may audit: never their own (`other`), only their own (`own`), the
#: peer team the auditors file names (`peer`, else any other team), or any team (`any`).
TEAM_RULES = ("other", "own", "peer", "any")
ADJUSTMENTS = ("none", "nearest", "before", "after")
#: Named days of a month a deadline may fall on, besides a day number.
NAMED_DAYS = ("last", "last_working", "first_working")
#: The events a deadline may count working days from.
AFTER_EVENTS = ("distribution", "completion", "amendment requested", "return", "graded")
#: The steps formtool itself tracks; a policy may name more, which are printed only.
TRACKED_STEPS = ("distribution", "completion", "amendment", "oversight", "moderation")
#: How many days a web form link works at most, unless the policy says (`web_link_days`).
WEB_LINK_DAYS = 90


class PolicyError(FormtoolError):
    """A programme policy that cannot be used; the message names the file, line and key."""


#: The record kinds a retention schedule (`retention:`) covers, with formtool's default period
#: for each (README "Retention" gives the reasons; no shipped seed gives a figure).
RETENTION_DEFAULTS = {
    "audits": "6 years",
    "return_files": "2 years",
    "email": "1 year",
    "files": "1 year",
    "exports": "1 year",
    "access_log": "2 years",
    "backups": "35 days",
    "subject_access": "90 days",
}
DEFAULT_RETENTION_SOURCE = "formtool's default (README: Retention)"
_PERIOD = re.compile(r"([1-9][0-9]{0,3}) (day|week|month|year)s?")
_PERIOD_FIX = 'Write a number and days, weeks, months or years, e.g. "6 years" or "90 days".'
#: The longest period a schedule may give, in days (a date past year 9999 cannot be made).
_LONGEST_DAYS = 100 * 366


@dataclass(frozen=True)
class Period:
    """A retention period: `count` days, weeks, months or years."""

    count: int
    unit: str  # day, week, month or year

    @classmethod
    def parse(cls, text: str) -> Period:
        """A period written "6 years", "24 months", "1 week", "90 days"; PolicyError if not."""
        found = _PERIOD.fullmatch(text.strip().lower()) if isinstance(text, str) else None
        if found is None:
            raise PolicyError(f"'{printable(str(text), 40)}' is not a period. {_PERIOD_FIX}")
        return cls(int(found[1]), found[2])

    @property
    def days(self) -> int:
        """At most how many days it lasts (a month 31, a year 366), to bound it."""
        return self.count * {"day": 1, "week": 7, "month": 31, "year": 366}[self.unit]

    @property
    def shortest(self) -> int:
        """At least how many days it lasts (a month 28, a year 365)."""
        return self.count * {"day": 1, "week": 7, "month": 28, "year": 365}[self.unit]

    def after(self, day: dt.date) -> dt.date:
        """The day the period ends when it starts on `day` (31 Jan + 1 month: 28/29 Feb)."""
        if self.unit in ("day", "week"):
            return day + dt.timedelta(days=self.days)
        return days.add_months(day, self.count * (12 if self.unit == "year" else 1))

    def before(self, day: dt.date) -> dt.date:
        """The day a period ending on `day` started."""
        if self.unit in ("day", "week"):
            return day - dt.timedelta(days=self.days)
        return days.add_months(day, -self.count * (12 if self.unit == "year" else 1))

    def __str__(self) -> str:
        return f"{self.count} {self.unit}{'' if self.count == 1 else 's'}"


@dataclass(frozen=True)
class Keep:
    """How long one kind of record is kept (`keep`: "6 years") and where that comes from."""

    keep: str
    source: str = DEFAULT_RETENTION_SOURCE

    @property
    def period(self) -> Period:
        return Period.parse(self.keep)


@dataclass(frozen=True)
class DeadlineRule:
    """A day of a month (`month` months after the audit month): a day number or a named day,
    moved to a working day by `adjust`; or `working_days` working days after an event."""

    day: int | str | None = None
    month: int = 0
    adjust: str = "none"
    working_days: int | None = None
    after: str = ""

    def due(self, year: int, month: int, after: dt.date | None = None) -> dt.date:
        """The deadline for the audit month (year, month); `after` is the day of the event
        a working-days rule counts from (required for those)."""
        if self.working_days is not None:
            if after is None:
                raise PolicyError(f"This deadline counts from '{self.after}': give its date.")
            return days.add_working_days(after, self.working_days)
        y, m = year, month
        for _ in range(self.month):
            y, m = days.next_month(y, m)
        if self.day == "last":
            day = days.last_calendar_day(y, m)
        elif self.day == "last_working":
            day = days.on_or_before(days.last_calendar_day(y, m))
        elif self.day == "first_working":
            day = days.first_working_day(y, m)
        else:
            assert isinstance(self.day, int)
            day = dt.date(y, m, min(self.day, days.last_calendar_day(y, m).day))
        return _adjusted(day, self.adjust)

    def describe(self) -> str:
        """The rule in words, as a calendar or a report prints it."""
        if self.working_days is not None:
            plural = "" if self.working_days == 1 else "s"
            event = _EVENT_WORDS.get(self.after, self.after)
            return f"{self.working_days} working day{plural} after {event}"
        which = {0: "the month", 1: "the next month", 2: "the month after next"}.get(
            self.month, f"the month {self.month} months on"
        )
        named = {
            "last": "the last calendar day",
            "last_working": "the last working day",
            "first_working": "the first working day",
        }
        day = named.get(str(self.day)) or f"the {_ordinal(int(self.day or 1))}"
        tail = {
            "none": "",
            "nearest": " or the nearest working day",
            "before": " (the working day before, if not a working day)",
            "after": " (the next working day, if not a working day)",
        }[self.adjust]
        if str(self.day) in ("last_working", "first_working"):
            tail = ""  # already a working day: adjusting it changes nothing
        return f"{day} of {which}{tail}"


#: How describe() words the events a working-days deadline counts from.
_EVENT_WORDS = {
    "distribution": "the audit list goes out",
    "completion": "the completion deadline",
    "amendment requested": "an amendment is requested",
    "return": "the return comes in",
    "graded": "the grade is given",
}


def _adjusted(day: dt.date, adjust: str) -> dt.date:
    if adjust == "nearest":
        return days.nearest_working_day(day)
    if adjust == "before":
        return days.on_or_before(day)
    if adjust == "after":
        return day if days.is_working_day(day) else days.add_working_days(day, 1)
    return day


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@dataclass(frozen=True)
class Deadline:
    """One step's deadline: `step` (completion, amendment, moderation, ...), the words a
    calendar prints (`label`), the rule and the seed paragraph it comes from."""

    step: str
    label: str
    rule: DeadlineRule
    source: str = ""


@dataclass(frozen=True)
class AuditorGroup:
    """Auditors the auditors file puts in one `group` (e.g. team managers), with their own
    quotas and months off; None or empty: the programme's."""

    name: str
    per_month: int | None = None
    per_year: int | None = None
    months_off: frozenset[int] | None = None
    source: str = ""


@dataclass(frozen=True)
class AuditorRules:
    """Who audits and how much: quotas per auditor (None: no cap), the calendar months
    nobody audits, the largest share of auditors on break in a month (None: no limit),
    the months an auditor rests after an audit, and the year the yearly quota counts in."""

    year: str = "financial"
    per_year: int | None = None
    per_month: int | None = None
    months_off: frozenset[int] = frozenset()
    break_limit: float | None = None
    spacing_months: int = 0
    groups: tuple[AuditorGroup, ...] = ()
    source: str = ""

    def group(self, name: str) -> AuditorGroup | None:
        return next((g for g in self.groups if g.name == name), None)


@dataclass(frozen=True)
class SampleRule:
    """One sample a month: `size` cases in all, or `per_auditor` per auditor of `auditors`
    (groups; empty: every auditor), or `per_worker` per worker the population names. It runs
    in `months` (calendar month numbers; empty: every month); `team` says whose cases an
    auditor may take (one rule, or one per calendar month). A `chosen` slot is named by the
    auditor (allocate --chosen), not drawn."""

    name: str
    form: str
    categories: tuple[str, ...]
    size: int = 0
    per_auditor: int = 0
    per_worker: int = 0
    months: frozenset[int] = frozenset()
    at_least: dict[str, int] = field(default_factory=dict)
    auditors: tuple[str, ...] = ()
    team: str | dict[int, str] = "other"
    chosen: bool = False
    source: str = ""

    def runs_in(self, month: int) -> bool:
        return not self.months or month in self.months

    def team_rule(self, month: int) -> str:
        return self.team if isinstance(self.team, str) else self.team.get(month, "other")


@dataclass(frozen=True)
class Reaudit:
    """Cases graded with a follow-up grade are audited again within `within_months`, with a
    review meeting at `review_weeks` (seed 001, Appendix A para 25)."""

    within_months: int = 2
    review_weeks: int = 4
    source: str = ""


@dataclass(frozen=True)
class OnClosure:
    """A case the population shows closed (its `closed_on` column) in the month before, in
    one of `categories` (empty: any), is audited again with `form`, by an auditor of
    `auditors` under `team`. A policy may give several, one per kind of case."""

    form: str
    team: str = "own"
    auditors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    source: str = ""

    def takes(self, category: str) -> bool:
        return not self.categories or category in self.categories


@dataclass(frozen=True)
class ModerationRules:
    """The share of complete audits moderated, who moderates, and the moderator whose
    decision on a challenged grade stands (a user with the moderator role)."""

    rate: float = 0.10
    by: str = "a moderator"
    senior_moderator: str = ""
    source: str = ""


@dataclass(frozen=True)
class Concerns:
    """Who is told at once of an immediate concern for a child's safety or welfare: contacts
    per team, and the fallback for teams the policy does not list."""

    fallback: tuple[str, ...]
    teams: dict[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = ""

    def contacts(self, team: str) -> tuple[str, ...]:
        return self.teams.get(team) or self.fallback


@dataclass(frozen=True)
class Policy:
    """One council's audit programme (see the module docstring)."""

    name: str
    title: str
    source: str
    auditors: AuditorRules
    samples: tuple[SampleRule, ...]
    deadlines: dict[str, Deadline]
    concerns: Concerns
    exclusion_months: int = 12
    reaudit: Reaudit | None = None
    on_closure: tuple[OnClosure, ...] = ()  # the first rule taking a case's category
    form_deadlines: dict[str, dict[str, Deadline]] = field(default_factory=dict)
    moderation: ModerationRules = ModerationRules()
    words: dict[str, str] = field(default_factory=dict)
    activities: tuple[Activity, ...] = ()  # the QA activities besides the monthly samples
    retention: dict[str, Keep] = field(default_factory=dict)  # kinds it gives; else defaults
    web_link_days: int = WEB_LINK_DAYS  # a web form link works at most this long
    version: int = 0  # the database's version of this policy; 0: not stored yet

    def activity(self, activity_id: str) -> Activity | None:
        """The policy's activity with this id, if it has one."""
        return next((a for a in self.activities if a.id == activity_id), None)

    def deadline(self, step: str, form_id: str = "") -> Deadline | None:
        """The step's deadline for a form: the form's own, else the programme's."""
        return self.form_deadlines.get(form_id, {}).get(step) or self.deadlines.get(step)

    def due(
        self, step: str, form_id: str, year: int, month: int, after: dt.date | None = None
    ) -> dt.date | None:
        """When the step falls due for an audit of `form_id` in the month; None if the
        policy has no such step."""
        deadline = self.deadline(step, form_id)
        return deadline.rule.due(year, month, after) if deadline else None

    def kept_for(self, kind: str) -> Keep:
        """How long records of `kind` (a RETENTION_DEFAULTS key) are kept: the policy's
        figure, else formtool's default."""
        return self.retention.get(kind) or Keep(RETENTION_DEFAULTS[kind])

    def word(self, key: str, default: str = "") -> str:
        return self.words.get(key, default)

    def snapshot(self) -> dict[str, Any]:
        """The policy as JSON-able data in the file's shape, with its version (see
        `policy_snapshot`)."""
        return policy_snapshot(self)


# --- files ------------------------------------------------------------------------------

SCHEMA_FILE = "programme_schema.json"
PROGRAMMES = "programmes"  # the folder of policies: under templates/ and beside a team's forms
MAX_POLICY_BYTES = 1_000_000  # a policy is a page or two of YAML
MAX_POLICY_FILES = 200
README = "templates/programmes/README.md"
_MONTHS = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
_COUNTS = ("size", "per_auditor", "per_worker")
_MONTH_FIX = "Write a month number 1-12 or an English name such as August or Aug."


@cache
def programmes_dir() -> Path:
    """The shipped templates/programmes folder (installed as formtool.templates)."""
    return Path(str(resources.files("formtool.templates") / PROGRAMMES))


@cache
def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(
        (resources.files("formtool.programme") / SCHEMA_FILE).read_text("utf-8")
    )
    return schema


def policy_files(team_dir: Path | None = None) -> dict[str, Path]:
    """Every policy by name: the shipped ones, then the team's (`<team_dir>/programmes/`).
    A team policy may not take a shipped policy's name."""
    shipped = {p.stem: p for p in sorted(programmes_dir().glob("*.yaml"))}
    folder = Path(team_dir) / PROGRAMMES if team_dir else None
    found = sorted(folder.glob("*.yaml")) if folder and folder.is_dir() else []
    if len(found) > MAX_POLICY_FILES:
        raise PolicyError(
            f"[{folder}] holds {len(found)} policy files; formtool reads at most "
            f"{MAX_POLICY_FILES}. Keep only the policies your team uses there."
        )
    for path in found:
        if path.stem in shipped:
            raise PolicyError(_Place(str(path), {}, {}).clash(path).message)
    return shipped | {p.stem: p for p in found}


def load_policy(name_or_path: str | Path, team_dir: Path | None = None) -> Policy:
    """A policy by name (shipped, or the team's in `<team_dir>/programmes/`) or by file path,
    checked: a policy with problems raises one PolicyError listing every one of them."""
    issues, data = _checked_file(_policy_path(name_or_path, team_dir))
    if issues:
        raise PolicyError("\n".join(i.message for i in issues))
    return _build(data, 0)


def _policy_path(name_or_path: str | Path, team_dir: Path | None) -> Path:
    text, path = str(name_or_path), Path(name_or_path)
    if isinstance(name_or_path, Path) or path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
        return path
    files = policy_files(team_dir)
    if text in files:
        return files[text]
    raise PolicyError(
        f"[programme '{printable(text, 60)}'] no policy has this name. Use one of "
        f"{', '.join(sorted(files))}, or give the path of a policy file."
    )


@cache
def default_policy() -> Policy:
    """The shipped default (`hull`), read once."""
    return load_policy(DEFAULT_POLICY)


def check_policy_file(path: str | Path) -> list[Issue]:
    """Every problem in a policy file, each with its file, line and key ([] when usable)."""
    return _checked_file(Path(path))[0]


def _checked_file(path: Path) -> tuple[list[Issue], dict[str, Any]]:
    """The problems in a policy file and, when there are none, its data."""

    def failed(value: str, fix: str = "Check the path.", line: int = 1) -> list[Issue]:
        return [Issue(IssueCode.bad_programme, str(path), "file", str(line), value, fix)]

    try:
        if path.stat().st_size > MAX_POLICY_BYTES:
            return failed("is too large for a policy"), {}
        text = path.read_text(encoding="utf-8")
        # An alias repeats a node without copying it: refused, so checking stays bounded.
        for event in yaml.parse(text, Loader=_LOADER):
            if isinstance(event, yaml.AliasEvent):
                at = event.start_mark.line + 1 if event.start_mark else 1
                return failed("uses a YAML alias (*name)", "Write the value out.", at), {}
        data, lines = _compose(path)
    except FileNotFoundError:
        return failed("does not exist"), {}
    except UnicodeDecodeError:
        return failed("is not UTF-8 text", "Save it as UTF-8 text."), {}
    except yaml.MarkedYAMLError as exc:
        mark = str(exc.problem_mark.line + 1) if exc.problem_mark else "1"
        return [Issue(IssueCode.yaml_syntax, str(path), "", mark, str(exc.problem))], {}
    except (OSError, yaml.YAMLError) as exc:
        return failed(f"cannot be read ({type(exc).__name__})"), {}
    issues = _problems(data, lines, str(path), frozenset(all_forms()))
    if not issues:
        issues = _Place(str(path), data, lines).file_name(path)
    return issues, data if not issues else {}


# --- checking ---------------------------------------------------------------------------


def month_number(value: object) -> int | None:
    """A calendar month written as 1-12 (or "1"-"12") or an English name or its first three
    letters; None if it is not one."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 1 <= value <= 12 else None
    text = value.strip().lower() if isinstance(value, str) else ""
    if text.isdigit():
        return month_number(int(text))
    return next((n for n, m in enumerate(_MONTHS, start=1) if text and text in (m, m[:3])), None)


class _Place:
    """Where problems are found: a file (or a snapshot), its data and the line of every key."""

    def __init__(self, file: str, data: Any, lines: Lines):
        self.file, self.data, self.lines = file, data, lines

    def issue(self, at: tuple[Any, ...], value: str, fix: str = f"See {README}.") -> Issue:
        key = _key(self.data, at) or "file"
        return Issue(IssueCode.bad_programme, self.file, key, _line(self.lines, at), value, fix)

    def clash(self, path: Path) -> Issue:
        """A policy outside the shipped folder named like a shipped one."""
        return self.issue(
            ("name",),
            f"'{path.stem}' is the name of a shipped policy",
            f"Rename the file and its name: to one of your own, e.g. {path.stem}-local.",
        )

    def file_name(self, path: Path) -> list[Issue]:
        """The name: is the file's name (how `programme use NAME` finds it), and a team
        policy may not take a shipped one's."""
        found = []
        if self.data["name"] != path.stem:
            found.append(
                self.issue(
                    ("name",),
                    f"name '{self.data['name']}' differs from the file name '{path.name}'",
                    "Make them the same.",
                )
            )
        shipped = programmes_dir().resolve()
        if path.resolve().parent != shipped and (shipped / f"{path.stem}.yaml").exists():
            found.append(self.clash(path))
        return found

    def schema_issues(self, error: jsonschema.ValidationError) -> list[Issue]:
        at = tuple(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = sorted(error.schema.get("properties", {}))
            fix = f"Use one of {', '.join(known)}." if known else f"See {README}."
            extra = [k for k in error.instance if k not in known]
            return [self.issue((*at, k), f"unknown key '{k}'", fix) for k in extra]
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [k for k in error.validator_value if k not in error.instance]
            return [
                self.issue((*at, k), f"'{k}:' is missing", f"Add it ({README}).") for k in missing
            ]
        if error.validator == "anyOf" and error.context:
            # The branch of the value's own type says most: "'x' is not one of [...]".
            wants_enum = isinstance(error.instance, str)
            best = min(
                error.context,
                key=lambda e: (e.validator == "type", wants_enum != (e.validator == "enum")),
            )
            return [self.issue(at, best.message)]
        return [self.issue(at, error.message)]


def _problems(
    data: Any, lines: Lines, file: str, known_forms: frozenset[str] | None
) -> list[Issue]:
    """Every problem in policy data: the schema's, then the rules a schema cannot say.
    `known_forms` None: form ids are not checked (a stored snapshot)."""
    place = _Place(file, data, lines)
    if not isinstance(data, dict):
        return [
            place.issue((), "is not a policy: a policy is a mapping of keys (name:, title:, ...)")
        ]
    validator = jsonschema.Draft202012Validator(_schema())
    errors = list(validator.iter_errors(_string_keys(data)))
    issues = [issue for error in errors for issue in place.schema_issues(error)]
    if all(e.validator == "additionalProperties" for e in errors):
        issues += _Rules(place, known_forms).issues()  # unknown keys hide no other problem
    return sorted(issues, key=lambda i: int(i.location or 0))


def _string_keys(node: Any) -> Any:
    """The data with every mapping key a string, as JSON Schema expects (YAML reads a key
    written 8 as a number)."""
    if isinstance(node, dict):
        return {str(k): _string_keys(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_string_keys(v) for v in node]
    return node


def _key(data: Any, path: tuple[Any, ...]) -> str:
    """A key as people read it: `samples[Control sample].size`, `deadlines.completion.day`."""
    text = ""
    node = data
    for step in path:
        in_list = isinstance(node, list)
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            node = None
        if in_list:  # an entry by its id (activities) or name, else its number
            name = node.get("id", node.get("name")) if isinstance(node, dict) else None
            text += f"[{name}]" if isinstance(name, str) else f"[{step + 1}]"
        else:
            text += f".{step}" if text else str(step)
    return text


class _Rules:
    """The rules a schema cannot say, each problem with its line and key. Runs on data the
    schema accepts (but for unknown keys)."""

    def __init__(self, place: _Place, known_forms: frozenset[str] | None):
        self.place, self.data, self.forms = place, place.data, known_forms
        self.found: list[Issue] = []
        self.groups = [g["name"] for g in self.data["auditors"].get("groups", [])]

    def add(self, at: tuple[Any, ...], value: str, fix: str) -> None:
        self.found.append(self.place.issue(at, value, fix))

    def issues(self) -> list[Issue]:
        rules = self.data["auditors"]
        self.months(("auditors", "months_off"), rules.get("months_off", []))
        limit = rules.get("break_limit")
        if limit is not None and not 0 < limit <= 1:
            self.add(
                ("auditors", "break_limit"),
                f"break limit {limit} is not a share of the auditors",
                "Write a share above 0 and at most 1, e.g. 0.20 for 20%, or leave it out.",
            )
        for index, group in enumerate(rules.get("groups", [])):
            self.months(("auditors", "groups", index, "months_off"), group.get("months_off", []))
        self.unique(("auditors", "groups"), self.groups, "group")
        for index, sample in enumerate(self.data["samples"]):
            self.sample(("samples", index), sample)
        self.unique(("samples",), [s["name"] for s in self.data["samples"]], "sample")
        self.closures()
        self.activities()
        self.deadlines()
        self.concerns(self.data["concerns"])
        self.retention(self.data.get("retention", {}))
        return self.found

    def retention(self, schedule: dict[str, Any]) -> None:
        """Each kind's `keep:` is a period formtool can count (at most 100 years)."""
        for kind, rule in schedule.items():
            at = ("retention", kind, "keep")
            try:
                period = Period.parse(rule["keep"])
            except PolicyError:
                self.add(at, f"'{rule['keep']}' is not a period", _PERIOD_FIX)
                continue
            if period.days > _LONGEST_DAYS:
                self.add(at, f"{period} is longer than formtool keeps", "Give at most 100 years.")

    def closures(self) -> None:
        """Each on_closure rule's form and groups; a rule after one taking every category
        would never be used."""
        for index, (at, closure) in enumerate(_closure_rules(self.data)):
            self.form((*at, "form"), closure["form"])
            self.group_names((*at, "auditors"), closure.get("auditors", []))
            earlier = [c for _, c in _closure_rules(self.data)[:index]]
            if any(not c.get("categories") for c in earlier):
                self.add(
                    at,
                    "this rule is never used: an earlier on_closure rule takes every category",
                    "Give the earlier rule categories:, or move this one above it.",
                )

    def activities(self) -> None:
        """Each activity's form, groups, months and deadline, unique ids and codes, and the
        rules about its own fields (activity.rule_problems)."""
        activities = self.data.get("activities", [])
        for index, activity in enumerate(activities):
            at = ("activities", index)
            self.form((*at, "form"), activity["form"])
            self.group_names((*at, "auditors"), activity.get("auditors", []))
            self.months((*at, "months"), activity.get("months", []))
            if "deadline" in activity:
                self.deadline((*at, "deadline"), activity["deadline"])
            for key, value, fix in rule_problems(activity):
                self.add((*at, *key), value, fix)
        for name in ("id", "code"):
            for index, value in enumerate(a[name] for a in activities):
                if value in [a[name] for a in activities[:index]]:
                    fix = "Give each activity its own."
                    self.add(
                        ("activities", index, name), f"two activities have {name} {value}", fix
                    )

    def months(self, at: tuple[Any, ...], values: list[Any]) -> None:
        for index, value in enumerate(values):
            if month_number(value) is None:
                self.add((*at, index), f"'{value}' is not a month", _MONTH_FIX)

    def unique(self, at: tuple[Any, ...], names: list[str], what: str) -> None:
        for index, name in enumerate(names):
            if name in names[:index]:
                self.add((*at, index), f"two {what}s are called '{name}'", "Rename one.")

    def form(self, at: tuple[Any, ...], form: str) -> None:
        if self.forms is not None and form not in self.forms:
            near = difflib.get_close_matches(form, sorted(self.forms), 1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            fix = f"Use a form `formtool forms list` shows{hint}."
            self.add(at, f"form '{form}' is not a form formtool knows", fix)

    def group_names(self, at: tuple[Any, ...], names: list[str]) -> None:
        declared = ", ".join(self.groups)
        for index, name in enumerate(names):
            if name not in self.groups:
                self.add(
                    (*at, index),
                    f"group '{name}' is not declared under auditors: groups:",
                    f"Declare it there, or use one of {declared}." if declared else "Declare it.",
                )

    def sample(self, at: tuple[Any, ...], sample: dict[str, Any]) -> None:
        self.form((*at, "form"), sample["form"])
        self.group_names((*at, "auditors"), sample.get("auditors", []))
        self.months((*at, "months"), sample.get("months", []))
        counts = [k for k in _COUNTS if k in sample]
        if len(counts) != 1:
            self.add(
                (*at, counts[1]) if counts else at,
                f"gives {' and '.join(counts)}" if counts else "says no number of cases",
                "Give exactly one of size: (cases in the month), per_auditor: or per_worker:.",
            )
        if sample.get("at_least") and "size" not in sample:
            self.add((*at, "at_least"), "at_least needs a size", "Give size: too.")
        elif sum(sample.get("at_least", {}).values()) > sample.get("size", 0):
            self.add((*at, "at_least"), "at_least asks for more cases than size", "Lower it.")
        if sample.get("chosen") and "per_auditor" not in sample:
            fix = "Use per_auditor: with chosen: true."
            self.add((*at, "chosen"), "a chosen case is named by each auditor", fix)
        if isinstance(sample.get("team"), dict):
            self.team_by_month((*at, "team"), sample)

    def team_by_month(self, at: tuple[Any, ...], sample: dict[str, Any]) -> None:
        for key in sample["team"]:
            if month_number(key) is None:
                self.add((*at, key), f"'{key}' is not a month", _MONTH_FIX)
        runs = _months(sample.get("months")) or frozenset(range(1, 13))
        if missing := sorted(runs - _months(list(sample["team"]))):
            self.add(
                at,
                "names no team rule for " + ", ".join(_MONTHS[m - 1].title() for m in missing),
                "Give a rule for every month the sample runs in.",
            )

    def deadlines(self) -> None:
        places = [(("deadlines",), self.data.get("deadlines", {}))] + [
            (("forms", form, "deadlines"), entry["deadlines"])
            for form, entry in self.data.get("forms", {}).items()
        ]
        labels: set[str] = set()
        for at, steps in places:
            for step, deadline in steps.items():
                self.deadline((*at, step), deadline)
                if deadline["label"] in labels:
                    self.add((*at, step, "label"), "this label is used twice", "Rename one.")
                labels.add(deadline["label"])
        for form in self.data.get("forms", {}):
            self.form(("forms", form), form)
        self.completion()

    def deadline(self, at: tuple[Any, ...], deadline: dict[str, Any]) -> None:
        day_rule = [k for k in ("day", "month", "adjust") if k in deadline]
        count_rule = [k for k in ("working_days", "after") if k in deadline]
        if ("day" in day_rule and not count_rule) or (len(count_rule) == 2 and not day_rule):
            return
        self.add(
            at,
            f"is not one kind of deadline ({', '.join([*day_rule, *count_rule]) or 'no day'})",
            "Give day: (with month: and adjust: if needed), or working_days: with after:.",
        )

    def completion(self) -> None:
        """Every form the policy audits has a completion deadline: its own or the
        programme's."""
        if "completion" in self.data.get("deadlines", {}):
            return
        audited = {s["form"] for s in self.data["samples"]}
        audited |= {closure["form"] for _, closure in _closure_rules(self.data)}
        audited |= {a["form"] for a in self.data.get("activities", []) if "deadline" not in a}
        own = self.data.get("forms", {})
        if missing := sorted(
            f for f in audited if "completion" not in own.get(f, {}).get("deadlines", {})
        ):
            self.add(
                ("deadlines",),
                f"no completion deadline for {', '.join(missing)}",
                "Add deadlines: completion: (e.g. day: last), or one under the form's deadlines.",
            )

    def concerns(self, concerns: dict[str, Any]) -> None:
        from formtool.programme.mail import valid_address  # mail imports the store: on use

        if not concerns.get("fallback"):
            self.add(
                ("concerns", "fallback"),
                "no fallback contact for urgent concerns",
                "Add fallback: [an address] for the teams the policy does not list.",
            )
        lists = [(("concerns", "fallback"), concerns.get("fallback", []))] + [
            (("concerns", "teams", team), emails)
            for team, emails in concerns.get("teams", {}).items()
        ]
        for at, emails in lists:
            if not emails and at[1] == "teams":
                self.add(at, "lists no contact", "Add an address, or remove the team.")
            for index, email in enumerate(emails):
                if not valid_address(email):
                    self.add((*at, index), f"'{email}' is not an email address", "Fix it.")


# --- data <-> Policy --------------------------------------------------------------------


def policy_from_data(data: dict[str, Any], name_hint: str = "") -> Policy:
    """A policy from data in the file's shape (parsed YAML, or a snapshot with its
    `version`), checked like a file except that form ids are not looked up."""
    if not isinstance(data, dict):
        raise PolicyError(f"[{name_hint or 'policy'}] is not a policy: a mapping of keys.")
    where = name_hint or str(data.get("name") or "policy")
    data = dict(data)
    version = data.pop("version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise PolicyError(f"[{where} · version] '{version}' is not a version number.")
    if issues := _problems(data, {}, where, None):
        raise PolicyError("\n".join(_unlined(i) for i in issues))
    return _build(data, version)


def _unlined(issue: Issue) -> str:
    """An issue in data that has no lines (a snapshot): file and key, no line."""
    return f"[{printable(issue.file)} · {printable(issue.field)}] {issue.value}. {issue.expected}"


def policy_from_snapshot(data: dict[str, Any], version: int) -> Policy:
    """The policy a database kept (`policy_snapshot`) as its version `version`."""
    return policy_from_data({**data, "version": version}, f"stored policy v{version}")


def _closure_rules(data: dict[str, Any]) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """(key path, rule) of each on_closure rule: one mapping, or a list of them."""
    rules = data.get("on_closure")
    if isinstance(rules, list):
        return [(("on_closure", i), r) for i, r in enumerate(rules)]
    return [(("on_closure",), rules)] if rules else []


def _months(values: list[Any] | None) -> frozenset[int]:
    return frozenset(n for n in map(month_number, values or []) if n is not None)


def _build(data: dict[str, Any], version: int) -> Policy:
    """The Policy of checked data. The file's keys are the dataclasses' field names."""
    a = data["auditors"]
    groups = tuple(
        AuditorGroup(**{**g, "months_off": _months(g["months_off"]) if "months_off" in g else None})
        for g in a.get("groups", [])
    )
    auditors = {**a, "months_off": _months(a.get("months_off")), "groups": groups}
    c, m = data["concerns"], data["moderation"]
    return Policy(
        name=data["name"],
        title=data["title"],
        source=data["source"],
        auditors=AuditorRules(**auditors, year=data["year"]),
        samples=tuple(_sample(s) for s in data["samples"]),
        deadlines=_deadlines(data.get("deadlines", {})),
        concerns=Concerns(
            fallback=tuple(c.get("fallback", ())),
            teams={team: tuple(emails) for team, emails in c.get("teams", {}).items()},
            source=c["source"],
        ),
        exclusion_months=data["exclusion_months"],
        reaudit=Reaudit(**data["reaudit"]) if "reaudit" in data else None,
        on_closure=tuple(
            OnClosure(
                **{
                    **closure,
                    "auditors": tuple(closure.get("auditors", ())),
                    "categories": tuple(closure.get("categories", ())),
                }
            )
            for _, closure in _closure_rules(data)
        ),
        form_deadlines={f: _deadlines(e["deadlines"]) for f, e in data.get("forms", {}).items()},
        moderation=ModerationRules(**{**m, "rate": float(m["rate"])}),
        words=dict(data.get("words", {})),
        activities=tuple(_activity(a) for a in data.get("activities", [])),
        retention={k: Keep(**rule) for k, rule in data.get("retention", {}).items()},
        web_link_days=data.get("web_link_days", WEB_LINK_DAYS),
        version=version,
    )


def _sample(s: dict[str, Any]) -> SampleRule:
    team = s.get("team", "other")
    return SampleRule(
        **{
            **s,
            "categories": tuple(s["categories"]),
            "months": _months(s.get("months")),
            "at_least": dict(s.get("at_least", {})),
            "auditors": tuple(s.get("auditors", ())),
            "team": team
            if isinstance(team, str)
            else {month_number(k): v for k, v in team.items()},
        }
    )


def _activity(a: dict[str, Any]) -> Activity:
    deadline = dict(a.get("deadline", {}))
    source = deadline.pop("source", "")
    return Activity(
        **{
            **a,
            "categories": tuple(a.get("categories", ())),
            "months": _months(a.get("months")),
            "auditors": tuple(a.get("auditors", ())),
            "results_for": tuple(a.get("results_for", ())),
            "share": float(a.get("share", 1.0)),
            "deadline": DeadlineRule(**deadline) if deadline else None,
            "deadline_source": source,
        }
    )


def _activity_data(activity: Activity) -> dict[str, Any]:
    """An activity in the file's shape: its required keys and every value that differs
    from the default (a default written out, e.g. share: with choose random, is refused)."""
    out = {
        f.name: getattr(activity, f.name)
        for f in fields(Activity)
        if f.name in _ACTIVITY_REQUIRED or getattr(activity, f.name) != f.default
    }
    out.pop("deadline_source", None)  # the file gives it inside deadline:
    if activity.deadline:
        source = {"source": activity.deadline_source} if activity.deadline_source else {}
        out["deadline"] = _rule_data(activity.deadline) | source
    return out


_ACTIVITY_REQUIRED = ("id", "code", "name", "kind", "form", "source")


def _deadlines(steps: dict[str, Any]) -> dict[str, Deadline]:
    return {
        step: Deadline(
            step,
            d["label"],
            DeadlineRule(**{k: v for k, v in d.items() if k not in ("label", "source")}),
            d["source"],
        )
        for step, d in steps.items()
    }


def policy_snapshot(policy: Policy) -> dict[str, Any]:
    """The policy as JSON-able data in the file's shape, with its version: what the database
    keeps, and what `policy_from_snapshot` reads back into an equal Policy."""
    auditors = _plain(asdict(policy.auditors))
    year = auditors.pop("year")
    return _plain(
        {
            "name": policy.name,
            "title": policy.title,
            "source": policy.source,
            "year": year,
            "auditors": auditors,
            "exclusion_months": policy.exclusion_months,
            "reaudit": policy.reaudit and asdict(policy.reaudit),
            "on_closure": [asdict(c) for c in policy.on_closure] or None,
            "samples": [
                {k: v for k, v in asdict(s).items() if v or k not in _COUNTS}
                for s in policy.samples
            ],
            "deadlines": _deadlines_data(policy.deadlines),
            "forms": {
                f: {"deadlines": _deadlines_data(s)} for f, s in policy.form_deadlines.items()
            },
            "moderation": asdict(policy.moderation),
            "words": policy.words,
            "activities": [_activity_data(a) for a in policy.activities] or None,
            "retention": {k: asdict(v) for k, v in policy.retention.items()} or None,
            "concerns": asdict(policy.concerns),
            "web_link_days": _unless_default(policy.web_link_days, WEB_LINK_DAYS),
            "version": policy.version,
        }
    )


def _unless_default(value: int, default: int) -> int | None:
    """A key added later is kept only when set: a stored policy's snapshot (and its version)
    stays as it was."""
    return None if value == default else value


def _plain(value: Any) -> Any:
    """JSON-able: lists for sets (sorted) and tuples, string keys, no None (no key says
    nothing: the schema has no null)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _deadlines_data(steps: dict[str, Deadline]) -> dict[str, Any]:
    return {
        step: {"label": d.label, **_rule_data(d.rule), "source": d.source}
        for step, d in steps.items()
    }


def _rule_data(r: DeadlineRule) -> dict[str, Any]:
    if r.working_days is not None:
        return {"working_days": r.working_days, "after": r.after}
    return {"day": r.day, "month": r.month, "adjust": r.adjust}


# --- timetables -------------------------------------------------------------------------


def _all_deadlines(policy: Policy) -> list[tuple[str, dict[str, Deadline], Deadline]]:
    """Every deadline, with its form ("": the programme's) and the steps it may count from:
    the programme's, then each form's."""
    found = [("", policy.deadlines, d) for d in policy.deadlines.values()]
    for form, steps in policy.form_deadlines.items():
        found += [(form, policy.deadlines | steps, d) for d in steps.values()]
    return found


def timetable(policy: Policy, year: int, month: int) -> dict[str, dt.date]:
    """label -> date of every deadline of the audit month (year, month) that falls on a
    date: the day-of-month rules, and working-days rules counted from one of them (e.g.
    management oversight, 10 working days after completion). Rules that count from an
    audit's own event (an amendment requested) have no date here: `describe_timetable`."""
    out: dict[str, dt.date] = {}
    for _, steps, d in _all_deadlines(policy):
        rule = d.rule
        if rule.working_days is None:
            out[d.label] = rule.due(year, month)
        elif rule.after in steps and steps[rule.after].rule.working_days is None:
            out[d.label] = rule.due(year, month, steps[rule.after].rule.due(year, month))
    return out


def describe_timetable(policy: Policy) -> list[tuple[str, str, str]]:
    """(label, rule in words, source) of every deadline, the programme's then each form's."""
    return [
        (d.label, (f"{form} forms: " if form else "") + d.rule.describe(), d.source)
        for form, _, d in _all_deadlines(policy)
    ]
