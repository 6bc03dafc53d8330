"""The web workspace's pages: each calls one library function (the same as its CLI command)
and renders what it returns. Sign-in, roles, CSRF and upload limits are checked before a view
runs (app.py); a FormtoolError raised here becomes the page's one-line message."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from formtool import clock
from formtool.access.roles import Account
from formtool.periods import Period, parse_period
from formtool.programme.activities import check_results
from formtool.programme.moderation import grade_choices
from formtool.settings import Settings
from formtool.store import OUTSTANDING, Store
from formtool.web import queries
from formtool.web.audit_steps import who_agrees
from formtool.web.concerns import email_concerns
from formtool.web.pages import (
    AFTER_OUTAGE,
    DATABASE_DOWN,
    REPORTS_GENERATION,
    CachedReport,
    Workspace,
    audit_url,
    call,
    download,
    flash,
    log,
    redirect,
    render_page,
    ws_of,
)
from formtool.web.security import safe_file_name

# --- month dashboard -------------------------------------------------------------------


async def dashboard(request: Request, who: Account) -> Response:
    from formtool.programme.audit_page import concern_entries
    from formtool.programme.policy import timetable
    from formtool.programme.rules import active_policy
    from formtool.programme.status import status

    month = queries.month_or_default(request.query_params.get("month"))
    db = ws_of(request).db
    report = await call(status, db, month)
    concerns = await call(concern_entries, db, True)  # every month's: they never wait
    totals = {
        t: sum(v[t] for v in report.teams.values())
        for t in ("audits", "returned", "outstanding", "overdue")
    }
    policy = await call(active_policy, db)
    dates = timetable(policy, month.year, month.number)  # the programme's, not one council's
    return render_page(
        request,
        who,
        "dashboard.html",
        month=month,
        report=report,
        totals=totals,
        dates=dates,
        concerns=concerns,
        q=queries,
    )


async def status_json(request: Request, who: Account) -> Response:
    from formtool.programme.status import status

    month = request.query_params.get("month")
    report = await call(
        status, ws_of(request).db, queries.month_or_default(month) if month != "all" else None
    )
    return JSONResponse(report.as_dict())


# --- one audit -----------------------------------------------------------------------------


async def audit_page(request: Request, who: Account) -> Response:
    from formtool.programme.amendment import amendment_email_state
    from formtool.programme.audit_page import audit_detail
    from formtool.programme.rejections import chase_refusal

    ws = ws_of(request)
    detail = await call(audit_detail, ws.db, request.path_params["audit_id"])
    a = detail.audit
    grades = await call(grade_choices, ws.db, a.form_id, int(a.form_version))
    if detail.concerns and who.may("cycle"):  # a concern's own words: in the access log
        request.state.access_detail = f"with the details of {len(detail.concerns)} concern(s)"
    return render_page(
        request,
        who,
        "audit.html",
        d=detail,
        a=a,
        grades=grades,
        q=queries,
        url=audit_url(a.audit_id),
        today=clock.today().isoformat(),  # the sign-off date's default and limit
        overdue=a.state in {s.value for s in OUTSTANDING}
        and a.due_date < clock.today().isoformat(),
        chase_refusal=await call(chase_refusal, ws.db, a.audit_id),
        amendment=await call(amendment_email_state, ws.db, a.audit_id),
        who_agrees=await call(who_agrees, ws.db) if "exempt" in detail.next_steps else "",
    )


async def held_page(request: Request, who: Account) -> Response:
    rows = await call(ws_of(request).db.held_returns)
    return render_page(request, who, "held.html", rows=rows, q=queries)


async def held_decide(request: Request, who: Account, form: FormData) -> Response:
    from formtool.programme.workflow import accept_held, refuse_held

    return_id, decision = request.path_params["return_id"], request.path_params["decision"]
    db, user = ws_of(request).db, f"web:{who.name}"
    if decision == "accept":
        outcome = await call(accept_held, db, return_id, user)
        flash(request, f"Return {return_id} of audit {outcome['audit_id']}: accepted.")
    elif decision == "refuse":
        reason = str(form.get("reason", ""))
        audit_id = await call(refuse_held, db, return_id, reason, user)
        flash(request, f"Return {return_id} of audit {audit_id}: refused.")
    else:
        raise HTTPException(404)
    if str(form.get("back", "")) == "held":
        return redirect("/held")
    return redirect(audit_url(await call(db.return_audit, return_id)))


async def audit_moderate(request: Request, who: Account, form: FormData) -> Response:
    from formtool.programme.moderation import moderate

    audit_id = request.path_params["audit_id"]
    result = await call(
        moderate,
        ws_of(request).db,
        audit_id,
        str(form.get("grade", "")),
        who.name,
        str(form.get("comment", "")),
        user=f"web:{who.name}",
    )
    flash(request, result.summary())
    return redirect(audit_url(audit_id))


def _file_pack(db: Store, audit_id: str, fmt: str, settings: Settings) -> bytes:
    from formtool.packs.file import file_pack

    with tempfile.TemporaryDirectory(prefix="formtool-pack-") as folder:
        made = file_pack(db, [audit_id], Path(folder), (fmt,), settings=settings)
        return made.files[0].read_bytes()


async def audit_pack(request: Request, who: Account) -> Response:
    audit_id, fmt = request.path_params["audit_id"], request.path_params["fmt"]
    if fmt not in ("pdf", "docx"):
        raise HTTPException(404)
    ws = ws_of(request)
    return download(
        await call(_file_pack, ws.db, audit_id, fmt, ws.settings), f"{audit_id}-file.{fmt}"
    )


async def return_download(request: Request, who: Account) -> Response:
    from formtool.programme.audit_page import return_file

    found = await call(return_file, ws_of(request).db, request.path_params["return_id"])
    request.state.audit_id = found.audit_id  # for the access log
    await call(check_results, ws_of(request).db, found.audit_id, who.roles)
    return download(found.data, found.name)


# --- returns -------------------------------------------------------------------------------


async def returns_page(request: Request, who: Account) -> Response:
    held = len(await call(ws_of(request).db.held_returns))
    return render_page(
        request,
        who,
        "returns.html",
        outcomes=None,
        limits=ws_of(request).limits,
        q=queries,
        held=held,
    )


def _import_uploads(
    ws: Workspace, uploads: list[UploadFile], user: str
) -> tuple[list[dict[str, Any]], dict[str, int], Any]:
    """Save the uploads under safe names in a private folder and import them exactly as
    `formtool import` would: the outcome of each for the page, the tally, and (None, or) the
    ImportStopped that says the database failed part-way, the outcomes being those before."""
    from formtool.read.batch import ImportStopped, counts, import_paths, shown_name

    folder = Path(tempfile.mkdtemp(prefix="upload-", dir=ws.folder("uploads")))
    try:
        taken: set[str] = set()
        paths = []
        for upload in uploads:
            path = folder / safe_file_name(upload.filename or "upload", taken)
            with path.open("wb") as out:
                shutil.copyfileobj(upload.file, out)
            paths.append(path)
        stopped = None
        try:
            outcomes = import_paths(ws.db, paths, user=user, senders=ws.settings.allowed_senders)
        except ImportStopped as exc:  # each return is its own transaction: show which went in
            outcomes, stopped = exc.outcomes, exc
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    rows = [
        {
            "file": shown_name(o),
            "status": o.status,
            "audit_id": o.audit_id,
            "issues": [queries.shown_issue(i, shown_name(o)) for i in o.issues],
        }
        for o in outcomes
    ]
    return rows, counts(outcomes), stopped


async def returns_upload(request: Request, who: Account, form: FormData) -> Response:
    uploads = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
    ws = ws_of(request)
    if not uploads:
        flash(
            request,
            "Choose one or more returned forms (.docx, .xlsx) or emails (.eml, .msg) first.",
            "error",
        )
        return redirect("/returns")
    outcomes, tally, stopped = await call(_import_uploads, ws, uploads, f"web:{who.name}")
    if stopped is not None:  # the database went part-way: what was stored, then why (503)
        log.warning("%s on /returns: %s", stopped.failure.title, stopped)
        response = render_page(
            request,
            who,
            "returns.html",
            503,
            outcomes=outcomes,
            tally=tally,
            limits=ws.limits,
            q=queries,
            stopped={
                "title": stopped.failure.title,
                "message": f"{DATABASE_DOWN} The import stopped part-way: the returns listed "
                "below were dealt with before it went (each stored whole, or rejected); the "
                f"rest were not imported. {AFTER_OUTAGE} Uploading the same files again is "
                "safe: the returns already stored show as unchanged.",
            },
        )
        response.headers["retry-after"] = "60"
        return response
    emailing = await call(email_concerns, ws, f"web:{who.name}")  # at once, not next month
    return render_page(
        request,
        who,
        "returns.html",
        outcomes=outcomes,
        tally=tally,
        limits=ws.limits,
        q=queries,
        stopped=None,
        emailing=emailing,
    )


# --- moderation ----------------------------------------------------------------------------


def _moderation(ws: Workspace, month: str, rate: float, seed: int) -> dict[str, Any]:
    from formtool.packs.figures import NoAuditsError
    from formtool.periods import period_for
    from formtool.programme.moderation import moderation_pool, moderation_sample, target_words
    from formtool.programme.rules import active_policy

    target = target_words(active_policy(ws.db))  # the programme's words, not one council's
    try:
        figures = _report(ws, period_for(month=month)).figures
    except NoAuditsError:  # an empty month is an empty page, not an error
        return {"sample": [], "pool": 0, "moderated": [], "summary": None, "target": target}
    return {
        "target": target,
        "sample": moderation_sample(ws.db, month, rate, seed, record=False),
        "pool": len(moderation_pool(ws.db, month)),
        "moderated": [a for a in figures.audits if a.moderated_grade],
        "summary": figures.moderation,
    }


async def moderation_page(request: Request, who: Account) -> Response:
    from formtool.programme.moderation import default_rate, parse_rate

    params = request.query_params
    month = queries.month_or_default(params.get("month"))
    rate_text = params.get("rate") or await call(default_rate, ws_of(request).db)
    seed = queries.seed_or_zero(params.get("seed"))
    data = await call(_moderation, ws_of(request), month, parse_rate(rate_text), seed)
    return render_page(
        request, who, "moderation.html", month=month, rate=rate_text, seed=seed, q=queries, **data
    )


async def moderation_record(request: Request, who: Account, form: FormData) -> Response:
    from formtool.programme.moderation import default_rate, moderation_sample, parse_rate

    month = queries.month_or_default(str(form.get("month", "")) or "-")
    seed = queries.seed_or_zero(str(form.get("seed", "0")))
    rate = str(form.get("rate", "")) or await call(default_rate, ws_of(request).db)
    picked = await call(
        moderation_sample,
        ws_of(request).db,
        month,
        parse_rate(rate),
        seed,
        record=True,
        user=f"web:{who.name}",
    )
    flash(request, f"{len(picked)} audit(s) recorded as selected for moderation in {month}.")
    return redirect(f"/moderation?month={month}&rate={quote(rate)}&seed={seed}")


# --- reports -------------------------------------------------------------------------------


def _period(request: Request) -> Period:
    """The period asked for (a month, 2026-Q3 or 2026), or this month."""
    return parse_period(request.query_params.get("period") or queries.this_month())


def _figures_only(who: Account) -> bool:
    """Reports without a case number for whoever may not see case files (viewers)."""
    return not who.may("cases")


def _report(
    ws: Workspace, period: Any, fresh: bool = False, aggregate_only: bool = False
) -> CachedReport:
    """The period's PMU figures and report (`formtool pack pmu`'s content). Kept for a minute
    (and until anything is changed through the workspace, on any worker: the database's
    generation moves on) because the figures take a while on a large store; the charts are
    drawn again only when the figures changed. Cached per period and audience, so an
    officer's pack never reaches a viewer."""
    from formtool.packs.figures import load_figures
    from formtool.packs.pmu import pmu_document

    today = clock.today()
    cached = f"{period.label} {'figures' if aggregate_only else 'cases'}"
    found = ws.reports.get(cached)
    generation = ws.db.generation(REPORTS_GENERATION)  # moved on by a change on any worker
    if found is not None and not fresh and found.fresh(today, generation):
        return found
    figures = load_figures(ws.db, period, today, min_base=ws.settings.min_base)
    key = queries.figures_key(figures, ws.settings)
    if found is not None and found.key == key:
        document, images = found.document, found.images
    else:
        document = pmu_document(figures, ws.settings, aggregate_only)
        images = [[queries.data_url(png) for png in part.images] for part in document.parts]
    made = CachedReport(figures, document, images, key, today, generation)
    ws.reports[cached] = made
    while len(ws.reports) > 8:
        ws.reports.popitem(last=False)
    return made


async def reports_page(request: Request, who: Account) -> Response:
    from formtool.packs.figures import NoAuditsError

    period = _period(request)
    fresh = request.query_params.get("fresh") == "1"
    try:
        made = await call(_report, ws_of(request), period, fresh, _figures_only(who))
    except NoAuditsError:  # an empty period is an empty page: pick another, or allocate
        return render_page(
            request,
            who,
            "reports_empty.html",
            period=period,
            q=queries,
            shortcuts=queries.period_shortcuts(),
        )
    return render_page(
        request,
        who,
        "reports.html",
        period=period,
        doc=made.document,
        images=made.images,
        made_at=made.made_at,
        q=queries,
        shortcuts=queries.period_shortcuts(),
    )


async def report_download(request: Request, who: Account) -> Response:
    from formtool.packs.render import to_docx, to_pdf
    from formtool.packs.workbook import workbook

    ws = ws_of(request)
    kind = request.path_params["kind"]
    period = _period(request)
    aggregate = _figures_only(who)
    # a pack to keep: from the data as it is now
    made = await call(_report, ws, period, True, aggregate)
    figures, document = made.figures, made.document
    names = who.sees_names and request.query_params.get("names") == "1"
    request.state.access_detail = (  # for the access log: which pack left the building
        "figures only" if aggregate else "with names" if names else "with case numbers"
    )
    make = {
        "docx": lambda: to_docx(document),
        "pdf": lambda: to_pdf(document),
        "xlsx": lambda: workbook(figures, ws.settings, names, aggregate),
    }.get(kind)
    if make is None:
        raise HTTPException(404)
    return download(await call(make), f"pmu-{figures.period.label}.{kind}")


# --- forms ---------------------------------------------------------------------------------


def _forms() -> dict[str, Any]:
    """`formtool forms list` and `formtool forms check`, together."""
    from formtool.definitions import check_form, form_files, list_forms

    paths = form_files()
    return {
        "rows": [r.as_dict() for r in list_forms()],
        "checked": [p.name for p in paths],
        "issues": [i.as_dict() for p in paths for i in check_form(p)],
    }


async def forms_page(request: Request, who: Account) -> Response:
    return render_page(request, who, "forms.html", **await call(_forms))


async def form_page(request: Request, who: Account) -> Response:
    from formtool.definitions import all_forms, describe_form

    form_id = request.path_params["form_id"]
    if form_id not in await call(all_forms):
        raise HTTPException(404)
    described = await call(describe_form, form_id)
    return render_page(request, who, "form.html", f=described.as_dict())
