import re

import pytest
from django.template import Context, Template
from django.template.loader import render_to_string
from django.urls import reverse
from pytest_django.asserts import assertHTMLEqual

from accounts.models import Role, StudyMembership
from qc.compliance_services import compute_header_diffs, dismiss_missing_scans
from qc.models import QCState, with_qc_state
from qc.views import _row_form
from studies.models import Scan
from tests.qc.compliance_factories import GoldStandardFactory
from tests.qc.factories import ScanReviewFactory
from tests.qc.scenarios import fill_session, make_study_site, timepoint_with_sessions
from tests.studies.factories import (
    PhantomTimepointFactory,
    ScanFactory,
    ScantypeFactory,
    SessionFactory,
    TimepointFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def timepoint_url(name):
    return reverse("qc:timepoint_detail", args=[name])


def session_header(html, session):
    """The HTML of one session card's header, where its status and compliance badges are."""
    match = re.search(
        rf'data-session="{session.name}">\s*<div class="card-header.*?</div>', html, re.S
    )
    assert match, f"no card for session {session.name}"
    return match.group(0)


def add_rst_standard(study_site):
    """Give the study site an RST gold standard that the scans of `fill_session` deviate from
    in RepetitionTime, and compare every scan of the study with it."""
    GoldStandardFactory(
        study=study_site.study,
        site=study_site.site,
        scantype=ScantypeFactory(tag="RST"),
        sidecar={"SeriesDescription": "Sag T1 Bravo", "RepetitionTime": 2.0, "EchoTime": 0.003},
    )
    compute_header_diffs(study_site.study)


def scan_row(html, scan):
    """The HTML of one scan's `_scan_row.html` fragment."""
    match = re.search(rf'<tbody id="scan-{scan.pk}".*?</tbody>', html, re.S)
    assert match, f"no row for scan {scan.name}"
    return match.group(0)


@pytest.fixture
def session(reviewer):
    session = SessionFactory(timepoint=TimepointFactory(study_site=make_study_site()))
    session.filled_scans = fill_session(session, reviewer)
    return session


def test_timepoint_scan_table(reviewer_client, session):
    t1, rst, dti = session.filled_scans
    response = reviewer_client.get(timepoint_url(session.timepoint.name))

    assert response.status_code == 200
    rst_row = scan_row(response.text, rst)
    assert 'data-state="flagged"' in rst_row
    assert ">reviewer<" in rst_row
    assert "motion" in rst_row
    assert ">RST-description<" in rst_row
    assert ">65<" in rst_row
    assert 'data-state="approved"' in scan_row(response.text, t1)
    assert 'data-state="new"' in scan_row(response.text, dti)


@pytest.mark.parametrize("reviewed", [True, False])
def test_blank_row_form_matches_crispy(session, reviewed):
    scan = session.filled_scans[0] if reviewed else ScanFactory(session=session, series=20)
    scan = with_qc_state(Scan.objects.filter(pk=scan.pk)).get()

    written = render_to_string("qc/_review_form_row.html", {"scan": scan})
    crispy = Template("{% load crispy_forms_tags %}{% crispy form %}").render(
        Context({"form": _row_form(scan)})
    )

    assertHTMLEqual(written, crispy)
    assert (f'value="{scan.qc_review_id}"' in written) is reviewed


def test_timepoint_rows_in_series_order(reviewer_client, session):
    response = reviewer_client.get(timepoint_url(session.timepoint.name))

    scan_list = response.context["timepoint"].session_list[0].scan_list
    assert [scan.series for scan in scan_list] == [2, 3, 4]


def test_timepoint_qc_images_in_manifest_order(reviewer_client, session):
    t1 = session.filled_scans[0]
    response = reviewer_client.get(timepoint_url(session.timepoint.name))

    row = scan_row(response.text, t1)
    montage = reverse(
        "studies:archive_file",
        kwargs={"study": "SPINS", "relative_path": t1.qc_images[0]["file"]},
    )
    b0 = reverse(
        "studies:archive_file",
        kwargs={"study": "SPINS", "relative_path": t1.qc_images[1]["file"]},
    )
    assert f'src="{montage}"' in row
    assert f'src="{b0}"' in row
    assert row.index(montage) < row.index(b0)
    assert "<strong>Montage</strong>" in row
    assert "T1 montage" in row


def test_timepoint_skips_image_entries_without_file(reviewer_client, session):
    scan = session.filled_scans[0]
    scan.qc_images = [{"title": "broken"}, "not a dict", {"file": "qc/x.png", "title": "ok"}]
    scan.save()
    response = reviewer_client.get(timepoint_url(session.timepoint.name))

    row = scan_row(response.text, scan)
    assert row.count("<figure") == 1
    assert "broken" not in row


def test_timepoint_conversion_error_badge(reviewer_client, session):
    scan = session.filled_scans[2]
    scan.conversion_errors = "missing images"
    scan.save()
    response = reviewer_client.get(timepoint_url(session.timepoint.name))

    assert "conversion error" in scan_row(response.text, scan)
    assert "conversion error" not in scan_row(response.text, session.filled_scans[0])


def test_timepoint_missing_scans_warning(reviewer_client, session):
    response = reviewer_client.get(timepoint_url(session.timepoint.name))

    assert "fewer scans than the study expects for DTI60-1000 (1 of 2)" in response.text
    assert [
        str(missing) for missing in response.context["timepoint"].session_list[0].missing_scans
    ] == ["DTI60-1000 (1 of 2)"]


def test_timepoint_phantom_held_to_phantom_count(reviewer_client, reviewer):
    study_site = make_study_site()
    phantom = SessionFactory(timepoint=PhantomTimepointFactory(study_site=study_site))
    ScanFactory(session=phantom, scantype=ScantypeFactory(tag="T1"))
    response = reviewer_client.get(timepoint_url(phantom.timepoint.name))

    missing = response.context["timepoint"].session_list[0].missing_scans
    assert [str(item) for item in missing] == ["DTI60-1000 (0 of 1)", "RST (0 of 1)"]


def test_timepoint_linked_scan_shows_source_state(reviewer_client, session, reviewer):
    source = ScanFactory()
    ScanReviewFactory(scan=source, state=QCState.BLACKLISTED, comment="artefact", reviewer=reviewer)
    linked = ScanFactory(session=session, source=source, series=12)
    response = reviewer_client.get(timepoint_url(session.timepoint.name))

    row = scan_row(response.text, linked)
    assert 'data-state="blacklisted"' in row
    assert f"Linked to {source.name}" in row


def test_timepoint_sign_off_button(reviewer_client, reviewer):
    timepoint = timepoint_with_sessions(2, reviewer)
    response = reviewer_client.get(timepoint_url(timepoint.name))

    first, second = timepoint.sessions.order_by("number")
    assert reverse("qc:session_sign_off", args=[first.name]) not in response.text
    assert reverse("qc:session_sign_off", args=[second.name]) in response.text


def test_timepoint_row_forms_have_unique_ids(reviewer_client, session):
    response = reviewer_client.get(timepoint_url(session.timepoint.name))

    # Three review forms, the session's dismiss-missing form, and the new-comment and
    # incidental-finding forms.
    ids = re.findall(r'<textarea[^>]* id="([^"]+)"', response.text)
    assert len(ids) == 6
    assert len(set(ids)) == 6


def test_timepoint_unknown_404(reviewer_client):
    assert reviewer_client.get(timepoint_url("SPN01_CMH_9999_01")).status_code == 404


def test_timepoint_header_mismatch_badge(reviewer_client, session):
    add_rst_standard(session.timepoint.study_site)
    response = reviewer_client.get(timepoint_url(session.timepoint.name))

    header = session_header(response.text, session)
    assert 'data-compliance="header-mismatch" data-count="1"' in header
    assert "1 header mismatch<" in header


def test_timepoint_conversion_error_count_badge(reviewer_client, session):
    for scan in session.filled_scans[:2]:
        scan.conversion_errors = "missing images"
        scan.save()
    response = reviewer_client.get(timepoint_url(session.timepoint.name))

    header = session_header(response.text, session)
    assert 'data-compliance="conversion-error" data-count="2"' in header
    assert "2 conversion errors<" in header


def test_timepoint_missing_scans_badge(reviewer_client, session):
    response = reviewer_client.get(timepoint_url(session.timepoint.name))

    header = session_header(response.text, session)
    assert 'data-compliance="missing-scans"' in header
    assert "missing: DTI60-1000 (1 of 2)" in header
    assert 'data-compliance="header-mismatch"' not in header
    assert 'data-compliance="conversion-error"' not in header


def test_timepoint_dismiss_form_for_reviewer(reviewer_client, session):
    response = reviewer_client.get(timepoint_url(session.timepoint.name))

    action = reverse("qc:compliance:dismiss_missing_scans", args=[session.name])
    assert f'action="{action}"' in response.text


def test_timepoint_no_dismiss_form_for_viewer(client, session):
    viewer = UserFactory(username="viewer")
    StudyMembership.objects.create(user=viewer, study=session.timepoint.study, role=Role.VIEWER)
    client.force_login(viewer)
    response = client.get(timepoint_url(session.timepoint.name))

    action = reverse("qc:compliance:dismiss_missing_scans", args=[session.name])
    assert response.status_code == 200
    assert "fewer scans than the study expects" in response.text
    assert f'action="{action}"' not in response.text


def test_timepoint_dismissed_missing_scans(reviewer_client, reviewer, session):
    dismiss_missing_scans(session, reviewer=reviewer, reason="The participant felt unwell.")
    response = reviewer_client.get(timepoint_url(session.timepoint.name))

    header = session_header(response.text, session)
    action = reverse("qc:compliance:dismiss_missing_scans", args=[session.name])
    assert 'data-compliance="missing-scans-dismissed"' in header
    assert "The participant felt unwell." in header
    assert "fewer scans than the study expects" not in response.text
    assert f'action="{action}"' not in response.text


@pytest.mark.parametrize("count", [1, 20])
def test_timepoint_query_count(reviewer_client, reviewer, django_assert_num_queries, count):
    timepoint = timepoint_with_sessions(count, reviewer)
    add_rst_standard(timepoint.study_site)
    first = timepoint.sessions.get(number=1)
    dismiss_missing_scans(first, reviewer=reviewer, reason="The participant felt unwell.")

    # 1 session, 2 user, 3 timepoint with study, the study's issue tracker (none here) and
    # site, 4 sessions with sign-off status, 5 scans with QC state, tag and source, 6 task
    # files. The compliance badges add 7 expected scans of the study site, 8 missing-scan
    # dismissals with reviewers, 9 header diff count per session and status. They count the
    # scans per tag from the scans already loaded. The REDCap panel adds 10 survey links with
    # records, 11 survey dismissals. The notes sections add 12 comments with authors,
    # 13 incidental findings the user may see, 14 history (one union); comment revisions and
    # finding notes are fetched only when there are comments or findings. 15 download jobs of
    # the sessions (their runs only when there are jobs), 16 the study's pipeline pages.
    with django_assert_num_queries(16):
        response = reviewer_client.get(timepoint_url(timepoint.name))

    assert response.status_code == 200
    sessions = response.context["timepoint"].session_list
    assert len(sessions) == count
    assert all(session.compliance.mismatch_count == 1 for session in sessions)
    assert sessions[0].compliance.expectations.is_dismissed
    assert all(session.redcap_panel.state == "none" for session in sessions)


def test_missing_survey_dismissable_by_ra_only(client, reviewer):
    timepoint = timepoint_with_sessions(1, reviewer)
    StudySite = type(timepoint.study_site)
    StudySite.objects.filter(pk=timepoint.study_site_id).update(uses_redcap=True)
    viewer = UserFactory(username="viewer")
    StudyMembership.objects.create(user=viewer, study=timepoint.study, role=Role.VIEWER)

    client.force_login(reviewer)
    as_ra = client.get(timepoint_url(timepoint.name)).content.decode()
    client.force_login(viewer)
    as_viewer = client.get(timepoint_url(timepoint.name)).content.decode()

    assert 'data-status="missing-survey"' in as_ra
    assert "Why no survey will come" in as_ra
    assert 'data-status="missing-survey"' in as_viewer
    assert "Why no survey will come" not in as_viewer
