"""Benchmark: the emails that made Python's email parser take 300-800 MB or a minute (issue 19),
and the largest emails every check of formtool's lets through.

Each email is read by a process of its own under RLIMIT_AS 2 GB (forked, after, from one that
has imported formtool), which reports its peak memory (VmHWM, imports included) and the CPU
seconds of the read:
  before  formtool as it was: Python's email parser on the whole email (only LF "--" lines
          counted first), each attachment decoded;
  after   `formtool import` of the file (`import_paths`, as the CLI and the web upload call it,
          on an empty SQLite store), with the parser watched: "refused before parsing" means
          it was fed nothing.
Issue 19's emails (built by the tests' own shape builders, tests/test_message_bounds.py):
2.3M header lines, 9M quoted-printable soft breaks and 18M empty lines (18 MB each), and 1M
MIME parts with CR-only line endings (7 MB); each must be refused before parsing. Then the
largest emails within every limit (20 MB of 8-bit text shaped the costliest ways the limits
allow) and a real reply at the size limit (three attachments, 19 MB of base64, CRLF): each must
be read. Target: every email under 300 MB and 30 s of CPU. Exits 1 if an email of the issue is
not refused before parsing, or one within the limits is not read.

    python bench/email_bounds.py
    python bench/email_bounds.py --tiny   # the suite's smoke run: issue 19's emails at full
        size after, at 1/100 size before; the emails within the limits at 1/20 size
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from formtool import store
from formtool.read import message
from formtool.read.limits import MAX_FILE_BYTES

# The shapes the tests build small, built here at full size (so the emails benchmarked are
# the emails tested).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_message_bounds import header_lines, mime_parts, newline_run, real_reply, soft_breaks

MB = 1 << 20
SIZE = MAX_FILE_BYTES - 64 * 1024  # the largest email formtool opens, less room for headers
TARGET_MB, TARGET_CPU = 300, 30
FROM = b"From: Auditor A1 (synthetic) <a1@example.invalid>\n"
LIMIT_AS = "import resource; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
PEAK = """
def peak_mb():  # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec
    status = open("/proc/self/status").read()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024
"""
BEFORE = (
    LIMIT_AS
    + PEAK
    + """
import email, email.policy, json, sys, time
data = open(sys.argv[1], "rb").read()
start = time.process_time()
if data.count(b"\\n--") > 2000:
    outcome = "refused: more than 2,000 MIME boundaries"
else:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    parts = [p for p in msg.walk() if p.get_filename() is not None]
    outcome = f"read: {len(parts)} attachment(s)"
    for part in parts:
        part.get_payload(decode=True)
cpu = time.process_time() - start
print(json.dumps({"cpu": cpu, "peak_mb": peak_mb(), "outcome": outcome}))
"""
)
AFTER = (
    PEAK
    + """
import email.feedparser, json, os, resource, sys, time
from collections import Counter
from pathlib import Path
from formtool import store
from formtool.read.batch import import_paths
fed = []
feed = email.feedparser.FeedParser.feed
def counted(self, data):
    fed.append(len(data))
    return feed(self, data)
email.feedparser.FeedParser.feed = counted
def outcome(outcomes):
    for issue in (i for o in outcomes for i in o.issues):
        if issue.code.label == "bad-message":
            return f"refused {'after' if fed else 'before'} parsing: {issue.value}"
    codes = Counter(o.issues[0].code.label if o.issues else o.status for o in outcomes)
    return "read: " + ", ".join(f"{n} {code}" for code, n in sorted(codes.items()))
for path in sys.argv[2:]:  # each in a child forked from this process: imports done once
    read, write = os.pipe()
    if os.fork() == 0:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        db = store.open_store(sys.argv[1])
        start = time.process_time()
        outcomes = import_paths(db, [Path(path)])
        cpu = time.process_time() - start
        shown = {"cpu": cpu, "peak_mb": peak_mb(), "outcome": outcome(outcomes)}
        os.write(write, json.dumps(shown).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        print(pipe.read() or json.dumps({"cpu": 0, "peak_mb": 0, "outcome": "FAILED"}))
    os.wait()
"""
)


# ---- the largest emails within every limit: 8-bit text costs the parser twice ASCII ------
# Each at a scale (1: full size; the smoke run scales the counts and the size down alike).


def header_lines_8bit(scale: float) -> bytes:
    """As many header lines as may be, each long enough that they fill the size limit."""
    count = int(message.MAX_HEADER_LINES * scale) - 20
    line = b"X-Ab: " + b"\xff" * (int(SIZE * scale) // count - 7) + b"\n"
    return FROM + line * count + b"\nbody\n"


def folded_header(scale: float) -> bytes:
    """One header folded into as many lines as may be, filling the size limit."""
    count = int(message.MAX_HEADER_LINES * scale) - 20
    line = b" " + b"\xff" * (int(SIZE * scale) // count - 2) + b"\n"
    return FROM + b"Subject: s\n" + line * count + b"\nbody\n"


def quoted_lines_8bit(scale: float) -> bytes:
    """A quoted-printable attachment of as many 8-bit lines, soft-broken, as may be."""
    count = int(message.MAX_LINES * scale) - 20
    head = soft_breaks(0).removesuffix(b"--B--\n")
    return head + (b"\xff" * (int(SIZE * scale) // count - 2) + b"=\n") * count + b"--B--\n"


def nested_lines(scale: float) -> bytes:
    """As many multipart sections as may be, each inside the one before, and as many 8-bit
    lines as may be in the innermost: each line is checked against every boundary."""
    sections = message.MAX_MULTIPARTS - 1
    head = b"".join(
        [FROM + b"Content-Type: multipart/mixed; boundary=B0\n\n"]
        + [
            b"--B%d\nContent-Type: multipart/mixed; boundary=B%d\n\n" % (n - 1, n)
            for n in range(1, sections)
        ]
        + [b"--B%d\nContent-Type: text/plain\n\n" % (sections - 1)]
    )
    count = int(message.MAX_LINES * scale) - 4 * sections
    width = max(int(SIZE * scale) - len(head), count) // count - 1
    return head + (b"\xff" * width + b"\n") * count


def mime_parts_8bit(scale: float) -> bytes:
    """As many MIME parts as may be, filled with 8-bit text."""
    count = int(message.MAX_BOUNDARIES * scale) - 5
    body = b"\xff" * (int(SIZE * scale) // count - 32) + b"\n"
    head = FROM + b"Content-Type: multipart/mixed; boundary=B\n\n"
    return head + (b"--B\nContent-Type: text/plain\n\n" + body) * count + b"--B--\n"


def one_line(scale: float) -> bytes:
    """A body of one line of 8-bit text."""
    return FROM + b"Subject: s\n\n" + b"\xff" * int(SIZE * scale)


@dataclass(frozen=True)
class Email:
    label: str
    build: Callable[[float], bytes]  # the email at a scale (1: full size)


ISSUE = [
    Email("2.3M header lines", lambda s: header_lines(int(2_300_000 * s))),
    Email("9M quoted-printable soft breaks", lambda s: soft_breaks(int(9_000_000 * s))),
    Email("a body of 18M empty lines", lambda s: newline_run(int(18_000_000 * s))),
    Email("1M MIME parts, CR line endings", lambda s: mime_parts(int(1_000_000 * s), b"\r")),
]
WITHIN = [
    Email(f"{message.MAX_HEADER_LINES:,} header lines, 8-bit", header_lines_8bit),
    Email(f"a header folded {message.MAX_HEADER_LINES:,} times", folded_header),
    Email(f"{message.MAX_LINES:,} quoted-printable lines", quoted_lines_8bit),
    Email(f"{message.MAX_MULTIPARTS - 1} nested sections, 8-bit lines", nested_lines),
    Email(f"{message.MAX_BOUNDARIES:,} MIME parts, 8-bit", mime_parts_8bit),
    Email("one line of 20 MB, 8-bit", one_line),
    Email("real reply: 3 forms, base64, CRLF", lambda s: real_reply(int(19_000_000 * s))),
]


@dataclass(frozen=True)
class Result:
    cpu: float  # seconds of the read
    peak_mb: float  # the process's, imports included
    outcome: str

    def figures(self) -> str:
        return f"{self.peak_mb:6.0f} MB {self.cpu:6.1f} s"


def measure(code: str, *args: str) -> list[Result]:
    """Run `code` in a fresh process: what it printed, one JSON line per email."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=1800
    )
    if done.returncode != 0:
        sys.exit(f"measuring failed:\n{done.stderr[-2000:]}")
    return [Result(**json.loads(line)) for line in done.stdout.splitlines()]


def written(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="a smoke run in seconds: issue 19's emails at full size after, at 1/100 size "
        "before; the emails within the limits at 1/20 size",
    )
    args = parser.parse_args()
    before_scale, within_scale = (0.01, 0.05) if args.tiny else (1.0, 1.0)
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = f"sqlite:///{folder / 'bench.db'}"
        store.open_store(url).engine.dispose()  # the schema made once, not in each process
        before = [
            measure(BEFORE, str(written(folder, f"before-{n}.eml", shape.build(before_scale))))[0]
            for n, shape in enumerate(ISSUE)
        ]
        issue = [shape.build(1.0) for shape in ISSUE]
        within = [shape.build(within_scale) for shape in WITHIN]
        paths = [str(written(folder, f"{n}.eml", data)) for n, data in enumerate(issue + within)]
        results = measure(AFTER, url, *paths)
    scale = "" if before_scale == 1 else f" (at 1/{round(1 / before_scale)} size)"
    print(
        "Issue 19's emails, each read by a process of its own: peak memory (VmHWM) and CPU seconds "
        f"of the read,\nbefore{scale} and after (`formtool import`):"
    )
    for shape, data, old, new in zip(ISSUE, issue, before, results, strict=False):
        print(
            f"  {shape.label:<34} {len(data) / MB:5.1f} MB  before {old.figures()}  "
            f"after {new.figures()}  {new.outcome}"
        )
        if not new.outcome.startswith("refused before parsing"):
            failures.append(f"{shape.label}: {new.outcome}")
    scale = "" if within_scale == 1 else f" (at 1/{round(1 / within_scale)} size)"
    print(f"\nThe largest emails within every limit{scale}, after:")
    for shape, data, new in zip(WITHIN, within, results[len(ISSUE) :], strict=True):
        print(f"  {shape.label:<34} {len(data) / MB:5.1f} MB  after {new.figures()}  {new.outcome}")
        if not new.outcome.startswith("read"):
            failures.append(f"{shape.label}: {new.outcome}")
    after = [(shape.label, result) for shape, result in zip(ISSUE + WITHIN, results, strict=True)]
    peak = max(after, key=lambda a: a[1].peak_mb)
    cpu = max(after, key=lambda a: a[1].cpu)
    print("\nTargets (after):")
    print(
        f"  worst peak memory {peak[1].peak_mb:6.0f} MB  [< {TARGET_MB} MB] "
        f"{verdict(peak[1].peak_mb < TARGET_MB)}  ({peak[0]})"
    )
    print(
        f"  worst CPU         {cpu[1].cpu:6.1f} s   [< {TARGET_CPU} s] "
        f"{verdict(cpu[1].cpu < TARGET_CPU)}  ({cpu[0]})"
    )
    print(f"  issue 19's emails refused before parsing, the others read  {verdict(not failures)}")
    if not args.tiny:
        from results import record

        worst = [r for label, r in after if label in {s.label for s in WITHIN}]
        refused = max(r.peak_mb for r in results[: len(ISSUE)])
        record(
            "email_bounds.py",
            "issue 19's hostile emails and the costliest emails the limits let through",
            f"hostile: refused before parsing at under {refused:.0f} MB; the worst that "
            f"passes: {max(r.peak_mb for r in worst):.0f} MB, "
            f"{max(r.cpu for r in worst):.1f} s CPU",
            f"every email < {TARGET_MB} MB and < {TARGET_CPU} s: "
            f"{verdict(peak[1].peak_mb < TARGET_MB and cpu[1].cpu < TARGET_CPU and not failures)}",
        )
    if failures:
        print("\n".join(["", *failures]))
        sys.exit(1)


if __name__ == "__main__":
    main()
