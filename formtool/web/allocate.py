"""Allocate a month in the web workspace: upload the population, auditors and plan, preview
the allocation (computed as `formtool allocate` would, recorded nowhere), confirm to record it
and generate the forms (`formtool generate`), then download them or send them (`formtool
send`), and say when the .eml drafts have gone (`formtool send --mark-sent`) or, one email
at a time, what became of an email of unknown fate (`--mark-sent --audit ID`, or
`--resend-unknown --audit ID` over SMTP). An officer names the case an auditor chose for a
chosen slot the allocation left open (`formtool allocate --chosen FILE` on an allocated
month). A preview and its uploaded files are kept in the database (hashed token), so any
worker of `serve --workers N`, or any host behind the proxy, confirms what another previewed;
so is the last allocation confirmed for a month. The forms and .eml drafts stay in the
server's private folder, removed when it stops."""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import json
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response

from formtool.access.roles import Account
from formtool.errors import FormtoolError
from formtool.periods import Month
from formtool.store import ACTIVITY_MODE
from formtool.web import queries
from formtool.web.pages import Draft, Workspace, call, download, flash, redirect, render_page, ws_of
from formtool.web.security import safe_file_name

DRAFT_HOURS = 2  # an allocation preview's uploaded files are kept this long
UPLOADS = ("population", "auditors", "plan", "staff")


@dataclass
class Allocated:
    """The last allocation confirmed for a month, as its panel on the Allocate page shows it:
    kept in the database as JSON (`allocated YYYY-MM`), so every worker shows it."""

    audits: int
    due: str  # ISO date
    forms: int
    by: str
    at: str  # ISO date and time
    per_auditor: dict[str, int] = field(default_factory=dict)
    mailed: bool = False
    mail_messages: int = 0
    sent_via: str = ""

    @staticmethod
    def name(month: str) -> str:
        return f"allocated {month}"

    @classmethod
    def read(cls, ws: Workspace, month: str) -> Allocated | None:
        text = ws.db.state_text(cls.name(month))
        try:
            return cls(**json.loads(text)) if text else None
        except (ValueError, TypeError):  # written by another formtool version: not shown
            return None

    def keep(self, ws: Workspace, month: str) -> None:
        ws.db.put_state(self.name(month), json.dumps(asdict(self)))


def token_hash(token: str) -> str:
    """What the database keeps of a preview's token: a copy of it confirms nothing."""
    return hashlib.sha256(token.encode()).hexdigest()


def _expired_before() -> dt.datetime:
    """Previews made before this (UTC, naive, as the store keeps times) have expired."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)  # real time
    return now - dt.timedelta(hours=DRAFT_HOURS)


async def allocate_page(request: Request, who: Account) -> Response:
    from formtool.programme.outbox import month_outbox

    ws = ws_of(request)
    month = queries.month_or_default(request.query_params.get("month"))
    return render_page(
        request,
        who,
        "allocate.html",
        month=month,
        done=await call(Allocated.read, ws, month),
        mail=ws.mail,
        outbox=await call(month_outbox, ws.db, month),
        choices=await call(ws.db.open_choices, month),
        q=queries,
    )


def _as_uploaded(files: dict[str, Path], exc: FormtoolError) -> FormtoolError:
    """The error naming each file as uploaded, not where the server keeps it."""
    message = str(exc)
    for path in files.values():
        message = message.replace(str(path), path.name)
    return FormtoolError(message)


async def _save_uploads(form: FormData, folder: Path, keys: tuple[str, ...]) -> dict[str, Path]:
    """The uploaded files of `keys` that were given, saved under `folder`."""
    files: dict[str, Path] = {}
    for key in keys:
        upload = form.get(key)
        if isinstance(upload, UploadFile) and upload.filename:
            (folder / key).mkdir()
            files[key] = folder / key / safe_file_name(upload.filename, set())
            files[key].write_bytes(await upload.read())
    return files


def _preview(ws: Workspace, draft: Draft) -> dict[str, Any]:
    """The allocation the uploaded files would give under the database's programme, computed
    as `run_allocation` does but recorded nowhere; and any earlier allocation of the month."""
    from formtool.programme.allocation import (
        allocate,
        check_groups,
        draw_activities,
        event_columns,
        load_auditors,
        load_population,
        load_staff,
        read_history,
        rules_in_words,
        with_activities,
        with_plan,
    )
    from formtool.programme.rules import active_policy

    policy = with_plan(active_policy(ws.db), draft.files.get("plan"))
    population = load_population(draft.files["population"], event_columns(policy))
    auditors = load_auditors(draft.files["auditors"])
    staff = load_staff(draft.files["staff"]) if "staff" in draft.files else []
    check_groups(draft.files["auditors"], auditors, policy)

    def work(reads: Any) -> tuple[Any, Any]:
        history = read_history(reads, draft.month, population, policy)
        allocation = allocate(population, auditors, policy, draft.month, draft.seed, history)
        people = (population, staff, auditors)
        drawn = draw_activities(reads, policy, draft.month, "first", *people, draft.seed,
                                allocation, history)  # fmt: skip
        earlier = [  # a run an officer started (a theme) is not the month's allocation
            e for e in reads.month_allocations(draft.month) if e.mode != ACTIVITY_MODE
        ]
        return with_activities(allocation, drawn), earlier

    allocation, earlier = ws.db.preview_allocation(work)
    return {
        "allocation": allocation,
        "earlier": earlier,
        "samples": policy.samples,
        "population": len(population),
        "auditors": len(auditors),
        "policy": policy,
        "rules": rules_in_words(policy),
        "month_names": list(calendar.month_name),
    }


async def allocate_preview(request: Request, who: Account, form: FormData) -> Response:
    """Preview an allocation of the uploaded files; or, from the form naming a chosen case
    (`action=name`), name it (`allocate_name`): both upload the population and auditors."""
    import secrets

    if form.get("action") == "name":
        return await allocate_name(request, who, form)
    ws = ws_of(request)
    month, seed = str(form.get("month", "")), str(form.get("seed", "0")).strip() or "0"
    month, seed = Month(month, "The month"), str(queries.seed_or_zero(seed))
    folder = Path(tempfile.mkdtemp(prefix="draft-", dir=ws.folder("drafts")))
    try:
        files = await _save_uploads(form, folder, UPLOADS)
        if "population" not in files or "auditors" not in files:
            raise FormtoolError(
                "Choose both the population file and the auditors file (.csv or .xlsx)."
            )
        token = secrets.token_urlsafe(16)
        draft = Draft(folder, month, int(seed), who.name, files)
        try:
            preview = await call(_preview, ws, draft)
        except FormtoolError as exc:
            raise _as_uploaded(files, exc) from None
        await call(_keep_draft, ws, token, draft)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return render_page(
        request, who, "allocate_preview.html", draft=draft, token=token, q=queries, **preview
    )


def _keep_draft(ws: Workspace, token: str, draft: Draft) -> None:
    """The preview and its files in the database (within the upload limits already checked),
    for whichever worker the confirmation reaches; expired previews go at the same time."""
    files = {key: (path.name, path.read_bytes()) for key, path in draft.files.items()}
    ws.db.save_preview(
        token_hash(token), draft.month, draft.seed, draft.user, files, _expired_before()
    )


def purge_expired(ws: Workspace) -> int:
    """Remove the previews (and their uploaded files) older than DRAFT_HOURS; how many."""
    return int(ws.db.purge_previews(_expired_before()))


def _stored_draft(ws: Workspace, token: str, user: str, folder: Path) -> Draft | None:
    """The preview of `token` by `user`, its files written afresh under `folder`; None when
    there is none (expired, confirmed already, or another user's)."""
    stored = ws.db.allocation_preview(token_hash(token), user, _expired_before())
    if stored is None:
        return None
    files: dict[str, Path] = {}
    for key, (name, data) in stored.files.items():
        if key not in UPLOADS:
            continue
        (folder / key).mkdir()
        files[key] = folder / key / safe_file_name(name, set())
        files[key].write_bytes(data)
    return Draft(folder, stored.month, stored.seed, stored.user, files)


def _confirm(ws: Workspace, draft: Draft, mode: str, user: str) -> Allocated:
    """Record the allocation (`formtool allocate`) and generate its forms (`formtool
    generate`), as the demo does; the forms stay in the server's private folder, and what
    the Allocate page shows of it in the database."""
    from formtool.generate import generate
    from formtool.programme.allocation import run_allocation
    from formtool.programme.rules import active_policy

    batch = Path(tempfile.mkdtemp(prefix="batch-", dir=ws.folder("allocations", draft.month)))
    out = batch / "allocation.csv"
    allocation = run_allocation(
        ws.db,
        draft.files["population"],
        draft.files["auditors"],
        draft.month,
        draft.files.get("plan"),
        draft.seed,
        out,
        mode,
        user,
        policy=active_policy(ws.db),
        staff_path=draft.files.get("staff"),
    )
    produced = generate(None, out, batch / "forms", "both", db=ws.db, settings=ws.settings)
    done = Allocated(
        audits=len(allocation.rows),
        due=allocation.due.isoformat(),
        forms=len(produced),
        by=user,
        at=dt.datetime.now().isoformat(timespec="seconds"),  # real time
        per_auditor=dict(allocation.by_auditor()),
    )
    done.keep(ws, draft.month)
    return done


async def allocate_confirm(request: Request, who: Account, form: FormData) -> Response:
    ws = ws_of(request)
    token = str(form.get("token", ""))[:100]
    folder = Path(tempfile.mkdtemp(prefix="confirm-", dir=ws.folder("drafts")))
    try:
        draft = await call(_stored_draft, ws, token, who.name, folder) if token else None
        if draft is None:
            raise FormtoolError(
                "This preview has expired (previews are kept for "
                f"{DRAFT_HOURS} hours). Upload the files again."
            )
        # Taken from the database before it is used: a second press of Confirm, on this
        # worker or another, finds it gone rather than allocating the month twice.
        if not await call(ws.db.drop_preview, token_hash(token)):
            raise FormtoolError(
                "This preview has been confirmed already (or has just expired): see the "
                "month's allocation below, or upload the files again."
            )
        mode = str(form.get("mode", "first"))
        try:
            done = await call(_confirm, ws, draft, mode, f"web:{who.name}")
        except FormtoolError as exc:
            await call(_keep_draft, ws, token, draft)  # kept for another try, as it was
            raise _as_uploaded(draft.files, exc) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    flash(
        request,
        f"{done.audits} audit(s) allocated for {draft.month}, due "
        f"{queries.day(done.due)}; {done.forms} form(s) generated.",
    )
    return redirect(f"/allocate?month={draft.month}")


def _name(
    ws: Workspace, month: str, files: dict[str, Path], slot_id: str, case: str, user: str
) -> Any:
    """Name the case chosen for the open slot `slot_id` (`name_chosen`, as `formtool
    allocate --chosen` does on an allocated month), under the database's programme."""
    from formtool.programme.allocation import name_chosen
    from formtool.programme.rules import active_policy

    slot = next((c for c in ws.db.open_choices(month) if str(c.id) == slot_id), None)
    if slot is None:
        raise FormtoolError(
            f"That chosen slot of {month} is no longer open: someone has named its case. "
            "Reload the Allocate page to see the slots still open."
        )
    if not case:
        raise FormtoolError("Give the case number the auditor chose.")
    chosen = {"auditor": slot.auditor, "sample": slot.sample, "case_number": case}
    where = {"_where": f"[{slot.auditor} · {slot.sample}]"}
    out = files["population"].parent.parent / "named.csv"
    return name_chosen(
        ws.db,
        files["population"],
        files["auditors"],
        month,
        [chosen | where],
        out,
        user,
        policy=active_policy(ws.db),
    )


async def allocate_name(request: Request, who: Account, form: FormData) -> Response:
    """The case an auditor chose for an open chosen slot, checked as at allocation and
    recorded (`formtool allocate --chosen` on an allocated month); its form joins the
    month's forms to download or send."""
    ws = ws_of(request)
    month = Month(str(form.get("month", "")), "The month")
    folder = Path(tempfile.mkdtemp(prefix="name-", dir=ws.folder("drafts")))
    try:
        files = await _save_uploads(form, folder, ("population", "auditors"))
        if "population" not in files or "auditors" not in files:
            raise FormtoolError(
                "Choose both the population file and the auditors file (.csv or .xlsx): the "
                "case is checked against them as at allocation."
            )
        slot, case = str(form.get("slot", "")), str(form.get("case_number", "")).strip()
        try:
            named = await call(_name, ws, month, files, slot, case, f"web:{who.name}")
        except FormtoolError as exc:
            raise _as_uploaded(files, exc) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if not named.rows:  # the case is already the auditor's audit this month
        raise FormtoolError(" ".join(named.unallocated) + " Choose another case for the slot.")
    [row] = named.rows
    still = len(named.choices)
    flash(
        request,
        f"{row['auditor']} audits {row['case_number']} for “{row['audit_type']}” ({row['audit_id']}"
        f"), due {queries.day(named.due)}. {still or 'No'} chosen slot(s) of {month} still open.",
    )
    return redirect(f"/allocate?month={month}")


def _month_forms(ws: Workspace, month: str) -> Path:
    """The month's forms, rebuilt from the store (`formtool.generate.regenerate`), so they
    outlive the server process that allocated them."""
    from formtool.generate import regenerate

    folder = Path(tempfile.mkdtemp(prefix="forms-", dir=ws.folder("forms", month)))
    try:
        if not regenerate(ws.db, month, folder, ("docx", "xlsx"), ws.settings):
            raise FormtoolError(f"No audits are recorded for {month}. Allocate the month first.")
    except FormtoolError:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder


def _month_folder(request: Request) -> tuple[Month, Path]:
    month = Month(request.path_params["month"], "The month")
    return month, _month_forms(ws_of(request), month)


async def allocate_forms(request: Request, who: Account) -> Response:
    """The month's forms (every audit recorded for it), with their manifest."""
    month, folder = await call(_month_folder, request)
    data = await call(queries.zip_folder, folder, ("*.docx", "*.xlsx", "manifest.csv"))
    shutil.rmtree(folder, ignore_errors=True)
    return download(data, f"forms-{month}.zip")


async def allocate_send(request: Request, who: Account, form: FormData) -> Response:
    """`formtool send` for the month: over SMTP, or as .eml drafts to download. Drafts are
    written afresh each time (every one not yet marked sent), so the download holds them all;
    their audits stay allocated until "I have sent these drafts". Over SMTP, "send it again"
    on an email of unknown fate is `--resend-unknown --audit ID` for that email."""
    from formtool.programme.mail import RESEND, SEND_FORMATS, deliver
    from formtool.store import MessageState

    ws = ws_of(request)
    chosen = str(form.get("format") or "auditors")
    form_format = chosen if chosen in SEND_FORMATS and chosen != "auditors" else None
    smtp = ws.mail.smtp if form.get("how") == "smtp" and ws.mail.smtp else None
    audit_ids = [str(a) for a in form.getlist("audit")] if smtp else []
    month, folder = await call(_month_folder, request)
    mail_dir = ws.work_dir / "mail" / month
    if not smtp:
        shutil.rmtree(mail_dir, ignore_errors=True)
    try:
        result = await call(
            deliver,
            ws.db,
            str(form.get("sender") or ws.mail.sender),
            folder,
            month,
            ws.folder("mail", month),
            smtp=smtp,
            starttls=ws.mail.starttls,
            smtp_user=ws.mail.user or None,
            settings=ws.settings,
            user=f"web:{who.name}",
            again=(RESEND if audit_ids else ()) if smtp else (MessageState.drafted,),
            audit_ids=audit_ids or None,
            form_format=form_format,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    await call(_mailed, ws, month, len(result.messages), result.sent_via)
    said = (
        f"{len(result.messages)} message(s) sent via {smtp}; their audits are marked sent."
        if smtp
        else f"{len(result.messages)} message(s) ready to download as .eml drafts; once you "
        "have sent them, press “I have sent these drafts” and their audits are marked sent."
    )
    notes = [
        f"{len(result.already_sent)} already sent." if result.already_sent else "",
        f"{len(result.drafted)} written as drafts, not yet marked sent." if result.drafted else "",
        f"{len(result.failed)} failed (the next send tries again)." if result.failed else "",
        f"{len(result.unknown)} unknown: check the Sent Items." if result.unknown else "",
    ]
    flash(
        request,
        " ".join([said, *(n for n in notes if n)]) + (f" {result.notice}" if result.notice else ""),
        "error" if result.needs_attention else "ok",
    )
    return redirect(f"/allocate?month={month}")


def _mailed(ws: Workspace, month: str, messages: int, sent_via: str) -> None:
    """The month's panel says what the last send did, on every worker."""
    done = Allocated.read(ws, month)
    if done is not None:
        done.mailed, done.mail_messages, done.sent_via = True, messages, sent_via or ""
        done.keep(ws, month)


async def allocate_mark_sent(request: Request, who: Account, form: FormData) -> Response:
    """ "I have sent these drafts": `formtool send --mark-sent MONTH`; "It is in the Sent
    Items" on one email of unknown fate: the same with `--audit` for each of its audits."""
    from formtool.programme.outbox import mark_sent

    month = Month(request.path_params["month"], "The month")
    audit_ids = [str(a) for a in form.getlist("audit")]
    marked = await call(mark_sent, ws_of(request).db, month, f"web:{who.name}", audit_ids)
    flash(
        request,
        f"{len(marked.messages)} message(s) for {month} marked sent; "
        f"{marked.audits} audit(s) are now sent.",
    )
    return redirect(f"/allocate?month={month}")


async def allocate_mail(request: Request, who: Account) -> Response:
    month = Month(request.path_params["month"], "The month")
    folder = ws_of(request).work_dir / "mail" / month
    if not folder.is_dir():
        raise FormtoolError(
            f"No email drafts were written for {month} since this server "
            "started. Use Send on the Allocate page first."
        )
    return download(await call(queries.zip_folder, folder, ("*.eml",)), f"emails-{month}.zip")
