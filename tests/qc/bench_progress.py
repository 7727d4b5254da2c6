"""Measure the progress panel's query on a study with many sessions.

Run from the project folder, against a database that this script may fill with rows:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/qcdash_bench \\
        .venv/bin/python -m tests.qc.bench_progress --sessions 50000

It migrates the database. Unless the study PROGBENCH exists already, it then writes a study with
two sites and `--sessions` sessions spread over four years: two scans per session, an approved
review on every third scan and a sign-off on every second session. Last, it times
`qc.progress.study_progress` (one GROUP BY query and the SVG charts) `--repeat` times.
"""

import argparse
import datetime
import os
import statistics
import time

NICKNAME = "PROGBENCH"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=50_000, help="Sessions to write.")
    parser.add_argument("--repeat", type=int, default=5, help="Timed runs.")
    return parser.parse_args()


def setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qcdash.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed(total):
    from accounts.models import User
    from qc.models import QCState, ScanReview, SessionSignOff
    from studies.models import Scan, Scantype, Session, Site, Study, StudySite, Timepoint

    study = Study.objects.create(nickname=NICKNAME)
    study_sites = [
        StudySite.objects.create(
            study=study, site=Site.objects.get_or_create(name=name)[0], code="PRB01"
        )
        for name in ("PBA", "PBB")
    ]
    reviewer, _ = User.objects.get_or_create(
        username="progress-bench", defaults={"email": "progress-bench@example.org"}
    )
    scantype, _ = Scantype.objects.get_or_create(tag="PROGBENCH")
    timepoints = Timepoint.objects.bulk_create(
        (
            Timepoint(
                name=f"PRB01_{study_sites[index % 2].site.name}_{index:06d}_01",
                study=study,
                study_site=study_sites[index % 2],
            )
            for index in range(total)
        ),
        batch_size=5000,
    )
    sessions = Session.objects.bulk_create(
        (
            Session(
                timepoint=timepoint,
                number=1,
                acquired_on=datetime.date(2022 + index % 4, 1 + index % 12, 1 + index % 28),
            )
            for index, timepoint in enumerate(timepoints)
        ),
        batch_size=5000,
    )
    scans = Scan.objects.bulk_create(
        (
            Scan(
                name=f"{timepoint.name}_01_PROGBENCH_{series:02d}",
                session=session,
                scantype=scantype,
                series=series,
                file_stem="bench",
            )
            for session, timepoint in zip(sessions, timepoints, strict=True)
            for series in (1, 2)
        ),
        batch_size=5000,
    )
    ScanReview.objects.bulk_create(
        (ScanReview(scan=scan, state=QCState.APPROVED, reviewer=reviewer) for scan in scans[::3]),
        batch_size=5000,
    )
    # bulk_create skips ScanReview.save(), which copies each state to its scan.
    reviewed_ids = [scan.pk for scan in scans[::3]]
    for start in range(0, len(reviewed_ids), 5000):
        Scan.objects.filter(pk__in=reviewed_ids[start : start + 5000]).update(
            review_state=QCState.APPROVED
        )
    SessionSignOff.objects.bulk_create(
        (SessionSignOff(session=session, reviewer=reviewer) for session in sessions[::2]),
        batch_size=5000,
    )
    return study


def main():
    args = parse_args()
    setup_django()
    from django.db import connection

    from qc import progress
    from studies.models import Session, Study

    study = Study.objects.filter(nickname=NICKNAME).first()
    if study is None:
        started = time.perf_counter()
        study = seed(args.sessions)
        print(f"wrote {args.sessions} sessions in {time.perf_counter() - started:.1f} s")
    sessions = Session.objects.filter(timepoint__study=study)
    count = sessions.count()

    timings = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        panel = progress.study_progress(sessions)
        timings.append(time.perf_counter() - started)
    acquired = sum(site.totals.acquired for site in panel.sites) + panel.earlier
    print(
        f"{connection.vendor}: {count} sessions ({acquired} counted), "
        f"study_progress median {statistics.median(timings) * 1000:.0f} ms, "
        f"min {min(timings) * 1000:.0f} ms, max {max(timings) * 1000:.0f} ms "
        f"over {args.repeat} runs"
    )


if __name__ == "__main__":
    main()
