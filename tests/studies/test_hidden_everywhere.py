"""Deleted timepoints, sessions and scans appear on no page, in no count, search, export or
API response, and nothing links to them.

The study has one shown timepoint with a shown session holding a shown and a deleted scan, a
deleted session holding a scan, and a deleted timepoint with a session and a scan. Every scan
is blacklisted and no session is signed off, so each hidden row would be listed or counted by
the blacklist, the QC search and the needs-review counts if it were not hidden.
"""

import csv
import io
from datetime import timedelta
from io import StringIO
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from notifications.services import overdue_survey_sessions, sessions_needing_review
from qc.models import QCState
from redcap.services import match_record
from studies import services
from tests.qc.factories import ScanReviewFactory
from tests.qc.scenarios import make_study_site
from tests.redcap.factories import RedcapConfigFactory, RedcapRecordFactory
from tests.studies.factories import (
    ScanFactory,
    ScantypeFactory,
    SessionFactory,
    TimepointFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(reviewer):
    admin = UserFactory(username="admin", is_dashboard_admin=True, is_staff=True)
    study_site = make_study_site()
    study_site.uses_redcap = True
    study_site.save(update_fields=["uses_redcap"])
    t1, rst = ScantypeFactory(tag="T1"), ScantypeFactory(tag="RST")

    shown_timepoint = TimepointFactory(study_site=study_site)
    shown_session = SessionFactory(timepoint=shown_timepoint, number=1)
    shown_scan = ScanFactory(session=shown_session, scantype=t1, series=2)
    deleted_scan = ScanFactory(session=shown_session, scantype=rst, series=3)
    deleted_session = SessionFactory(timepoint=shown_timepoint, number=2)
    scan_in_deleted_session = ScanFactory(session=deleted_session, scantype=t1, series=2)
    deleted_timepoint = TimepointFactory(study_site=study_site)
    session_in_deleted_timepoint = SessionFactory(timepoint=deleted_timepoint, number=1)
    scan_in_deleted_timepoint = ScanFactory(
        session=session_in_deleted_timepoint, scantype=rst, series=3
    )
    for scan in (shown_scan, deleted_scan, scan_in_deleted_session, scan_in_deleted_timepoint):
        ScanReviewFactory(scan=scan, state=QCState.BLACKLISTED, comment="motion", reviewer=reviewer)

    for obj in (deleted_scan, deleted_session, deleted_timepoint):
        services.delete_object(obj, user=admin, reason="Entered by mistake.")

    return SimpleNamespace(
        admin=admin,
        study=study_site.study,
        study_site=study_site,
        shown_timepoint=shown_timepoint,
        shown_session=shown_session,
        shown_scan=shown_scan,
        hidden_names=[
            deleted_scan.name,
            deleted_session.name,
            scan_in_deleted_session.name,
            deleted_timepoint.name,
            session_in_deleted_timepoint.name,
            scan_in_deleted_timepoint.name,
        ],
        hidden_timepoints=[deleted_timepoint],
        hidden_sessions=[deleted_session, session_in_deleted_timepoint],
        hidden_scans=[deleted_scan, scan_in_deleted_session, scan_in_deleted_timepoint],
    )


def body_of(response):
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def listing_urls(world):
    """The URLs of every page, export and API response that lists or names study data."""
    study = world.study.nickname
    return [
        reverse("qc:study_list"),
        reverse("qc:study_detail", args=[study]),
        reverse("qc:study_detail", args=[study]) + "?show=needs-review",
        reverse("qc:timepoint_detail", args=[world.shown_timepoint.name]),
        reverse("qc:scan_detail", args=[world.shown_scan.name]),
        reverse("qc:session_sign_off", args=[world.shown_session.name]),
        reverse("qc:search") + "?q=SPN01",
        reverse("qc:search_suggest") + "?q=SPN01",
        reverse("qc:qc_search"),
        reverse("qc:qc_search") + "?mode=all",
        reverse("qc:qc_search_export", args=["csv"]),
        reverse("qc:qc_search_export", args=["json"]) + "?mode=all",
        reverse("qc:compliance:study_compliance", args=[study]),
        reverse("qc:compliance:study_compliance_csv", args=[study]),
        reverse("api:study_list"),
        reverse("api:study_detail", args=[study]),
        reverse("api:study_timepoints", args=[study]),
        reverse("api:timepoint_detail", args=[world.shown_timepoint.name]),
        reverse("api:session", args=[world.shown_session.name]),
        reverse("api:blacklist", args=[study]),
        reverse("api:checklist", args=[study]),
        reverse("api:qc_metadata", args=[study]) + "?allow_partial=true",
    ]


def hidden_detail_urls(world):
    """The URLs that name one hidden row. Each must return 404."""
    urls = []
    for timepoint in world.hidden_timepoints:
        urls += [
            reverse("qc:timepoint_detail", args=[timepoint.name]),
            reverse("api:timepoint_detail", args=[timepoint.name]),
            reverse("deletion:timepoint", args=[timepoint.name]),
        ]
    for session in world.hidden_sessions:
        urls += [
            reverse("qc:session_sign_off", args=[session.name]),
            reverse("api:session", args=[session.name]),
            reverse("api:session_sign_off", args=[session.name]),
            reverse("deletion:session", args=[session.name]),
        ]
    for scan in world.hidden_scans:
        urls += [
            reverse("qc:scan_detail", args=[scan.name]),
            reverse("api:scan", args=[scan.name]),
            reverse("api:scan_qc", args=[scan.name]),
            reverse("api:header_diff", args=[scan.name]),
            reverse("deletion:scan", args=[scan.name]),
        ]
    return urls


@pytest.mark.parametrize("persona", ["admin", "reviewer"])
def test_listings_leave_hidden_rows_out(client, world, reviewer, persona):
    client.force_login(world.admin if persona == "admin" else reviewer)

    for url in listing_urls(world):
        response = client.get(url)
        assert response.status_code == 200, url
        body = body_of(response)
        for name in world.hidden_names:
            assert name not in body, f"{name} appears on {url}"


@pytest.mark.parametrize("persona", ["admin", "reviewer"])
def test_hidden_detail_urls_404(client, world, reviewer, persona):
    client.force_login(world.admin if persona == "admin" else reviewer)

    for url in hidden_detail_urls(world):
        assert client.get(url).status_code == 404, url


def test_listings_show_the_shown_rows(admin_client_for, world):
    client = admin_client_for(world)

    overview = client.get(reverse("qc:study_detail", args=[world.study.nickname])).text
    blacklist = client.get(reverse("api:blacklist", args=[world.study.nickname])).text

    assert world.shown_timepoint.name in overview
    assert world.shown_scan.name in blacklist


def test_study_list_counts_leave_hidden_out(admin_client_for, world):
    client = admin_client_for(world)

    response = client.get(reverse("qc:study_list"))

    study = response.context["page"].object_list[0]
    assert study.timepoint_count == 1
    assert study.needs_review_count == 1


def test_study_overview_count_leaves_hidden_out(admin_client_for, world):
    client = admin_client_for(world)

    response = client.get(reverse("qc:study_detail", args=[world.study.nickname]))

    assert response.context["needs_review_count"] == 1
    timepoints = list(response.context["page"].object_list)
    assert [timepoint.name for timepoint in timepoints] == [world.shown_timepoint.name]
    assert [session.number for session in timepoints[0].session_list] == [1]
    assert timepoints[0].session_list[0].new_scan_count == 0


def test_compliance_counts_leave_hidden_out(admin_client_for, world):
    client = admin_client_for(world)

    response = client.get(
        reverse("qc:compliance:study_compliance_csv", args=[world.study.nickname])
    )

    rows = list(csv.DictReader(io.StringIO(body_of(response))))
    counted = {row["tag"] for row in rows if row.get("tag") not in (None, "", "All tags")}
    assert counted == {"T1"}


def test_timepoint_page_leaves_hidden_out(admin_client_for, world):
    client = admin_client_for(world)

    response = client.get(reverse("qc:timepoint_detail", args=[world.shown_timepoint.name]))

    sessions = response.context["timepoint"].session_list
    assert [session.number for session in sessions] == [1]
    assert [scan.name for scan in sessions[0].scan_list] == [world.shown_scan.name]


@pytest.mark.parametrize(
    "arguments",
    [
        ["--what", "blacklist"],
        ["--what", "blacklist", "--format", "csv"],
        ["--what", "checklist"],
        ["--what", "metadata", "--allow-partial"],
        ["--what", "table"],
    ],
)
def test_export_qc_leaves_hidden_out(world, arguments):
    stdout = StringIO()

    call_command("export_qc", world.study.nickname, *arguments, stdout=stdout, stderr=StringIO())

    for name in world.hidden_names:
        assert name not in stdout.getvalue()


def test_export_qc_subject_of_hidden_timepoint_rejected(world):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="not found in study"):
        call_command(
            "export_qc",
            world.study.nickname,
            "--what",
            "blacklist",
            "--subject",
            world.hidden_timepoints[0].name,
            stdout=StringIO(),
        )


def test_digest_sessions_leave_hidden_out(world, reviewer):
    sessions = list(sessions_needing_review(reviewer))

    assert sessions == [world.shown_session]


def test_survey_reminders_leave_hidden_out(world):
    later = timezone.now() + timedelta(days=30)

    sessions = list(overdue_survey_sessions(now=later))

    assert sessions == [world.shown_session]


def test_redcap_record_not_matched_to_hidden_session(world):
    config = RedcapConfigFactory(study_sites=[world.study_site])
    record = RedcapRecordFactory(config=config, session_id_text=world.hidden_sessions[0].name)

    linked = match_record(record)

    assert linked is False
    record.refresh_from_db()
    assert "was deleted by a dashboard admin" in record.match_error


@pytest.fixture
def admin_client_for(client):
    def login(world):
        client.force_login(world.admin)
        return client

    return login
