"""Deterministic synthetic studies for benchmarks, written with bulk inserts.

Each profile describes studies by their number of sites and timepoints. Every timepoint has one
session of ten scans with a sidecar; 60% of scans are reviewed (80% approved, 15% flagged, 5%
blacklisted), 60% of sessions are signed off and 1% of scans have a current header diff that
reports a deviation. The same profile and seed always give the same rows. The tables are
analysed at the end, so the query planner sees their real sizes at once.
"""

import random
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User
from qc.compliance import HeaderDiffStatus
from qc.models import HeaderDiff, QCEvent, QCEventKind, QCState, ScanReview, SessionSignOff
from studies.models import (
    ExpectedScan,
    Scan,
    Scantype,
    Session,
    Site,
    Study,
    StudySite,
    Timepoint,
)

BATCH_SIZE = 5000
TAGS = [
    ("T1", "anat", 1),
    ("T2", "anat", 1),
    ("FLAIR", "anat", 1),
    ("RST", "fmri", 2),
    ("EMP", "fmri", 2),
    ("DTI60-1000", "dti", 1),
    ("FMAP", "ignore", 2),
]
SCANS_PER_SESSION = 10
REVIEWED_SHARE = 0.6
HEADER_DIFF_SHARE = 0.01
SIGNED_OFF_SHARE = 0.6
STATE_WEIGHTS = [(QCState.APPROVED, 0.80), (QCState.FLAGGED, 0.15), (QCState.BLACKLISTED, 0.05)]
SITE_NAMES = ["CMH", "MRC", "ZHH", "UTO", "TGH", "SMH", "BYC", "UCL"]


@dataclass(frozen=True)
class StudyShape:
    nickname: str
    sites: int
    timepoints: int
    # The datman study code that starts every ID: three letters and two digits, unique per study.
    code: str = "BEN51"


def _lab_profile():
    # 30 studies of mixed sizes, about 15,000 sessions in all.
    sizes = [3000, 2000, 1500, 1200, 1000, 800, 700, 600, 500, 450] + [400] * 5 + [100] * 15
    return [
        StudyShape(f"LAB{index:02d}", 1 + index % 4, size, code=f"LAB{index:02d}")
        for index, size in enumerate(sizes)
    ]


PROFILES = {
    "small": [StudyShape("BENCH", 4, 200)],
    "large": [StudyShape("BENCH", 4, 5000)],
    "stretch": [StudyShape("BENCH", 4, 50000)],
    "lab": _lab_profile(),
}


@dataclass
class SeedResult:
    studies: int = 0
    timepoints: int = 0
    sessions: int = 0
    scans: int = 0
    reviews: int = 0
    sign_offs: int = 0
    header_diffs: int = 0

    def summary(self):
        return (
            f"{self.studies} studies, {self.timepoints} timepoints, {self.sessions} sessions, "
            f"{self.scans} scans, {self.reviews} reviews, {self.sign_offs} sign-offs, "
            f"{self.header_diffs} header diffs"
        )


class SeedError(Exception):
    """The benchmark data cannot be written; the message says why and what to do."""


def _sidecar(tag, series, rng):
    return {
        "Manufacturer": "Siemens",
        "ManufacturersModelName": "Prisma",
        "MagneticFieldStrength": 3,
        "SeriesDescription": f"{tag} benchmark",
        "SeriesNumber": series,
        "RepetitionTime": round(2.0 + rng.random() * 0.01, 4),
        "EchoTime": round(0.03 + rng.random() * 0.0001, 6),
        "FlipAngle": 52,
        "SliceThickness": 2.5,
        "PhaseEncodingDirection": "j-",
        "ConversionSoftware": "dcm2niix",
        "ConversionSoftwareVersion": "v1.0.20230411",
    }


def seed(profile, *, seed_value=1, progress=None):
    """Write the studies of `profile` and return a SeedResult.

    Raise SeedError when a study of the profile already exists, so a second run never doubles
    the data.
    """
    if profile not in PROFILES:
        raise SeedError(f"Unknown profile {profile!r}; choose one of {', '.join(PROFILES)}.")
    shapes = PROFILES[profile]
    existing = list(
        Study.objects.filter(nickname__in=[shape.nickname for shape in shapes]).values_list(
            "nickname", flat=True
        )
    )
    if existing:
        raise SeedError(
            f"Study {', '.join(existing)} already exists; seed into an empty database "
            f"(for example a new DATABASE_URL) so the figures describe exactly this profile."
        )

    rng = random.Random(seed_value)  # noqa: S311 - repeatable test data, not secrets
    result = SeedResult()
    reviewers = _reviewers()
    scantypes = _scantypes()
    for shape in shapes:
        with transaction.atomic():
            _seed_study(shape, rng, reviewers, scantypes, result, progress)
    # Statistics and a visibility map as autovacuum would leave them; VACUUM cannot run inside
    # a transaction, so it is skipped there (as in tests).
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            cursor.execute("VACUUM ANALYZE")
        else:
            cursor.execute("ANALYZE")
    return result


def _reviewers():
    reviewers = []
    for index in range(5):
        user, _ = User.objects.get_or_create(
            username=f"bench{index}", defaults={"email": f"bench{index}@example.org"}
        )
        reviewers.append(user)
    return reviewers


def _scantypes():
    scantypes = {}
    for tag, qc_type, _ in TAGS:
        scantypes[tag], _ = Scantype.objects.get_or_create(tag=tag, defaults={"qc_type": qc_type})
    return scantypes


def _seed_study(shape, rng, reviewers, scantypes, result, progress):
    study = Study.objects.create(nickname=shape.nickname, name=f"{shape.nickname} benchmark")
    code = shape.code
    study_sites = []
    for site_name in SITE_NAMES[: shape.sites]:
        site, _ = Site.objects.get_or_create(name=site_name)
        study_sites.append(StudySite.objects.create(study=study, site=site, code=code))
    ExpectedScan.objects.bulk_create(
        ExpectedScan(study_site=study_site, scantype=scantypes[tag], count=count)
        for study_site in study_sites
        for tag, _, count in TAGS
    )
    result.studies += 1

    tags = [tag for tag, _, count in TAGS for _ in range(count)][:SCANS_PER_SESSION]
    for start in range(0, shape.timepoints, BATCH_SIZE // SCANS_PER_SESSION):
        stop = min(shape.timepoints, start + BATCH_SIZE // SCANS_PER_SESSION)
        _seed_batch(
            study, study_sites, code, range(start, stop), tags, scantypes, rng, reviewers, result
        )
        if progress:
            progress(shape.nickname, stop, shape.timepoints)


def _seed_batch(study, study_sites, code, numbers, tags, scantypes, rng, reviewers, result):
    timepoints = []
    for number in numbers:
        study_site = study_sites[number % len(study_sites)]
        site = study_site.site.name
        timepoints.append(
            Timepoint(
                name=f"{code}_{site}_{number:05d}_01",
                study=study,
                study_site=study_site,
                bids_name=f"{site}{number:05d}",
                bids_session="01",
            )
        )
    Timepoint.objects.bulk_create(timepoints)
    sessions = Session.objects.bulk_create(Session(timepoint=timepoint) for timepoint in timepoints)

    scans = []
    for timepoint, session in zip(timepoints, sessions, strict=True):
        for series, tag in enumerate(tags, start=2):
            name = f"{timepoint.name}_01_{tag}_{series:02d}"
            scans.append(
                Scan(
                    name=name,
                    session=session,
                    scantype=scantypes[tag],
                    series=series,
                    description=f"{tag}-benchmark",
                    file_stem=f"{name}_{tag}-benchmark",
                    nifti_path=f"data/nii/{timepoint.name}/{name}_{tag}-benchmark.nii.gz",
                    sidecar=_sidecar(tag, series, rng),
                    volumes=1,
                )
            )
    # Each review is chosen before the scans are written, so that its state goes into the scan
    # row with the INSERT (bulk_create skips ScanReview.save(), which would copy it). An UPDATE
    # of the scans afterwards made each batch of `stretch` slower than the one before.
    chosen = []
    states = [state for state, _ in STATE_WEIGHTS]
    weights = [weight for _, weight in STATE_WEIGHTS]
    for scan in scans:
        if rng.random() >= REVIEWED_SHARE:
            continue
        state = rng.choices(states, weights)[0]
        scan.review_state = state
        chosen.append((scan, state, rng.choice(reviewers)))
    Scan.objects.bulk_create(scans)

    reviews = ScanReview.objects.bulk_create(
        ScanReview(
            scan=scan,
            state=state,
            comment="" if state == QCState.APPROVED else f"{state.label} in benchmark",
            reviewer=reviewer,
        )
        for scan, state, reviewer in chosen
    )
    QCEvent.objects.bulk_create(
        QCEvent(
            kind=QCEventKind.SCAN_REVIEWED,
            actor_id=review.reviewer_id,
            study=study,
            session_id=review.scan.session_id,
            scan_id=review.scan_id,
            review=review,
            details={"state": review.state, "comment": review.comment},
        )
        for review in reviews
    )

    sign_offs = SessionSignOff.objects.bulk_create(
        SessionSignOff(session=session, reviewer=rng.choice(reviewers))
        for session in sessions
        if rng.random() < SIGNED_OFF_SHARE
    )
    QCEvent.objects.bulk_create(
        QCEvent(
            kind=QCEventKind.SESSION_SIGNED_OFF,
            actor_id=sign_off.reviewer_id,
            study=study,
            session=sign_off.session,
            sign_off=sign_off,
            details={"approved_scans": []},
        )
        for sign_off in sign_offs
    )

    header_diffs = HeaderDiff.objects.bulk_create(
        _header_diff(scan) for scan in scans if rng.random() < HEADER_DIFF_SHARE
    )

    result.timepoints += len(timepoints)
    result.sessions += len(sessions)
    result.scans += len(scans)
    result.reviews += len(reviews)
    result.sign_offs += len(sign_offs)
    result.header_diffs += len(header_diffs)


def _header_diff(scan):
    # NOTE: the diff names no gold standard row; the reviewer pages only count current diffs by
    # status and show the stored fields, so none is needed for their benchmarks.
    expected = scan.sidecar["RepetitionTime"]
    return HeaderDiff(
        scan=scan,
        status=HeaderDiffStatus.MISMATCH,
        diff={"fields": {"RepetitionTime": {"expected": expected, "actual": expected + 0.5}}},
        deviating_fields=["RepetitionTime"],
        fingerprint="benchmark",
        computed_at=timezone.now(),
    )
