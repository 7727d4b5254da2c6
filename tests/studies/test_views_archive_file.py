from urllib.parse import unquote

import pytest
from django.urls import resolve, reverse

from tests.studies.factories import StudyFactory

pytestmark = pytest.mark.django_db

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


@pytest.fixture
def archive(tmp_path):
    """A study archive with one QC image, and a secret file beside (outside) the archive."""
    root = tmp_path / "SPINS"
    (root / "qc" / "SPN01_CMH_0001_01").mkdir(parents=True)
    (root / "qc" / "SPN01_CMH_0001_01" / "T1.png").write_bytes(PNG_BYTES)
    (tmp_path / "secret.txt").write_text("not for the browser")
    StudyFactory(nickname="SPINS", archive_path=str(root))
    return root


def file_url(relative_path, study="SPINS"):
    return reverse("studies:archive_file", kwargs={"study": study, "relative_path": relative_path})


def test_archive_file_serves_qc_image(reviewer_client, archive):
    response = reviewer_client.get(file_url("qc/SPN01_CMH_0001_01/T1.png"))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == PNG_BYTES


@pytest.mark.parametrize(
    "path",
    [
        "../secret.txt",
        "qc/../../secret.txt",
        "qc/SPN01_CMH_0001_01/../../../secret.txt",
        "%2e%2e/secret.txt",
    ],
)
def test_archive_file_traversal_404(reviewer_client, archive, path):
    url = f"/files/SPINS/{path}"
    # The URL reaches the view, so the 404 comes from its containment check.
    assert resolve(unquote(url)).url_name == "archive_file"
    response = reviewer_client.get(url)

    assert response.status_code == 404
    assert b"not for the browser" not in response.content


@pytest.mark.parametrize("absolute", [True, False])
def test_archive_file_symlink_outside_404(reviewer_client, archive, absolute):
    target = archive.parent / "secret.txt"
    link = archive / "qc" / "SPN01_CMH_0001_01" / "leak.png"
    link.symlink_to(target if absolute else "../../../secret.txt")
    response = reviewer_client.get(file_url("qc/SPN01_CMH_0001_01/leak.png"))

    assert response.status_code == 404


def test_archive_file_symlink_inside_served(reviewer_client, archive):
    link = archive / "qc" / "alias.png"
    link.symlink_to(archive / "qc" / "SPN01_CMH_0001_01" / "T1.png")
    response = reviewer_client.get(file_url("qc/alias.png"))

    assert response.status_code == 200


@pytest.mark.parametrize("path", ["qc/missing.png", "qc", ""])
def test_archive_file_missing_or_folder_404(reviewer_client, archive, path):
    response = reviewer_client.get(f"/files/SPINS/{path}")

    assert response.status_code == 404


def test_archive_file_unknown_study_404(reviewer_client, archive):
    assert reviewer_client.get(file_url("qc/SPN01_CMH_0001_01/T1.png", "NOPE")).status_code == 404


def test_archive_file_handed_to_nginx(reviewer_client, archive, settings):
    settings.ARCHIVE_ROOT = archive.parent
    settings.ARCHIVE_ACCEL_REDIRECT_PREFIX = "/protected-archive/"

    response = reviewer_client.get(file_url("qc/SPN01_CMH_0001_01/T1.png"))

    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == "/protected-archive/SPINS/qc/SPN01_CMH_0001_01/T1.png"
    assert response["Content-Type"] == "image/png"
    assert response.content == b""


def test_archive_outside_root_not_handed_to_nginx(reviewer_client, archive, settings, tmp_path):
    settings.ARCHIVE_ROOT = tmp_path / "elsewhere"
    settings.ARCHIVE_ACCEL_REDIRECT_PREFIX = "/protected-archive/"

    response = reviewer_client.get(file_url("qc/SPN01_CMH_0001_01/T1.png"))

    assert response.status_code == 200
    assert not response.has_header("X-Accel-Redirect")
    assert b"".join(response.streaming_content) == PNG_BYTES


def test_denied_file_never_handed_to_nginx(reviewer_client, archive, settings):
    settings.ARCHIVE_ROOT = archive.parent
    settings.ARCHIVE_ACCEL_REDIRECT_PREFIX = "/protected-archive/"

    response = reviewer_client.get(file_url("../secret.txt"))

    assert response.status_code == 404
    assert not response.has_header("X-Accel-Redirect")


@pytest.fixture
def cmh_only_client(client, archive):
    from accounts.models import Role, StudyMembership
    from studies.models import Study
    from tests.studies.factories import SiteFactory, StudySiteFactory, UserFactory

    study = Study.objects.get(nickname="SPINS")
    cmh = SiteFactory(name="CMH")
    StudySiteFactory(study=study, site=cmh, code="SPN01")
    StudySiteFactory(study=study, site=SiteFactory(name="ZHH"), code="SPN01")
    (archive / "metadata").mkdir()
    (archive / "metadata" / "checklist.csv").write_text("SPN01_ZHH_0002_01 bad motion\n")
    user = UserFactory(username="cmh-only")
    StudyMembership.objects.create(user=user, study=study, site=cmh, role=Role.QC_REVIEWER)
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "path",
    [
        "metadata/checklist.csv",
        "qc/SPN01_CMH_0001_01/../../metadata/checklist.csv",
        "qc/SPN01_CMH_0001_01/..%2f..%2fmetadata/checklist.csv",
        "qc/SPN01_CMH_0001_01/%2e%2e/%2e%2e/metadata/checklist.csv",
    ],
)
def test_site_member_cannot_climb_to_study_files(cmh_only_client, path):
    response = cmh_only_client.get(f"/files/SPINS/{path}")
    assert response.status_code == 404


def test_site_member_gets_own_site_file(cmh_only_client):
    response = cmh_only_client.get(file_url("qc/SPN01_CMH_0001_01/T1.png"))
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["%00", "qc/SPN01_CMH_0001_01/a%00b.png"])
def test_nul_byte_in_path_404(reviewer_client, archive, path):
    assert reviewer_client.get(f"/files/SPINS/{path}").status_code == 404
