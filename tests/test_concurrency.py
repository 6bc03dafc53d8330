"""A team store under concurrent use, with real processes, on SQLite and PostgreSQL: nothing
lost, nothing doubled, one decision per audit, and a one-line refusal for the loser."""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from formtool import store
from formtool.definitions import get_form
from formtool.demo.fill import fill_docx, stamp_saved
from formtool.generate import write_forms
from formtool.periods import Month
from formtool.programme.policy import load_policy

from conftest import make_cases, write_cases

MAX_PER_YEAR = load_policy("hull").auditors.per_year or 0  # hull.yaml, the default: 10

FORMTOOL = [sys.executable, "-m", "formtool"]
EARLY, LATE = dt.datetime(2026, 11, 10, 9), dt.datetime(2026, 11, 20, 15)


def run_all(commands: list[list[str]]) -> list[subprocess.CompletedProcess[str]]:
    """Start every command at once; wait for all."""
    procs = [
        subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for c in commands
    ]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def two_versions(tmp_path: Path, db: store.Store, count: int) -> tuple[list[Path], dict]:
    """`count` CSC audits, each returned twice: v1 saved early, v2 saved late."""
    form = get_form("csc")
    made = write_forms(
        form, make_cases(tmp_path, form, count), tmp_path / "forms", ("docx",), db=db
    )
    files, newer = [], {}
    for item in made:
        data = item.path.read_bytes()
        for version, saved in (("v1", EARLY), ("v2", LATE)):
            path = tmp_path / "returns" / f"{version}-{item.path.name}"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(
                stamp_saved(
                    fill_docx(
                        data,
                        {
                            "kss1.seen_alone": "Yes" if version == "v2" else "No",
                            "kss1.seen_alone.evidence": f"{version} {item.case.audit_id}",
                        },
                    ),
                    saved,
                )
            )
            files.append(path)
        newer[item.case.audit_id] = f"v2 {item.case.audit_id}"
    return files, newer


def test_eight_importers_on_overlapping_sets_store_everything_once(db_url, tmp_path):
    db = store.open_store(db_url)
    files, newer = two_versions(tmp_path, db, 30)
    rng = random.Random(8)
    batches = []
    for _ in range(8):  # each process gets about half the files, in its own order
        batch = rng.sample(files, len(files) // 2)
        batches.append(batch)
    missing = set(files) - {f for b in batches for f in b}
    batches[0] += sorted(missing)
    results = run_all(
        [[*FORMTOOL, "import", *map(str, b), "--db", db_url, "--json"] for b in batches]
    )
    assert [r.returncode for r in results] == [0] * 8, [r.stderr[-500:] for r in results]
    assert not any("Traceback" in r.stderr for r in results)
    outcomes = [o for r in results for o in json.loads(r.stdout)]
    first_time = Counter(Path(o["file"]).name for o in outcomes if o["status"] != "unchanged")
    assert sorted(first_time.values()) == [1] * len(files)  # each file stored exactly once
    assert {o["status"] for o in outcomes} <= {"imported", "updated", "history", "unchanged"}
    with db.engine.connect() as conn:
        returns = conn.execute(
            sa.select(
                store.returns.c.audit_id, store.returns.c.is_current, store.returns.c.saved_at
            )
        ).all()
        current = conn.execute(
            sa.select(store.answers.c.comment, store.returns.c.audit_id)
            .join(store.returns, store.returns.c.id == store.answers.c.return_id)
            .where(store.returns.c.is_current & (store.answers.c.key == "kss1.seen_alone"))
        ).all()
        grades = conn.execute(sa.select(sa.func.count()).select_from(store.grades)).scalar()
    assert len(returns) == 60
    assert Counter(r.audit_id for r in returns if r.is_current) == Counter(list(newer))
    assert {c.audit_id: c.comment for c in current} == newer  # the newer return is current
    assert grades == 30


def test_an_older_return_arriving_late_is_history_with_both_dates(db_url, tmp_path):
    db = store.open_store(db_url)
    [v1, v2], _ = two_versions(tmp_path, db, 1)
    from formtool.read.batch import import_paths

    assert import_paths(db, [v2])[0].status == "imported"
    [late] = import_paths(db, [v1])
    assert late.status == "history"
    assert [i.message for i in late.issues if i.code.label == "older-return"] == [
        f"[{v1}] was saved 10/11/2026 09:00, before the current return (saved 20/11/2026 "
        "15:00); it is kept as history and the current return stays. Import a newer copy if "
        "this one is right."
    ]
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(store.returns.c.file_name, store.returns.c.is_current).order_by(
                store.returns.c.id
            )
        ).all()
    assert [tuple(r) for r in rows] == [(v2.name, True), (v1.name, False)]


def _population(size: int) -> list[dict[str, str]]:
    return [
        {
            "case_number": f"P{i:03d}",
            "category": ("cin", "cp", "lac")[i % 3],
            "team": f"T{i % 3}",
            "family_name": "Example",
            "given_names": "Sam",
            "worker": "Worker (synthetic)",
            "manager": "Manager (synthetic)",
            "placed_for_adoption": "Yes" if i == 2 else "No",
        }
        for i in range(size)
    ]


def test_two_allocations_at_once_keep_the_cap_and_never_take_a_case_twice(db_url, tmp_path):
    store.open_store(db_url)
    population = write_cases(tmp_path / "pop.csv", _population(150))
    auditors = write_cases(
        tmp_path / "aud.csv",
        [
            {
                "name": f"A{t}{n} (synthetic)",
                "email": f"a{t}{n}@example.invalid",
                "team": f"T{t}",
                "audits_this_year": "6",
            }
            for t in range(3)
            for n in range(3)
        ],
    )
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "samples:\n  - {name: Control, form: csc, categories: [cin, cp, lac], size: 30}\n"
    )
    results = run_all(
        [
            [
                *FORMTOOL,
                "allocate",
                "--population",
                str(population),
                "--auditors",
                str(auditors),
                "--month",
                month,
                "--plan",
                str(plan),
                "--seed",
                "3",
                "--out",
                str(tmp_path / f"{month}.csv"),
                "--db",
                db_url,
                "--json",
            ]
            for month in ("2026-11", "2026-12")
        ]
    )
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    db = store.open_store(db_url)
    with db.engine.connect() as conn:
        every = conn.execute(
            sa.select(
                store.audits.c.case_number,
                store.audits.c.auditor,
                store.audits.c.month,
                store.audits.c.activity,
            )
        ).all()
    rows = [r for r in every if not r.activity]  # hull's feedback forms count toward no cap
    assert len({r.case_number for r in rows}) == len(rows)  # no case in both months
    year = Month("2026-11").financial_year()
    per_auditor = Counter(r.auditor for r in rows if year[0] <= r.month <= year[1])
    assert max(per_auditor.values()) + 6 <= MAX_PER_YEAR  # 6 done before, cap 10
    assert sum(per_auditor.values()) == 9 * (MAX_PER_YEAR - 6)  # the cap, not luck, stopped it
    for month in ("2026-11", "2026-12"):  # each process's CSV agrees with the database
        written = (tmp_path / f"{month}.csv").read_text().splitlines()[1:]
        assert len(written) == sum(r.month == month for r in every)


def test_the_same_month_twice_at_once_allocates_once(db_url, tmp_path):
    store.open_store(db_url)
    population = write_cases(tmp_path / "pop.csv", _population(90))
    auditors = write_cases(
        tmp_path / "aud.csv",
        [
            {"name": f"A{t} (synthetic)", "email": f"a{t}@example.invalid", "team": f"T{t}"}
            for t in range(3)
        ],
    )
    plan = tmp_path / "plan.yaml"
    plan.write_text("samples:\n  - {name: Control, form: csc, categories: [cin], size: 6}\n")
    results = run_all(
        [
            [
                *FORMTOOL,
                "allocate",
                "--population",
                str(population),
                "--auditors",
                str(auditors),
                "--month",
                "2026-11",
                "--plan",
                str(plan),
                "--out",
                str(tmp_path / f"{n}.csv"),
                "--db",
                db_url,
            ]
            for n in range(2)
        ]
    )
    assert sorted(r.returncode for r in results) == [0, 2]
    [refused] = [r for r in results if r.returncode == 2]
    # 6 case file audits and, under hull, a family feedback form for each (App A para 13)
    assert refused.stderr.startswith("Error: 2026-11 is already allocated (12 audit(s), ")
    assert refused.stderr.count("\n") == 1
    with store.engine_for(db_url).connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(store.audits)).scalar() == 12


def test_accept_and_amend_at_once_exactly_one_wins(db_url, tmp_path):
    db = store.open_store(db_url)
    form = get_form("csc")
    made = write_forms(form, make_cases(tmp_path, form, 4), tmp_path / "forms", ("docx",), db=db)
    ids = [m.case.audit_id for m in made]
    with store.transaction(db.engine) as conn:
        for audit_id in ids:
            store.move_state(
                conn, audit_id, [store.AuditState.allocated], store.AuditState.returned, "returned"
            )
    commands = []
    for audit_id in ids:
        commands += [
            [*FORMTOOL, "check", audit_id, "--accept", "--db", db_url],
            [*FORMTOOL, "check", audit_id, "--amend", "Add the dates", "--db", db_url],
        ]
    results = run_all(commands)
    for audit_id, pair in zip(ids, zip(results[::2], results[1::2], strict=True), strict=True):
        assert sorted(r.returncode for r in pair) == [0, 2], [r.stderr for r in pair]
        [loser] = [r for r in pair if r.returncode == 2]
        # it lost before reading the state ("is 'checked'") or after ("changed to ..."):
        # both are the one-line refusal of move_state's conditional update
        lost = (f"Error: Audit {audit_id} is '", f"Error: Audit {audit_id} changed to '")
        assert loser.stderr.startswith(lost), loser.stderr
        assert loser.stderr.count("\n") == 1 and "Traceback" not in loser.stderr
    with db.engine.connect() as conn:
        decisions = Counter(
            conn.execute(
                sa.select(store.events.c.audit_id).where(
                    store.events.c.event.in_(["checked", "amendment requested"])
                )
            ).scalars()
        )
        states = set(conn.execute(sa.select(store.audits.c.state)).scalars())
    assert decisions == Counter(dict.fromkeys(ids, 1))
    assert states <= {"checked", "amendment requested"}
