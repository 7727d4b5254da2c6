"""set_qc: one decision through qc.services, as a named or the pipeline user."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from accounts.models import Role, StudyMembership
from qc.models import QCEvent, QCEventKind, QCState, ScanReview
from tests.qc.scenarios import make_study_site
from tests.studies.factories import (
    ScanFactory,
    ScantypeFactory,
    SessionFactory,
    TimepointFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def scan(reviewer):
    study_site = make_study_site()
    session = SessionFactory(timepoint=TimepointFactory(study_site=study_site))
    return ScanFactory(session=session, scantype=ScantypeFactory(tag="T1"), series=2)


def set_qc(*args):
    output = io.StringIO()
    call_command("set_qc", *args, stdout=output)
    return output.getvalue()


def states(scan):
    return list(ScanReview.objects.filter(scan=scan).order_by("id").values_list("state", "comment"))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--approve"], ("approved", "")),
        (["--flag", "motion, then ghosting"], ("flagged", "motion, then ghosting")),
        (["--blacklist", "truncated"], ("blacklisted", "truncated")),
    ],
)
def test_set_qc_records_decision(scan, reviewer, args, expected):
    output = set_qc(scan.name, *args, "--user", "reviewer")

    assert states(scan) == [expected]
    assert f"{scan.name} marked {expected[0]} by reviewer" in output
    event = QCEvent.objects.get()
    assert event.kind == QCEventKind.SCAN_REVIEWED
    assert event.actor == reviewer


def test_set_qc_clear_records_new(scan, reviewer):
    set_qc(scan.name, "--blacklist", "truncated", "--user", "reviewer")
    output = set_qc(scan.name, "--clear", "--user", "reviewer")

    assert states(scan) == [("blacklisted", "truncated"), ("new", "")]
    assert "marked new" in output


def test_set_qc_same_decision_twice_changes_nothing(scan, reviewer):
    set_qc(scan.name, "--flag", "motion", "--user", "reviewer")
    output = set_qc(scan.name, "--flag", "motion", "--user", "reviewer")

    assert states(scan) == [("flagged", "motion")]
    assert "already flagged; nothing changed" in output


def test_set_qc_clear_of_unreviewed_scan_changes_nothing(scan, reviewer):
    output = set_qc(scan.name, "--clear", "--user", "reviewer")

    assert states(scan) == []
    assert "already new" in output


def test_set_qc_new_comment_is_a_change(scan, reviewer):
    set_qc(scan.name, "--flag", "motion", "--user", "reviewer")
    set_qc(scan.name, "--flag", "motion and ghosting", "--user", "reviewer")

    assert states(scan) == [("flagged", "motion"), ("flagged", "motion and ghosting")]


def test_set_qc_accepts_file_name(scan, reviewer):
    set_qc(f"{scan.file_stem}.nii.gz", "--approve", "--user", "reviewer")

    assert states(scan) == [("approved", "")]


def test_set_qc_linked_scan_decides_source(scan, reviewer):
    other = make_study_site(nickname="OTHER", code="OTH01")
    linked = ScanFactory(
        session=SessionFactory(timepoint=TimepointFactory(study_site=other)),
        scantype=scan.scantype,
        series=scan.series,
        source=scan,
    )

    set_qc(linked.name, "--blacklist", "shared", "--user", "reviewer")

    assert states(scan) == [("blacklisted", "shared")]
    assert states(linked) == []


@override_settings(QCDASH_PIPELINE_USER="reviewer")
def test_set_qc_defaults_to_pipeline_user(scan, reviewer):
    set_qc(scan.name, "--approve")

    assert ScanReview.objects.get().reviewer == reviewer


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--approve"], "pass --user USERNAME, or set QCDASH_PIPELINE_USER"),
        (["--approve", "--user", "ghost"], "User 'ghost' not found"),
        (["--approve", "--user", "sleeper"], "User 'sleeper' is deactivated"),
        (["--approve", "--user", "viewer"], "viewer may not review scans"),
        (["--flag", "", "--user", "reviewer"], "A comment is required"),
        (["--blacklist", "a\x00b", "--user", "reviewer"], "NUL character"),
    ],
)
def test_set_qc_rejects_bad_input(scan, reviewer, args, message):
    UserFactory(username="sleeper", is_active=False)
    viewer = UserFactory(username="viewer")
    StudyMembership.objects.filter(user=viewer).delete()
    StudyMembership.objects.create(
        user=viewer, study=scan.session.timepoint.study, role=Role.VIEWER
    )

    with pytest.raises(CommandError, match=message):
        set_qc(scan.name, *args)
    assert states(scan) == []


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("SPN01-CMH-0001", "Invalid scan file name"),
        ("SPN01_CMH_9999_01_01_T1_02", "Scan SPN01_CMH_9999_01_01_T1_02 not found"),
    ],
)
def test_set_qc_rejects_bad_scan(scan, reviewer, name, message):
    with pytest.raises(CommandError, match=message):
        set_qc(name, "--approve", "--user", "reviewer")


def test_set_qc_needs_one_decision(scan, reviewer):
    with pytest.raises(CommandError, match="one of the arguments"):
        set_qc(scan.name, "--user", "reviewer")


def test_set_qc_state_values_match_qcstate():
    assert {"approved", "flagged", "blacklisted", "new"} == set(QCState.values)
