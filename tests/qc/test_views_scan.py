import pytest
from django.urls import reverse

from accounts.models import Role, StudyMembership
from qc.compliance_services import compute_header_diffs, resolve_deviation
from qc.models import HeaderDiff, QCState
from qc.services import review_scan, sign_off_session
from tests.qc.compliance_factories import GoldStandardFactory
from tests.qc.factories import ScanReviewFactory
from tests.qc.scenarios import study_with_timepoints
from tests.studies.factories import ScanFactory, ScantypeFactory, SessionFactory, UserFactory

pytestmark = pytest.mark.django_db


def scan_url(scan):
    return reverse("qc:scan_detail", args=[scan.name])


def mismatching_scan(scan=None):
    """Compare a scan (a new T1 by default) with a T1 gold standard of its site whose
    RepetitionTime differs, and return the scan's HeaderDiff."""
    scan = scan or ScanFactory()
    study_site = scan.session.timepoint.study_site
    GoldStandardFactory(
        study=study_site.study,
        site=study_site.site,
        scantype=ScantypeFactory(tag=scan.scantype.tag),
        sidecar={**scan.sidecar, "RepetitionTime": 2.0},
    )
    compute_header_diffs(study_site.study)
    return HeaderDiff.objects.current().get(scan=scan)


def test_scan_page_sidecar_table(reviewer_client):
    scan = ScanFactory(
        sidecar={
            "Manufacturer": "Siemens",
            "EchoTime": 0.03,
            "ImageType": ["ORIGINAL", "PRIMARY"],
            "SliceTiming": [index * 0.05 for index in range(60)],
            "NonlinearGradientCorrection": False,
        }
    )
    response = reviewer_client.get(scan_url(scan))

    assert response.status_code == 200
    rows = {row.key: row for row in response.context["sidecar_rows"]}
    assert list(rows) == [
        "EchoTime",
        "ImageType",
        "Manufacturer",
        "NonlinearGradientCorrection",
        "SliceTiming",
    ]
    assert rows["ImageType"].text == "ORIGINAL, PRIMARY"
    assert rows["ImageType"].item_count == 0
    assert rows["SliceTiming"].item_count == 60
    assert rows["SliceTiming"].preview == "0.0, 0.05, 0.1, 0.15000000000000002, 0.2, 0.25"
    assert rows["NonlinearGradientCorrection"].text == "false"
    assert "60 values: 0.0, 0.05" in response.text


def test_scan_page_sidecar_error(reviewer_client):
    scan = ScanFactory(sidecar=None, sidecar_error="Expecting value: line 1 column 1 (char 0)")
    response = reviewer_client.get(scan_url(scan))

    assert "The sidecar could not be read: Expecting value: line 1 column 1" in response.text
    assert response.context["sidecar_rows"] == []


def test_scan_page_no_sidecar(reviewer_client):
    response = reviewer_client.get(scan_url(ScanFactory(sidecar=None)))

    assert "No sidecar recorded for this scan." in response.text


def test_scan_page_conversion_errors(reviewer_client):
    scan = ScanFactory(conversion_errors="Warning: missing images\n<slice 12>")
    response = reviewer_client.get(scan_url(scan))

    assert "Warning: missing images\n&lt;slice 12&gt;</pre>" in response.text


def test_scan_page_history_newest_first(reviewer_client, reviewer, other_reviewer):
    session = SessionFactory()
    scan = ScanFactory(session=session)
    review_scan(scan, reviewer=reviewer, state=QCState.FLAGGED, comment="ghosting")
    review_scan(scan, reviewer=other_reviewer, state=QCState.NEW, comment="")
    sign_off_session(session, reviewer=reviewer, approve_scan_ids=[scan.pk])
    response = reviewer_client.get(scan_url(scan))

    reviews = list(response.context["reviews"])
    assert [review.state for review in reviews] == ["approved", "new", "flagged"]
    assert reviews[0].sign_off is not None
    assert response.text.count("approved at sign-off") == 1
    assert "ghosting" in response.text
    assert 'data-state="approved"' in response.text


def test_scan_page_linked_scan_shows_source(reviewer_client, reviewer):
    source = ScanFactory()
    ScanReviewFactory(scan=source, state=QCState.FLAGGED, comment="from source", reviewer=reviewer)
    linked = ScanFactory(source=source)
    response = reviewer_client.get(scan_url(linked))

    assert f'href="{scan_url(source)}"' in response.text
    assert f"The reviews shown are those of {source.name}" in response.text
    assert "from source" in response.text
    assert [review.comment for review in response.context["reviews"]] == ["from source"]


def test_scan_page_qc_images(reviewer_client):
    scan = ScanFactory(
        qc_images=[{"file": "qc/T/a.png", "title": "Montage", "caption": "Axial slices"}]
    )
    response = reviewer_client.get(scan_url(scan))

    study = scan.session.timepoint.study.nickname
    url = reverse("studies:archive_file", kwargs={"study": study, "relative_path": "qc/T/a.png"})
    assert f'src="{url}"' in response.text
    assert "Axial slices" in response.text


def test_scan_page_review_form_posts_back_here(reviewer_client):
    scan = ScanFactory()
    response = reviewer_client.get(scan_url(scan))

    assert f'action="{reverse("qc:scan_review", args=[scan.name])}"' in response.text
    assert f'name="next" value="{scan_url(scan)}"' in response.text


def test_scan_page_unknown_404(reviewer_client):
    response = reviewer_client.get(reverse("qc:scan_detail", args=["SPN01_CMH_0001_01_01_T1_02"]))

    assert response.status_code == 404


def test_scan_page_diff_table_with_resolve_form(reviewer_client):
    diff = mismatching_scan()
    response = reviewer_client.get(scan_url(diff.scan))

    action = reverse("qc:compliance:resolve_deviation", args=[diff.scan.name])
    assert 'data-status="mismatch"' in response.text
    assert 'data-field="RepetitionTime"' in response.text
    assert f'action="{action}"' in response.text
    assert f'name="header_diff" value="{diff.pk}"' in response.text


def test_scan_page_diff_table_read_only_for_viewer(client):
    diff = mismatching_scan()
    viewer = UserFactory(username="viewer")
    StudyMembership.objects.create(
        user=viewer, study=diff.scan.session.timepoint.study, role=Role.VIEWER
    )
    client.force_login(viewer)
    response = client.get(scan_url(diff.scan))

    action = reverse("qc:compliance:resolve_deviation", args=[diff.scan.name])
    assert 'data-field="RepetitionTime"' in response.text
    assert f'action="{action}"' not in response.text


def test_scan_page_shows_resolution(reviewer_client, reviewer):
    diff = mismatching_scan()
    resolve_deviation(
        diff.scan,
        reviewer=reviewer,
        header_diff_id=diff.pk,
        field_name="RepetitionTime",
        decision="accepted",
        reason="Shorter TR approved by the PI.",
    )
    response = reviewer_client.get(scan_url(diff.scan))

    assert 'data-resolution="accepted"' in response.text
    assert "Shorter TR approved by the PI." in response.text


def test_scan_page_not_compared(reviewer_client):
    response = reviewer_client.get(scan_url(ScanFactory()))

    assert 'data-status="not_compared"' in response.text


@pytest.mark.parametrize("count", [1, 20])
def test_scan_page_query_count(reviewer_client, reviewer, django_assert_num_queries, count):
    scenario = study_with_timepoints(count, reviewer)
    scan = scenario.sessions[0].scans.order_by("series").first()
    diff = mismatching_scan(scan)
    for index in range(count):
        author = UserFactory()
        ScanReviewFactory(scan=scan, state=QCState.FLAGGED, comment=f"c{index}", reviewer=author)
        resolve_deviation(
            scan,
            reviewer=author,
            header_diff_id=diff.pk,
            field_name="RepetitionTime",
            decision="violation",
        )

    # 1 session, 2 user, 3 scan with QC state, tag, session, timepoint, study, site and source,
    # 4 current header diff with its gold standard, 5 deviation resolutions with reviewers,
    # 6 names of the timepoint's scans (previous and next links), 7 review history with
    # reviewers, 8 history (one union), 9 sidecar repairs with reviewers, 10 the study's
    # pipeline pages.
    with django_assert_num_queries(10):
        response = reviewer_client.get(scan_url(scan))

    assert response.status_code == 200
    assert len(response.context["reviews"]) == count + 1
    assert len(response.context["scan"].header_diff.table_rows) == 1
