"""Measure qcdash on a seeded benchmark database and write the figures to docs/benchmarks.md.

    .venv/bin/python -m benchmarks.run --profile large \\
        --database-url postgres://postgres@127.0.0.1:5432/qcdash_bench_large \\
        --write docs/benchmarks.md

The runner migrates the database and, when it contains no study yet, seeds the profile with
`seed_benchmark`. It then measures every case twice: in process through Django's test client
(latency and SQL queries per request) and over HTTP, with gunicorn on 127.0.0.1 driven by wrk
(latency and requests per second). Last, it times `import_archive` on a synthetic archive it
writes to a temporary folder. All traffic goes to 127.0.0.1. The database must be one that the
runner may fill: it writes reviews, sign-offs and triggers, and deletes those of earlier runs.
"""

import argparse
import copy
import gc
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Production-like settings for this process and the server: DEBUG off, plain HTTP, persistent
# database connections as docs/operations.md recommends.
ENVIRONMENT = {
    "DEBUG": "false",
    "SECRET_KEY": "benchmark-only-" + "x" * 40,
    "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    "SECURE_SSL_REDIRECT": "false",
    "SESSION_COOKIE_SECURE": "false",
    "CSRF_COOKIE_SECURE": "false",
    "SECURE_HSTS_SECONDS": "0",
    "MFA_REQUIRED_FOR_DASHBOARD_ADMINS": "false",
    "LOG_LEVEL": "WARNING",
    "CONN_MAX_AGE": "60",
}

# Targets per case name prefix: (maximum p95 in ms, maximum SQL queries or None).
TARGETS = {
    "study overview": (150, 12),
    "timepoint page": (60, None),
    "scan page": (60, None),
    "search, broad": (100, None),
    "QC search": (150, None),
    "review POST": (60, None),
    "sign-off POST": (60, None),
    "REDCap trigger POST": (50, None),
}
STRETCH_P95_MS = 300
DOC_START = "<!-- benchmark {profile} start -->"
DOC_END = "<!-- benchmark {profile} end -->"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--profile",
        required=True,
        choices=["small", "large", "stretch", "lab"],
        help="seed_benchmark profile to measure (seeded first when the database is empty)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="database to measure, e.g. postgres://postgres@127.0.0.1:5432/qcdash_bench_large "
        "(default: $DATABASE_URL)",
    )
    parser.add_argument(
        "--iterations", type=int, default=30, help="in-process requests per case (default 30)"
    )
    parser.add_argument("--no-http", action="store_true", help="skip the gunicorn and wrk stage")
    parser.add_argument(
        "--port", type=int, default=18600, help="127.0.0.1 port for gunicorn (default 18600)"
    )
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers (default 3)")
    parser.add_argument(
        "--http-seconds",
        type=float,
        default=None,
        help="wrk duration per case in seconds (default: 5 for pages, 10 for the CSV export "
        "and the REDCap trigger)",
    )
    parser.add_argument(
        "--import-timepoints",
        type=int,
        default=500,
        help="timepoints of ten scans in the synthetic import archive; 0 skips the import "
        "stage (default 500)",
    )
    parser.add_argument(
        "--case",
        action="append",
        default=[],
        metavar="TEXT",
        help="measure only the cases whose name contains TEXT (repeatable; default: all). "
        "Meant for trying a change: --write refuses a partial table",
    )
    parser.add_argument(
        "--write",
        type=Path,
        metavar="MARKDOWN",
        help="replace this profile's section of a Markdown file (e.g. docs/benchmarks.md)",
    )
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("pass --database-url or set DATABASE_URL")
    if args.case and args.write:
        parser.error("--write needs every case; drop --case to write the table")
    if args.iterations < 1:
        parser.error(f"--iterations must be 1 or more, not {args.iterations}")
    return args


def setup_django(database_url):
    os.environ.update(ENVIRONMENT)
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qcdash.settings")
    import django

    django.setup()


def ensure_seeded(profile):
    """Migrate, collect static files (DEBUG is off) and seed `profile` when the database contains
    no study. Return the seconds seeding took, or None when nothing was seeded."""
    from django.core.management import call_command
    from django.db import connection

    from studies.models import Study

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    if Study.objects.exclude(nickname="BENCHIMP").exists():
        # Fresh planner statistics and visibility map, as autovacuum keeps them on a running
        # server: a migration that adds a column since the seeding leaves the planner guessing
        # its selectivity, and index-only scans read the table until a vacuum has run.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
        return None
    started = time.perf_counter()
    call_command("seed_benchmark", profile)
    return time.perf_counter() - started


def machine_description():
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
            database = f"PostgreSQL {cursor.fetchone()[0]}"
        else:
            cursor.execute("SELECT sqlite_version()")
            database = f"SQLite {cursor.fetchone()[0]}"
    memory = "unknown RAM"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = int(meminfo.read_text().split("MemTotal:")[1].split()[0])
        memory = f"{kib / 1024 / 1024:.0f} GiB RAM"
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import django

    return (
        f"{os.cpu_count()} cores ({cpu}), {memory}, {database} on the same machine, "
        f"Python {platform.python_version()}, Django {django.get_version()}; "
        f"load average before the run {os.getloadavg()[0]:.1f}"
    )


def dataset_description(study):
    from qc.models import ScanReview, SessionSignOff
    from studies.models import Scan, Session, Timepoint

    return (
        f"{Timepoint.objects.count():,} timepoints, {Session.objects.count():,} sessions, "
        f"{Scan.objects.count():,} scans, {ScanReview.objects.count():,} reviews, "
        f"{SessionSignOff.objects.count():,} sign-offs; pages of study {study.nickname}"
    )


def target_for(name, profile):
    for prefix, (p95_ms, queries) in TARGETS.items():
        if name.startswith(prefix):
            if profile == "stretch":
                return STRETCH_P95_MS, queries
            return p95_ms, queries
    if profile == "stretch" and "CSV" not in name:
        return STRETCH_P95_MS, None
    return None, None


def verdict(name, profile, in_process, http):
    p95_limit, query_limit = target_for(name, profile)
    problems = []
    if query_limit is not None and max(in_process.query_counts) > query_limit:
        problems.append(f"queries > {query_limit}")
    if p95_limit is not None:
        p95 = http.http["p95_us"] / 1000 if http else in_process.p95_ms
        if p95 > p95_limit:
            problems.append(f"p95 > {p95_limit} ms")
    if name.startswith("REDCap") and http and http.requests_per_second < 200:
        problems.append("< 200 req/s")
    if p95_limit is None and query_limit is None:
        return "-"
    return "; ".join(problems) or "met"


def format_table(profile, rows, failed=()):
    """Return the Markdown table of `rows` (name, in-process result, WrkResult or None); cases
    named in `failed` failed over HTTP."""
    lines = [
        "| Case | Queries | In-process median | In-process p95 | HTTP median | HTTP p95 | "
        "HTTP req/s | Target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, in_process, http in rows:
        if http:
            http_cells = (
                f"{http.http['p50_us'] / 1000:.1f} ms | {http.http['p95_us'] / 1000:.1f} ms | "
                f"{http.requests_per_second:.0f}"
            )
        elif name in failed:
            http_cells = "failed | failed | -"
        else:
            http_cells = "- | - | -"
        result = "HTTP failed" if name in failed else verdict(name, profile, in_process, http)
        lines.append(
            f"| {name} | {in_process.queries} | {in_process.median_ms:.1f} ms | "
            f"{in_process.p95_ms:.1f} ms | {http_cells} | {result} |"
        )
    return "\n".join(lines)


def format_imports(runs):
    lines = [
        "| Import run | Scans | Seconds | Scans/s | Queries per 1,000 scans |",
        "|---|---|---|---|---|",
    ]
    for run in runs:
        lines.append(
            f"| {run.label} | {run.scans:,} | {run.seconds:.1f} | {run.scans_per_second:,.0f} | "
            f"{run.queries_per_1000_scans:,.0f} |"
        )
    return "\n".join(lines)


def command_line(args):
    parts = [".venv/bin/python -m benchmarks.run", f"--profile {args.profile}"]
    parts.append(f"--database-url {args.database_url}")
    if args.iterations != 30:
        parts.append(f"--iterations {args.iterations}")
    if args.no_http:
        parts.append("--no-http")
    if args.workers != 3:
        parts.append(f"--workers {args.workers}")
    if args.import_timepoints != 500:
        parts.append(f"--import-timepoints {args.import_timepoints}")
    parts.extend(f"--case '{text}'" for text in args.case)
    if args.write:
        parts.append(f"--write {args.write}")
    return " \\\n    ".join(parts)


def write_section(path, profile, text):
    """Replace the profile's section between its markers in `path`, or append it."""
    start, end = DOC_START.format(profile=profile), DOC_END.format(profile=profile)
    block = f"{start}\n{text.rstrip()}\n{end}\n"
    content = path.read_text() if path.exists() else ""
    if start in content and end in content:
        before = content.split(start, 1)[0]
        after = content.split(end, 1)[1].lstrip("\n")
        content = f"{before}{block}" + (f"\n{after}" if after else "")
    else:
        content = f"{content.rstrip()}\n\n{block}" if content else block
    path.write_text(content)


def run_http(cases, args, cookie, csrf):
    """Measure each case with wrk; return ({case name: WrkResult}, {case name: error message}).

    A case that fails (an error status, a socket error, a worker killed by gunicorn's timeout)
    is reported and skipped, so the other cases are still measured.
    """
    from benchmarks import load

    environment = dict(os.environ)
    results = {}
    failures = {}
    with load.Gunicorn(args.port, args.workers, environment):
        # Warm every worker up (imports, templates, connections) before anything is timed.
        for case in cases[:2]:
            warm_up = copy.copy(case)
            warm_up.http_seconds = 5
            warm_up.http_connections = args.workers
            load.run_wrk(warm_up, port=args.port, cookie=cookie, csrf=csrf)
        for case in cases:
            if args.http_seconds is not None:
                case.http_seconds = max(args.http_seconds, case.min_http_seconds)
            print(f"  HTTP {case.name} ...", flush=True)
            try:
                results[case.name] = load.run_wrk(case, port=args.port, cookie=cookie, csrf=csrf)
            except load.LoadError as error:
                print(f"  HTTP {case.name} failed: {error}", flush=True)
                failures[case.name] = str(error)
    return results, failures


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    setup_django(args.database_url)
    from benchmarks import cases as cases_module

    seed_seconds = ensure_seeded(args.profile)
    machine = machine_description()
    user = cases_module.runner_user()
    cases_module.delete_earlier_writes(user)
    study, cases = cases_module.build_cases(iterations=args.iterations, write_targets=3000)
    if args.case:
        cases = [case for case in cases if any(text in case.name for text in args.case)]
        if not cases:
            sys.exit(f"No benchmark case name contains {' or '.join(map(repr, args.case))}.")
    dataset = dataset_description(study)
    print(f"Machine: {machine}\nData: {dataset}", flush=True)

    client = cases_module.InProcessClient(user)
    in_process = {}
    for case in cases:
        print(f"  in process {case.name} ...", flush=True)
        in_process[case.name] = cases_module.measure_in_process(case, client)

    http, http_failures = {}, {}
    if not args.no_http:
        csrf = cases_module.csrf_secret()
        http, http_failures = run_http(cases, args, client.session_cookie(), csrf)

    imports = []
    if args.import_timepoints:
        from benchmarks import importing

        print("  import_archive ...", flush=True)
        # A real import runs in a process of its own. Freezing what the earlier stages left
        # keeps Python's garbage collector from scanning those objects during the import.
        gc.collect()
        gc.freeze()
        with tempfile.TemporaryDirectory(prefix="qcdash-bench-archive-") as folder:
            imports = importing.measure_imports(folder, args.import_timepoints)

    rows = [(case.name, in_process[case.name], http.get(case.name)) for case in cases]
    total = time.perf_counter() - started
    report = render_report(
        args, machine, dataset, rows, imports, seed_seconds, total, http_failures
    )
    print(report)
    if args.write:
        write_section(args.write, args.profile, report)
        print(f"Wrote the {args.profile} section of {args.write}.")
    return 0


def render_report(args, machine, dataset, rows, imports, seed_seconds, total, http_failures):
    seeded = f" Seeding took {seed_seconds:.0f} s." if seed_seconds else ""
    if args.http_seconds is None:
        duration = "5 s per page, 10 s for the CSV export and the trigger"
    else:
        duration = f"{args.http_seconds:g} s per case (at least 10 s for the CSV export)"
    http_note = (
        "HTTP skipped (--no-http)."
        if args.no_http
        else f"HTTP: gunicorn with {args.workers} sync workers on 127.0.0.1 after a 10 s "
        f"warm-up, wrk with one thread and 2 connections per page (1 for the CSV export, 4 for "
        f"the REDCap trigger), {duration}."
    )
    parts = [
        f"### Profile `{args.profile}`",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} in {total:.0f} s.{seeded}",
        "",
        f"- Machine: {machine}.",
        f"- Data: {dataset}.",
        f"- In process: Django test client, {args.iterations} requests per case after 2 "
        f"warm-up requests ({args.iterations * 4} for the trigger, at most 3 without warm-up "
        f"for the CSV export); queries counted with CaptureQueriesContext.",
        f"- {http_note}",
        "",
        "```",
        command_line(args),
        "```",
        "",
        format_table(args.profile, rows, failed=http_failures),
    ]
    if http_failures:
        parts.append("")
        parts.extend(
            f"- HTTP failed for {name}: {message}" for name, message in http_failures.items()
        )
    if imports:
        parts += ["", format_imports(imports)]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    sys.exit(main())
