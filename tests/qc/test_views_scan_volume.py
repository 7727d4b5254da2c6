"""The volume viewer part of the scan page: which NIfTI file it loads, or why it shows none."""

import pytest
from django.urls import reverse

from accounts.models import Role, StudyMembership
from qc.models import QCState
from tests.qc.factories import ScanReviewFactory
from tests.qc.scenarios import study_with_timepoints
from tests.studies.factories import ScanFactory, StudyFactory, UserFactory

pytestmark = pytest.mark.django_db


def scan_url(scan):
    return reverse("qc:scan_detail", args=[scan.name])


def nifti_path_of(scan, suffix=".nii.gz"):
    return f"data/nii/{scan.session.timepoint.name}/{scan.name}{suffix}"


def put_on_disk(scan, tmp_path, suffix=".nii.gz"):
    """Point the scan's study at tmp_path and write a file at the scan's nifti_path."""
    study = scan.session.timepoint.study
    study.archive_path = str(tmp_path / study.nickname)
    study.save(update_fields=["archive_path"])
    scan.nifti_path = nifti_path_of(scan, suffix)
    scan.save(update_fields=["nifti_path"])
    path = tmp_path / study.nickname / scan.nifti_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x1f\x8b not really a volume")
    return path


def file_url(study, relative_path):
    return reverse(
        "studies:archive_file", kwargs={"study": study.nickname, "relative_path": relative_path}
    )


def test_viewer_loads_nifti_through_archive_view(reviewer_client, tmp_path):
    scan = ScanFactory()
    put_on_disk(scan, tmp_path)
    response = reviewer_client.get(scan_url(scan))

    url = file_url(scan.session.timepoint.study, scan.nifti_path)
    assert response.context["volume"].url == url
    assert f'data-volume-url="{url}"' in response.text
    assert "vendor/niivue/niivue.umd.js" in response.text
    assert "qcdash/volume_viewer.js" in response.text
    assert 'data-viewer-control="frame"' in response.text
    assert 'data-status="volume-unavailable"' not in response.text


def test_viewer_accepts_plain_nii(reviewer_client, tmp_path):
    scan = ScanFactory()
    put_on_disk(scan, tmp_path, suffix=".NII")
    response = reviewer_client.get(scan_url(scan))

    assert response.context["volume"].url.endswith(".NII")


def test_viewer_no_nifti_recorded(reviewer_client):
    scan = ScanFactory(nifti_path="")
    response = reviewer_client.get(scan_url(scan))

    assert f"No NIfTI file is recorded for {scan.name}" in response.text
    assert 'data-status="volume-unavailable"' in response.text
    assert "data-volume-url" not in response.text
    assert "niivue.umd.js" not in response.text


def test_viewer_missing_file(reviewer_client, tmp_path):
    scan = ScanFactory()
    path = put_on_disk(scan, tmp_path)
    path.unlink()
    response = reviewer_client.get(scan_url(scan))

    study = scan.session.timepoint.study.nickname
    assert f"The NIfTI file {scan.nifti_path} is missing from the {study} archive" in response.text
    assert "data-volume-url" not in response.text


def test_viewer_unsupported_format(reviewer_client, tmp_path):
    scan = ScanFactory()
    put_on_disk(scan, tmp_path, suffix=".mnc")
    response = reviewer_client.get(scan_url(scan))

    assert f"{scan.nifti_path} is not a NIfTI file (.nii or .nii.gz)" in response.text
    assert "data-volume-url" not in response.text


def test_viewer_path_outside_archive(reviewer_client, tmp_path):
    scan = ScanFactory()
    put_on_disk(scan, tmp_path)
    (tmp_path / "outside.nii.gz").write_bytes(b"secret")
    scan.nifti_path = "../outside.nii.gz"
    scan.save(update_fields=["nifti_path"])
    response = reviewer_client.get(scan_url(scan))

    assert "is missing from the" in response.text
    assert "data-volume-url" not in response.text


def test_viewer_linked_scan_shows_source_file(reviewer_client, tmp_path):
    source = ScanFactory(session__timepoint__study_site__study=StudyFactory(nickname="SOURCE"))
    put_on_disk(source, tmp_path)
    linked = ScanFactory(source=source, nifti_path="")
    response = reviewer_client.get(scan_url(linked))

    assert response.context["volume"].url == file_url(
        source.session.timepoint.study, source.nifti_path
    )


def test_viewer_linked_scan_hidden_source(client, tmp_path):
    source = ScanFactory(session__timepoint__study_site__study=StudyFactory(nickname="SOURCE"))
    put_on_disk(source, tmp_path)
    linked = ScanFactory(source=source, nifti_path="")
    user = UserFactory()
    StudyMembership.objects.create(
        user=user, study=linked.session.timepoint.study, role=Role.QC_REVIEWER
    )
    client.force_login(user)
    response = client.get(scan_url(linked))

    assert response.status_code == 200
    assert response.context["volume"].url == ""
    assert f"No NIfTI file is recorded for {linked.name}" in response.text


def test_viewer_sits_above_qc_images(reviewer_client, tmp_path):
    scan = ScanFactory(qc_images=[{"file": "qc/T/a.png", "title": "Montage", "caption": ""}])
    put_on_disk(scan, tmp_path)
    text = reviewer_client.get(scan_url(scan)).text

    assert text.index('id="volume"') < text.index("qc-images")


@pytest.mark.parametrize("on_disk", [True, False])
@pytest.mark.parametrize("count", [1, 20])
def test_scan_page_with_viewer_query_count(
    reviewer_client, reviewer, django_assert_num_queries, tmp_path, count, on_disk
):
    scenario = study_with_timepoints(count, reviewer)
    scan = scenario.sessions[0].scans.order_by("series").first()
    if on_disk:
        put_on_disk(scan, tmp_path)
    for index in range(count):
        ScanReviewFactory(scan=scan, state=QCState.FLAGGED, comment=f"c{index}")

    # The viewer reads the file system only, so the count is the same with and without the
    # file: session, user, scan, current header diff, names of the timepoint's scans, review
    # history, history (one union), sidecar repairs, pipeline pages. With no header diff there
    # are no deviation resolutions to load.
    with django_assert_num_queries(9):
        response = reviewer_client.get(scan_url(scan))

    assert bool(response.context["volume"].url) is on_disk


def test_linked_scan_page_with_viewer_query_count(
    reviewer_client, django_assert_num_queries, tmp_path
):
    source = ScanFactory(session__timepoint__study_site__study=StudyFactory(nickname="SOURCE"))
    put_on_disk(source, tmp_path)
    linked = ScanFactory(source=source, nifti_path="")

    # One more than an unlinked scan: the check that the source is visible. The source's
    # study comes with the scan.
    with django_assert_num_queries(10):
        response = reviewer_client.get(scan_url(linked))

    assert response.context["volume"].url
