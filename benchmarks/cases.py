"""The requests a benchmark sends, built from the seeded database, and their in-process timing.

Every case authenticates as one reviewer account, `bench-runner`, which has the QC reviewer
role in every study. Rows that account wrote in an earlier run are deleted first, so each run
starts from the seeded state.
"""

import secrets
import statistics
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.db import connection, reset_queries
from django.db.models import Count, Q
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

RUNNER_USERNAME = "bench-runner"
REDCAP_PROJECT_ID = 4242
REDCAP_INSTRUMENT = "bench_scan_completed"
OVERVIEW_SORTS = ("timepoint", "-timepoint", "site", "-site")


@dataclass
class Case:
    """One benchmarked request: a name, and the (method, path, body) entries sent in turn.

    A body may contain "{n}", which becomes a number unique to the request.
    """

    name: str
    entries: list
    iterations: int = 30
    warmup: int = 2
    http_connections: int = 2
    http_seconds: float = 5.0
    # A download takes seconds, so a shorter --http-seconds would time none of it.
    min_http_seconds: float = 0.0
    expected_status: tuple = (200,)


@dataclass
class Measurement:
    """Latencies (seconds) and SQL query counts of one case."""

    case: str
    latencies: list = field(default_factory=list)
    query_counts: list = field(default_factory=list)
    requests_per_second: float | None = None
    http: dict | None = None

    @property
    def median_ms(self):
        return statistics.median(self.latencies) * 1000

    @property
    def p95_ms(self):
        return percentile(self.latencies, 95) * 1000

    @property
    def queries(self):
        """The query count, or "min-max" when it varied between requests."""
        low, high = min(self.query_counts), max(self.query_counts)
        return str(low) if low == high else f"{low}-{high}"


def percentile(values, rank):
    """Return the nearest-rank percentile of `values` (rank 0 to 100)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(rank / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


# --- Fixtures -----------------------------------------------------------------------------


def runner_user():
    """Return the `bench-runner` account with the QC reviewer role in every study."""
    from accounts.models import Role, StudyMembership, User
    from studies.models import Study

    user, _ = User.objects.get_or_create(
        username=RUNNER_USERNAME, defaults={"email": f"{RUNNER_USERNAME}@example.org"}
    )
    have = set(StudyMembership.objects.filter(user=user).values_list("study_id", flat=True))
    StudyMembership.objects.bulk_create(
        StudyMembership(user=user, study_id=study_id, role=Role.QC_REVIEWER)
        for study_id in Study.objects.exclude(pk__in=have).values_list("pk", flat=True)
    )
    return user


def delete_earlier_writes(user):
    """Delete the reviews, sign-offs and triggers an earlier run wrote, and its queued tasks."""
    from django_q.models import OrmQ

    from qc.models import QCEvent, ScanReview, SessionSignOff, refresh_review_states
    from redcap.models import RedcapTrigger
    from studies.models import Scan

    QCEvent.objects.filter(actor=user).delete()
    reviewed = set(ScanReview.objects.filter(reviewer=user).values_list("scan_id", flat=True))
    ScanReview.objects.filter(reviewer=user).delete()
    refresh_review_states(Scan.all_objects.filter(Q(pk__in=reviewed) | Q(source_id__in=reviewed)))
    SessionSignOff.objects.filter(reviewer=user).delete()
    RedcapTrigger.objects.filter(config__project_id=REDCAP_PROJECT_ID).delete()
    OrmQ.objects.all().delete()


def redcap_config():
    from redcap.models import RedcapConfig

    config, _ = RedcapConfig.objects.get_or_create(
        url="http://127.0.0.1:9/",
        project_id=REDCAP_PROJECT_ID,
        instrument=REDCAP_INSTRUMENT,
        defaults={"token": "0123456789ABCDEF0123456789ABCDEF"},
    )
    return config


def largest_study():
    from studies.models import Study

    study = (
        Study.objects.annotate(timepoint_count=Count("timepoints"))
        .order_by("-timepoint_count", "nickname")
        .first()
    )
    if study is None or not study.timepoint_count:
        raise LookupError("The database contains no seeded study; run seed_benchmark first.")
    return study


def mistyped_id(name):
    """Return `name` with the first two differing adjacent characters of its site code swapped
    (`BEN51_UTO_02500_01` becomes `BEN51_TUO_02500_01`), as a reviewer might type it.

    Raises LookupError when some stored ID contains the result, because the search would then
    list containing IDs and not the closest ones.
    """
    from studies.models import Scan, Session, Timepoint
    from studies.search_keys import search_key

    study_code, site, rest = name.split("_", 2)
    for position in range(len(site) - 1):
        if site[position] != site[position + 1]:
            swapped = site[:position] + site[position + 1] + site[position] + site[position + 2 :]
            break
    else:
        raise LookupError(f"The site code of {name} has no two different adjacent characters.")
    mistyped = f"{study_code}_{swapped}_{rest}"
    key = search_key(mistyped)
    for model in (Timepoint, Session, Scan):
        if model.objects.filter(search_key__contains=key).exists():
            raise LookupError(f"An ID of the database contains {mistyped}; seed another database.")
    return mistyped


def build_cases(*, iterations, write_targets):
    """Return the benchmark cases for the largest study of the database.

    `write_targets` is how many distinct scans and sessions the review and sign-off cases
    cycle through. A sign-off needs a session of its own per request to sign off anything.
    """
    from qc import selectors
    from qc.models import with_qc_state
    from studies.models import Scan, Session, Timepoint

    study = largest_study()
    timepoints = Timepoint.objects.filter(study=study).order_by("name")
    total = timepoints.count()
    middle = timepoints[total // 2]
    scan = Scan.objects.filter(session__timepoint=middle).order_by("series").first()
    site_name = middle.study_site.site.name
    overview = reverse("qc:study_detail", args=[study.nickname])
    last_page = max(1, -(-total // 50))

    unsigned = list(
        Session.objects.filter(timepoint__study=study, sign_off__isnull=True)
        .filter(timepoint__is_phantom=False)
        .order_by("-timepoint__name")
        .values_list("pk", flat=True)[:write_targets]
    )
    new_scans = (
        with_qc_state(Scan.objects.filter(session_id__in=unsigned))
        .filter(selectors.IS_NEW)
        .values_list("session_id", "pk")
    )
    new_by_session = {pk: [] for pk in unsigned}
    for session_id, scan_id in new_scans:
        new_by_session[session_id].append(scan_id)
    sessions = Session.objects.select_related("timepoint").in_bulk(unsigned)
    sign_offs = [
        (
            "POST",
            reverse("qc:session_sign_off", args=[sessions[pk].name]),
            urlencode({"approve_scan_ids": new_by_session[pk]}, doseq=True),
        )
        for pk in unsigned
    ]
    review_scans = Scan.objects.filter(session__timepoint__study=study).order_by("-pk")
    reviews = [
        ("POST", reverse("qc:scan_review", args=[name]), "state=approved")
        for name in review_scans.values_list("name", flat=True)[:write_targets]
    ]

    config = redcap_config()
    trigger_body = urlencode(
        {
            "redcap_url": config.url,
            "project_url": f"{config.url}redcap_v14.5.2/index.php?pid={config.project_id}",
            "project_id": str(config.project_id),
            "username": "ra_bench",
            "record": "bench-{n}",
            "instrument": config.instrument,
            f"{config.instrument}_complete": "2",
        },
        safe="{}",
    )
    trigger_url = reverse("redcap:trigger", args=[config.trigger_secret])

    def get(name, path, **options):
        options.setdefault("iterations", iterations)
        return Case(name, [("GET", path, "")], **options)

    cases = [
        get("home (study list)", reverse("qc:study_list")),
        get("study overview, page 1", overview),
    ]
    for sort in OVERVIEW_SORTS:
        cases.append(get(f"study overview, page 1, sort {sort}", f"{overview}?sort={sort}"))
        cases.append(
            get(
                f"study overview, page {last_page}, sort {sort}",
                f"{overview}?sort={sort}&page={last_page}",
            )
        )
    cases += [
        get("study overview, needs review", f"{overview}?show=needs-review"),
        get("timepoint page", reverse("qc:timepoint_detail", args=[middle.name])),
        get("scan page", reverse("qc:scan_detail", args=[scan.name])),
        get("search, narrow term", f"{reverse('qc:search')}?q={middle.name}"),
        get("search, broad term", f"{reverse('qc:search')}?q={site_name}"),
        get("search, mistyped ID", f"{reverse('qc:search')}?q={mistyped_id(middle.name)}"),
        get("QC search, no filters", reverse("qc:qc_search")),
        get(
            "QC search, filters",
            f"{reverse('qc:qc_search')}?study={study.nickname}&site={site_name}&state=flagged",
        ),
        get(
            "CSV export of the study",
            f"{reverse('qc:qc_search_export', args=['csv'])}?study={study.nickname}",
            iterations=min(iterations, 3),
            # One download of a whole study takes seconds and needs no warm-up of its own.
            warmup=0,
            http_connections=1,
            http_seconds=10.0,
            min_http_seconds=10.0,
        ),
        Case("review POST", reviews, iterations=iterations, expected_status=(302,)),
        Case(
            "sign-off POST",
            sign_offs,
            iterations=min(iterations, max(1, len(sign_offs) // 4)),
            expected_status=(302,),
        ),
        Case(
            "REDCap trigger POST",
            [("POST", trigger_url, trigger_body)],
            iterations=iterations * 4,
            http_connections=4,
            http_seconds=10.0,
        ),
    ]
    return study, cases


# --- In-process timing --------------------------------------------------------------------


class InProcessClient:
    """A Django test client signed in as the runner, with a request counter for "{n}"."""

    def __init__(self, user):
        self.client = Client()
        self.client.force_login(user)
        self.counter = 0

    def send(self, method, path, body):
        self.counter += 1
        if method == "GET":
            response = self.client.get(path)
        else:
            data = body.replace("{n}", f"in-process-{self.counter}")
            response = self.client.post(
                path, data, content_type="application/x-www-form-urlencoded"
            )
        if getattr(response, "streaming", False):
            # A download counts until its last byte, as a browser would receive it.
            for _chunk in response.streaming_content:
                pass
        return response

    def session_cookie(self):
        return self.client.cookies["sessionid"].value


def measure_in_process(case, client, *, warmup=None):
    """Send the case's requests in turn and return a Measurement; raise on a wrong status.

    `warmup` requests (by default the case's own number) are sent first and not measured.
    """
    warmup = case.warmup if warmup is None else warmup
    measurement = Measurement(case.name)
    entries = case.entries
    position = 0
    for round_number in range(warmup + case.iterations):
        method, path, body = entries[position % len(entries)]
        position += 1
        # The query log keeps at most 9,000 entries, and a full log makes the capture count 0.
        reset_queries()
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.send(method, path, body)
            elapsed = time.perf_counter() - started
        if response.status_code not in case.expected_status:
            raise RuntimeError(
                f"{case.name}: {method} {path} returned status {response.status_code}, "
                f"expected {' or '.join(map(str, case.expected_status))}."
            )
        if round_number >= warmup:
            measurement.latencies.append(elapsed)
            measurement.query_counts.append(len(queries))
    # The first entries of a write case were used in the in-process run, so the HTTP run starts
    # after them and never repeats a sign-off.
    case.entries = entries[position:] or entries
    return measurement


def csrf_secret():
    """Return a value usable as both the CSRF cookie and the X-CSRFToken header."""
    return secrets.token_hex(16)
