"""Pushing QC decisions to the XNAT stand-in: states, retries, failures and linked scans."""

import pytest
from django_q.models import Schedule

from integrations import services, tasks
from integrations.models import PushStatus, XnatPush, XnatSiteSettings
from integrations.xnat import kcni_names
from qc.models import QCState
from qc.services import review_scan, sign_off_session
from studies.models import XnatConvention
from tests.integrations.conftest import CREDENTIALS_VARIABLE, SESSION, xnat_site
from tests.studies.factories import ScanFactory, SessionFactory, TimepointFactory

pytestmark = pytest.mark.django_db


def review(scan, reviewer, state, capture, comment=""):
    """Record a decision and run what its commit queues (the pushes, synchronously)."""
    if state in (QCState.FLAGGED, QCState.BLACKLISTED) and not comment:
        comment = "Motion in the last volumes."
    with capture(execute=True):
        review_scan(scan, reviewer=reviewer, state=state, comment=comment)


@pytest.mark.parametrize(
    ("state", "quality"),
    [
        (QCState.APPROVED, "usable"),
        (QCState.FLAGGED, "questionable"),
        (QCState.BLACKLISTED, "unusable"),
        (QCState.NEW, ""),
    ],
)
def test_decision_sets_quality(
    xnat, reviewer, sync_tasks, django_capture_on_commit_callbacks, state, quality
):
    review(xnat.scan, reviewer, state, django_capture_on_commit_callbacks)

    push = XnatPush.objects.get()
    assert xnat.fake.quality(xnat.path) == quality
    assert push.status == PushStatus.DONE
    assert push.state == state.value
    assert push.quality == quality
    assert push.attempts == 1
    assert push.xnat_path == xnat.path


def test_push_reads_scan_before_writing(
    xnat, reviewer, sync_tasks, django_capture_on_commit_callbacks
):
    review(xnat.scan, reviewer, QCState.FLAGGED, django_capture_on_commit_callbacks)

    methods = [request.method for request in xnat.fake.requests]
    put = xnat.fake.puts()[0]
    assert methods == ["GET", "PUT"]
    assert put.query == {"xnat:imageScanData/quality": ["questionable"]}


def test_unconfigured_site_pushes_nothing(
    xnat, reviewer, sync_tasks, django_capture_on_commit_callbacks
):
    XnatSiteSettings.objects.update(push_enabled=False)

    review(xnat.scan, reviewer, QCState.APPROVED, django_capture_on_commit_callbacks)

    assert XnatPush.objects.count() == 0
    assert xnat.fake.requests == []


def test_site_without_server_pushes_nothing(
    xnat, reviewer, sync_tasks, django_capture_on_commit_callbacks
):
    type(xnat.study_site).objects.update(xnat_url="")

    review(xnat.scan, reviewer, QCState.APPROVED, django_capture_on_commit_callbacks)

    assert XnatPush.objects.count() == 0


def test_unavailable_xnat_retries_later(
    xnat, reviewer, sync_tasks, django_capture_on_commit_callbacks
):
    xnat.fake.fail_next(1, status=503)

    review(xnat.scan, reviewer, QCState.APPROVED, django_capture_on_commit_callbacks)

    push = XnatPush.objects.get()
    assert push.status == PushStatus.RETRYING
    assert "HTTP 503" in push.last_error
    assert push.next_attempt_at is not None
    retry = Schedule.objects.get()
    assert retry.func == services.PUSH_TASK
    assert retry.args == f"({push.pk},)"
    assert retry.schedule_type == Schedule.ONCE
    assert xnat.fake.puts() == []


def test_retry_succeeds_after_failures(
    xnat, reviewer, sync_tasks, django_capture_on_commit_callbacks
):
    xnat.fake.fail_next(2, status=502)
    review(xnat.scan, reviewer, QCState.BLACKLISTED, django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        tasks.push_to_xnat(XnatPush.objects.get().pk)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.push_to_xnat(XnatPush.objects.get().pk)

    push = XnatPush.objects.get()
    assert push.status == PushStatus.DONE
    assert push.attempts == 3
    assert push.last_error == ""
    assert xnat.fake.quality(xnat.path) == "unusable"


def test_gives_up_after_max_attempts(
    xnat, reviewer, sync_tasks, django_capture_on_commit_callbacks
):
    xnat.fake.fail_next(10, status=503)
    review(xnat.scan, reviewer, QCState.APPROVED, django_capture_on_commit_callbacks)
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            tasks.push_to_xnat(XnatPush.objects.get().pk)

    push = XnatPush.objects.get()
    assert push.status == PushStatus.FAILED
    assert push.attempts == 3
    assert "Gave up after 3 attempts" in push.last_error
    assert push.finished_at is not None


def test_finished_push_is_not_run_again(
    xnat, reviewer, sync_tasks, django_capture_on_commit_callbacks
):
    review(xnat.scan, reviewer, QCState.APPROVED, django_capture_on_commit_callbacks)
    requests_before = len(xnat.fake.requests)

    summary = tasks.push_to_xnat(XnatPush.objects.get().pk)

    assert "already done" in summary
    assert len(xnat.fake.requests) == requests_before


def test_late_retry_pushes_newest_state(
    xnat, reviewer, sync_tasks, django_capture_on_commit_callbacks
):
    xnat.fake.fail_next(1, status=503)
    review(xnat.scan, reviewer, QCState.APPROVED, django_capture_on_commit_callbacks)
    first = XnatPush.objects.get()
    review(xnat.scan, reviewer, QCState.FLAGGED, django_capture_on_commit_callbacks)
    assert xnat.fake.quality(xnat.path) == "questionable"

    # The first push's retry runs last, and still sends the newest decision.
    with django_capture_on_commit_callbacks(execute=True):
        tasks.push_to_xnat(first.pk)

    first.refresh_from_db()
    assert first.status == PushStatus.DONE
    assert first.state == QCState.FLAGGED
    assert xnat.fake.quality(xnat.path) == "questionable"


def test_bad_credentials_fail_without_retry(
    xnat, reviewer, sync_tasks, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setenv(CREDENTIALS_VARIABLE, "qcdash:wrong-password")

    review(xnat.scan, reviewer, QCState.APPROVED, django_capture_on_commit_callbacks)

    push = XnatPush.objects.get()
    assert push.status == PushStatus.FAILED
    assert "HTTP 401" in push.last_error
    assert "wrong-password" not in push.last_error
    assert Schedule.objects.count() == 0


def test_missing_credentials_variable_fails(
    xnat, reviewer, sync_tasks, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.delenv(CREDENTIALS_VARIABLE)

    review(xnat.scan, reviewer, QCState.APPROVED, django_capture_on_commit_callbacks)

    push = XnatPush.objects.get()
    assert push.status == PushStatus.FAILED
    assert f"environment variable {CREDENTIALS_VARIABLE}" in push.last_error
    assert xnat.fake.requests == []


def test_malformed_credentials_variable_fails(
    xnat, reviewer, sync_tasks, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setenv(CREDENTIALS_VARIABLE, "only-a-password")

    review(xnat.scan, reviewer, QCState.APPROVED, django_capture_on_commit_callbacks)

    push = XnatPush.objects.get()
    assert "does not contain user:password" in push.last_error
    assert "only-a-password" not in push.last_error


def test_credentials_file_used(
    xnat, reviewer, sync_tasks, django_capture_on_commit_callbacks, tmp_path
):
    credentials = tmp_path / "xnat-credentials"
    credentials.write_text(f"{xnat.fake.user}\n{xnat.fake.password}\n")
    XnatSiteSettings.objects.update(credentials_variable="", credentials_file=str(credentials))

    review(xnat.scan, reviewer, QCState.APPROVED, django_capture_on_commit_callbacks)

    assert XnatPush.objects.get().status == PushStatus.DONE
    assert xnat.fake.quality(xnat.path) == "usable"


def test_missing_credentials_file_fails(
    xnat, reviewer, sync_tasks, django_capture_on_commit_callbacks, tmp_path
):
    missing = tmp_path / "nope"
    XnatSiteSettings.objects.update(credentials_variable="", credentials_file=str(missing))

    review(xnat.scan, reviewer, QCState.APPROVED, django_capture_on_commit_callbacks)

    push = XnatPush.objects.get()
    assert push.status == PushStatus.FAILED
    assert f"credentials file {missing} does not exist" in push.last_error


def test_scan_missing_in_xnat_fails_without_put(
    xnat, reviewer, sync_tasks, django_capture_on_commit_callbacks
):
    del xnat.fake.scans[xnat.path]

    review(xnat.scan, reviewer, QCState.APPROVED, django_capture_on_commit_callbacks)

    push = XnatPush.objects.get()
    assert push.status == PushStatus.FAILED
    assert f"no scan 2 in experiment {SESSION}" in push.last_error
    assert xnat.fake.puts() == []


def test_slow_xnat_times_out_and_retries(
    xnat, reviewer, sync_tasks, django_capture_on_commit_callbacks
):
    xnat.fake.respond_slowly(2)

    review(xnat.scan, reviewer, QCState.APPROVED, django_capture_on_commit_callbacks)

    push = XnatPush.objects.get()
    assert push.status == PushStatus.RETRYING
    assert "timed out after 0.5 seconds" in push.last_error


def test_huge_response_fails(xnat, reviewer, sync_tasks, django_capture_on_commit_callbacks):
    xnat.fake.respond_with(b"x" * (3 * 1024 * 1024))

    review(xnat.scan, reviewer, QCState.APPROVED, django_capture_on_commit_callbacks)

    push = XnatPush.objects.get()
    assert push.status == PushStatus.FAILED
    assert "returned more than" in push.last_error


def test_sign_off_pushes_approved_scans(
    xnat, reviewer, sync_tasks, django_capture_on_commit_callbacks
):
    second = ScanFactory(session=xnat.session, series=3)
    second_path = xnat.fake.add_scan("SPINS", SESSION, SESSION, "3")

    with django_capture_on_commit_callbacks(execute=True):
        sign_off_session(
            xnat.session, reviewer=reviewer, approve_scan_ids=[xnat.scan.pk, second.pk]
        )

    assert XnatPush.objects.filter(status=PushStatus.DONE).count() == 2
    assert xnat.fake.quality(xnat.path) == "usable"
    assert xnat.fake.quality(second_path) == "usable"


def test_linked_scan_pushes_to_each_study(
    xnat, reviewer, sync_tasks, django_capture_on_commit_callbacks
):
    other_site = xnat_site("ASCEND", "CMH", "ASC01", xnat.fake.url, project="ASCEND")
    linked_session = SessionFactory(
        timepoint=TimepointFactory(study_site=other_site, name="ASC01_CMH_0007_01"), number=1
    )
    linked = ScanFactory(session=linked_session, series=2, source=xnat.scan)
    linked_path = xnat.fake.add_scan("ASCEND", "ASC01_CMH_0007_01_01", "ASC01_CMH_0007_01_01", "2")

    # A decision on the linked scan is recorded on its source and reaches both projects.
    review(linked, reviewer, QCState.BLACKLISTED, django_capture_on_commit_callbacks)

    pushes = XnatPush.objects.order_by("pk")
    assert [push.study.nickname for push in pushes] == ["SPINS", "ASCEND"]
    assert all(push.status == PushStatus.DONE for push in pushes)
    assert xnat.fake.quality(xnat.path) == "unusable"
    assert xnat.fake.quality(linked_path) == "unusable"


def test_kcni_site_uses_kcni_labels(xnat, reviewer, sync_tasks, django_capture_on_commit_callbacks):
    type(xnat.study_site).objects.update(xnat_convention=XnatConvention.KCNI)
    path = xnat.fake.add_scan("SPINS", "SPN01_CMH_0001", "SPN01_CMH_0001_01_SE01_MR", "2")

    review(xnat.scan, reviewer, QCState.FLAGGED, django_capture_on_commit_callbacks)

    assert XnatPush.objects.get().status == PushStatus.DONE
    assert xnat.fake.quality(path) == "questionable"


@pytest.mark.parametrize(
    ("session", "subject", "experiment"),
    [
        ("SPN01_CMH_0001_01_01", "SPN01_CMH_0001", "SPN01_CMH_0001_01_SE01_MR"),
        ("SPN01_CMH_1_01_02", "SPN01_CMH_0001", "SPN01_CMH_0001_01_SE02_MR"),
        ("SPN01_CMH_P0001_01_01", "SPN01_CMH_P0001", "SPN01_CMH_P0001_01_SE01_MR"),
        ("OPT01_UTO_PHA_FBN190603", "OPT01_UTO_FBNPHA", "OPT01_UTO_FBNPHA_190603_MR"),
    ],
)
def test_kcni_names(session, subject, experiment):
    assert kcni_names(session) == (subject, experiment)


def test_push_again_adds_push(xnat, reviewer, sync_tasks, django_capture_on_commit_callbacks):
    del xnat.fake.scans[xnat.path]
    review(xnat.scan, reviewer, QCState.APPROVED, django_capture_on_commit_callbacks)
    failed = XnatPush.objects.get()
    xnat.fake.add_scan("SPINS", SESSION, SESSION, "2")

    with django_capture_on_commit_callbacks(execute=True):
        again = services.push_again(failed, user=reviewer)

    failed.refresh_from_db()
    again.refresh_from_db()
    assert failed.status == PushStatus.FAILED
    assert again.status == PushStatus.DONE
    assert again.requested_by == reviewer
    assert list(XnatPush.objects.unresolved_failures()) == []


def test_push_again_rejects_done_push(
    xnat, reviewer, sync_tasks, django_capture_on_commit_callbacks
):
    review(xnat.scan, reviewer, QCState.APPROVED, django_capture_on_commit_callbacks)

    with pytest.raises(services.IntegrationError, match="only failed pushes"):
        services.push_again(XnatPush.objects.get(), user=reviewer)
