"""Study data for the reviewer page tests: expected scans and sessions in every QC state."""

from types import SimpleNamespace

from qc.models import QCState
from tests.qc.factories import ScanReviewFactory, SessionSignOffFactory
from tests.studies.factories import (
    ExpectedScanFactory,
    PhantomTimepointFactory,
    ScanFactory,
    ScantypeFactory,
    SessionFactory,
    SiteFactory,
    StudyFactory,
    StudySiteFactory,
    TimepointFactory,
)


def make_study_site(nickname="SPINS", site="CMH", code="SPN01"):
    """A study site expecting one T1, one RST and two DTI60-1000 scans per session."""
    study_site = StudySiteFactory(
        study=StudyFactory(nickname=nickname), site=SiteFactory(name=site), code=code
    )
    for tag, count in (("T1", 1), ("RST", 1), ("DTI60-1000", 2)):
        ExpectedScanFactory(
            study_site=study_site, scantype=ScantypeFactory(tag=tag), count=count, phantom_count=1
        )
    return study_site


def fill_session(session, reviewer):
    """Give a session three scans: T1 approved, RST flagged, DTI60-1000 new.

    With one DTI60-1000 of the two expected, the session is short of that tag.
    """
    scans = []
    for series, tag in enumerate(("T1", "RST", "DTI60-1000"), start=2):
        scan = ScanFactory(
            session=session,
            scantype=ScantypeFactory(tag=tag),
            series=series,
            description=f"{tag}-description",
            volumes=1 if tag == "T1" else 65,
            qc_images=[
                {
                    "file": f"qc/{session.timepoint.name}/{tag}_montage.png",
                    "title": "Montage",
                    "caption": f"{tag} montage",
                },
                {
                    "file": f"qc/{session.timepoint.name}/{tag}_b0.png",
                    "title": None,
                    "caption": None,
                },
            ],
        )
        scans.append(scan)
    ScanReviewFactory(scan=scans[0], state=QCState.APPROVED, reviewer=reviewer)
    ScanReviewFactory(scan=scans[1], state=QCState.FLAGGED, comment="motion", reviewer=reviewer)
    return scans


def study_with_timepoints(count, reviewer, nickname="SPINS", code="SPN01"):
    """A study with `count` human timepoints of one session each, every second one signed off,
    plus one phantom timepoint that is not signed off.

    Return a namespace with `study`, `sessions` (the human sessions in creation order, which is
    name order) and `phantom` (the phantom's session).
    """
    study_site = make_study_site(nickname=nickname, code=code)
    sessions = []
    for index in range(count):
        session = SessionFactory(timepoint=TimepointFactory(study_site=study_site))
        fill_session(session, reviewer)
        if index % 2:
            SessionSignOffFactory(session=session, reviewer=reviewer)
        sessions.append(session)
    phantom = SessionFactory(timepoint=PhantomTimepointFactory(study_site=study_site))
    fill_session(phantom, reviewer)
    return SimpleNamespace(study=study_site.study, sessions=sessions, phantom=phantom)


def timepoint_with_sessions(count, reviewer):
    """A timepoint with `count` sessions (numbers 1 to count), the first one signed off."""
    timepoint = TimepointFactory(study_site=make_study_site())
    for number in range(1, count + 1):
        session = SessionFactory(timepoint=timepoint, number=number)
        fill_session(session, reviewer)
        if number == 1:
            SessionSignOffFactory(session=session, reviewer=reviewer)
    return timepoint
