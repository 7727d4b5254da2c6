from urllib.parse import unquote

import pytest
from django.urls import resolve, reverse
from django.utils import timezone

from studies.views import html_policy
from tests.studies.factories import StudyFactory

pytestmark = pytest.mark.django_db

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
# The session, user and study lookups of a file request by `reviewer_client`.
QUERIES_WITHOUT_IDS = 3


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


# --- Byte ranges, HEAD and validators --------------------------------------------------------

NIFTI_PATH = "data/nii/SPN01_CMH_0001_01/SPN01_CMH_0001_01_01_T1_02.nii.gz"
NIFTI_BYTES = bytes(range(256)) * 4


@pytest.fixture
def nifti(archive):
    path = archive / NIFTI_PATH
    path.parent.mkdir(parents=True)
    path.write_bytes(NIFTI_BYTES)
    return path


def body(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_full_nifti_advertises_ranges(reviewer_client, nifti):
    response = reviewer_client.get(file_url(NIFTI_PATH))

    assert response.status_code == 200
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Length"] == "1024"
    assert response["Content-Type"] == "application/gzip"
    assert not response.has_header("Content-Encoding")
    assert response["Cache-Control"] == "private"
    assert body(response) == NIFTI_BYTES


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-351", 0, 351),
        ("bytes=1000-", 1000, 1023),
        ("bytes=-24", 1000, 1023),
        ("bytes=-99999", 0, 1023),
        ("bytes=1020-99999999999999999999999999", 1020, 1023),
    ],
)
def test_single_range_206(reviewer_client, nifti, header, first, last):
    response = reviewer_client.get(file_url(NIFTI_PATH), HTTP_RANGE=header)

    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {first}-{last}/1024"
    assert response["Content-Length"] == str(last - first + 1)
    assert response["Content-Type"] == "application/gzip"
    assert body(response) == NIFTI_BYTES[first : last + 1]


@pytest.mark.parametrize(
    "header",
    ["bytes=1024-", "bytes=5000-6000", "bytes=-0", "bytes=" + "9" * 5000 + "-"],
)
def test_unsatisfiable_range_416(reviewer_client, nifti, header):
    response = reviewer_client.get(file_url(NIFTI_PATH), HTTP_RANGE=header)

    assert response.status_code == 416
    assert response["Content-Range"] == "bytes */1024"
    assert "1024-byte file" in response.content.decode()


@pytest.mark.parametrize(
    "header",
    ["bytes=0-1,4-5", "bytes=9-3", "bytes=abc", "lines=1-2", "bytes=-", "bytes=0-" + "x" * 50],
)
def test_malformed_or_multi_range_full_200(reviewer_client, nifti, header):
    response = reviewer_client.get(file_url(NIFTI_PATH), HTTP_RANGE=header)

    assert response.status_code == 200
    assert not response.has_header("Content-Range")
    assert body(response) == NIFTI_BYTES


def test_head_sends_headers_only(reviewer_client, nifti):
    response = reviewer_client.head(file_url(NIFTI_PATH))

    assert response.status_code == 200
    assert response["Content-Length"] == "1024"
    assert response["Accept-Ranges"] == "bytes"
    # The view opens no file for HEAD; the test client would drop a body anyway.
    assert not response.streaming
    assert response.content == b""


def test_head_with_range(reviewer_client, nifti):
    response = reviewer_client.head(file_url(NIFTI_PATH), HTTP_RANGE="bytes=0-9")

    assert response.status_code == 206
    assert response["Content-Range"] == "bytes 0-9/1024"
    assert response["Content-Length"] == "10"
    assert response.content == b""


def test_etag_not_modified_304(reviewer_client, nifti):
    first = reviewer_client.get(file_url(NIFTI_PATH))
    etag = first["ETag"]
    assert etag.startswith('"')
    assert first.has_header("Last-Modified")

    again = reviewer_client.get(file_url(NIFTI_PATH), HTTP_IF_NONE_MATCH=etag)

    assert again.status_code == 304
    assert again.content == b""


def test_if_modified_since_304(reviewer_client, nifti):
    last_modified = reviewer_client.get(file_url(NIFTI_PATH))["Last-Modified"]
    response = reviewer_client.get(file_url(NIFTI_PATH), HTTP_IF_MODIFIED_SINCE=last_modified)

    assert response.status_code == 304


def test_if_range_matching_etag_206(reviewer_client, nifti):
    etag = reviewer_client.get(file_url(NIFTI_PATH))["ETag"]
    response = reviewer_client.get(file_url(NIFTI_PATH), HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=etag)

    assert response.status_code == 206
    assert body(response) == NIFTI_BYTES[:10]


@pytest.mark.parametrize(
    "if_range", ['"stale-tag"', 'W/"weak"', "Thu, 01 Jan 1970 00:00:00 GMT", "not a date"]
)
def test_if_range_stale_full_200(reviewer_client, nifti, if_range):
    response = reviewer_client.get(
        file_url(NIFTI_PATH), HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=if_range
    )

    assert response.status_code == 200
    assert body(response) == NIFTI_BYTES


def test_if_range_matching_date_206(reviewer_client, nifti):
    last_modified = reviewer_client.get(file_url(NIFTI_PATH))["Last-Modified"]
    response = reviewer_client.get(
        file_url(NIFTI_PATH), HTTP_RANGE="bytes=10-19", HTTP_IF_RANGE=last_modified
    )

    assert response.status_code == 206
    assert body(response) == NIFTI_BYTES[10:20]


def test_etag_changes_when_file_rewritten(reviewer_client, nifti):
    before = reviewer_client.get(file_url(NIFTI_PATH))["ETag"]
    nifti.write_bytes(NIFTI_BYTES + b"more")

    assert reviewer_client.get(file_url(NIFTI_PATH))["ETag"] != before


def test_empty_file_range_416(reviewer_client, archive):
    (archive / "qc" / "empty.png").write_bytes(b"")
    response = reviewer_client.get(file_url("qc/empty.png"), HTTP_RANGE="bytes=0-")

    assert response.status_code == 416
    assert response["Content-Range"] == "bytes */0"


def test_post_not_allowed(reviewer_client, nifti):
    response = reviewer_client.post(file_url(NIFTI_PATH))

    assert response.status_code == 405


def test_site_member_range_other_site_404(cmh_only_client, archive):
    other = archive / "data/nii/SPN01_ZHH_0002_01/SPN01_ZHH_0002_01_01_T1_02.nii.gz"
    other.parent.mkdir(parents=True)
    other.write_bytes(NIFTI_BYTES)
    url = file_url("data/nii/SPN01_ZHH_0002_01/SPN01_ZHH_0002_01_01_T1_02.nii.gz")

    assert cmh_only_client.get(url, HTTP_RANGE="bytes=0-9").status_code == 404
    assert cmh_only_client.head(url).status_code == 404


def test_site_member_range_own_site_206(cmh_only_client, nifti):
    response = cmh_only_client.get(file_url(NIFTI_PATH), HTTP_RANGE="bytes=-4")

    assert response.status_code == 206
    assert body(response) == NIFTI_BYTES[-4:]


def test_anonymous_range_redirects_to_login(client, nifti):
    response = client.get(file_url(NIFTI_PATH), HTTP_RANGE="bytes=0-9")

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_range_handed_to_nginx_unchanged(reviewer_client, nifti, settings):
    settings.ARCHIVE_ROOT = nifti.parents[4]
    settings.ARCHIVE_ACCEL_REDIRECT_PREFIX = "/protected-archive/"

    response = reviewer_client.get(file_url(NIFTI_PATH), HTTP_RANGE="bytes=0-9")

    # nginx handles the Range header itself when it sends the file.
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == f"/protected-archive/SPINS/{NIFTI_PATH}"
    assert response["Content-Type"] == "application/gzip"
    assert response.content == b""


# --- Dot segments, sandbox policy by type and archive scripts --------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "qc/./SPN01_CMH_0001_01/T1.png",
        "qc//SPN01_CMH_0001_01/T1.png",
        "qc/SPN01_CMH_0001_01/../SPN01_CMH_0001_01/T1.png",
        "qc/%2e/SPN01_CMH_0001_01/T1.png",
        "qc/SPN01_CMH_0001_01/%2E%2E/SPN01_CMH_0001_01/T1.png",
        "qc/SPN01_CMH_0001_01/.%2e/SPN01_CMH_0001_01/T1.png",
        "qc/SPN01_CMH_0001_01/..%2fSPN01_CMH_0001_01/T1.png",
        "./qc/SPN01_CMH_0001_01/T1.png",
    ],
)
def test_dot_segments_404_even_for_existing_file(reviewer_client, archive, path):
    url = f"/files/SPINS/{path}"
    assert resolve(unquote(url)).url_name == "archive_file"

    response = reviewer_client.get(url)

    assert response.status_code == 404


def test_site_member_symlink_dot_dot_404(cmh_only_client, archive):
    """`<CMH ID>/link/..` names a CMH folder, but the file system resolves it to a ZHH one."""
    zhh = archive / "pipelines" / "SPN01_ZHH_0002_01"
    (zhh / "sub").mkdir(parents=True)
    (zhh / "report.txt").write_text("ZHH report")
    cmh = archive / "pipelines" / "SPN01_CMH_0001_01"
    cmh.mkdir()
    (cmh / "lnk").symlink_to("../SPN01_ZHH_0002_01/sub")

    for path in [
        "pipelines/SPN01_CMH_0001_01/lnk/../report.txt",
        "pipelines/SPN01_CMH_0001_01/lnk/%2e%2e/report.txt",
    ]:
        response = cmh_only_client.get(f"/files/SPINS/{path}")
        assert response.status_code == 404, path
        assert b"ZHH report" not in response.content


SANDBOXED_FILES = [
    "report.html",
    "page.xhtml",
    "figure.svg",
    "data.xml",
    "style.xsl",
    "style.xslt",
    "graph.rdf",
    "formula.mml",
    "table.tsv",
    "style.css",
    "unknown.htm",
]
UNSANDBOXED_FILES = [
    ("T1.png", "image/png"),
    ("T1.jpg", "image/jpeg"),
    ("motion.gif", "image/gif"),
    ("T1.webp", "image/webp"),
    ("summary.pdf", "application/pdf"),
    ("log.txt", "text/plain"),
    ("table.csv", "text/csv"),
    ("scan.json", "application/json"),
    ("scan.nii.gz", "application/gzip"),
    ("scan.nii", "application/octet-stream"),
    ("viewer.js", "text/plain"),
    ("module.mjs", "text/plain"),
]


@pytest.fixture
def typed_files(archive):
    folder = archive / "qc" / "SPN01_CMH_0001_01"
    for name in SANDBOXED_FILES + [name for name, _ in UNSANDBOXED_FILES]:
        (folder / name).write_bytes(b"window.ranArchiveScript = true;\n")
    return folder


@pytest.mark.parametrize("name", SANDBOXED_FILES)
def test_document_types_sandboxed(reviewer_client, typed_files, name):
    response = reviewer_client.get(file_url(f"qc/SPN01_CMH_0001_01/{name}"))

    assert response.status_code == 200
    assert response["Content-Security-Policy"] == html_policy(allow_scripts=False)
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(("name", "content_type"), UNSANDBOXED_FILES)
def test_inert_types_not_sandboxed(reviewer_client, typed_files, name, content_type):
    response = reviewer_client.get(file_url(f"qc/SPN01_CMH_0001_01/{name}"))

    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    # The site-wide policy of django-csp applies instead.
    assert not response["Content-Security-Policy"].startswith("sandbox")
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("name", "content_type", "sandboxed"),
    [
        ("data.xml", "application/xml", True),
        ("viewer.js", "text/plain", False),
        ("T1.png", "image/png", False),
    ],
)
def test_nginx_handover_keeps_type_and_policy(
    reviewer_client, typed_files, settings, name, content_type, sandboxed
):
    settings.ARCHIVE_ROOT = typed_files.parents[2]
    settings.ARCHIVE_ACCEL_REDIRECT_PREFIX = "/protected-archive/"

    response = reviewer_client.get(file_url(f"qc/SPN01_CMH_0001_01/{name}"))

    assert response.has_header("X-Accel-Redirect")
    assert response["Content-Type"] == content_type
    policy = response["Content-Security-Policy"]
    assert (policy == html_policy(allow_scripts=False)) is sandboxed
    assert response["X-Content-Type-Options"] == "nosniff"


# --- Files of hidden timepoints, sessions and scans ------------------------------------------

SCAN_PNG = "qc/SPN01_CMH_0001_01/SPN01_CMH_0001_01_01_T1_02_SagT1Bravo.png"
OTHER_SCAN_PNG = "qc/SPN01_CMH_0001_01/SPN01_CMH_0001_01_01_RST_03_Rest.png"
SESSION_FILE = "data/nii/SPN01_CMH_0001_01_01/notes.txt"
TIMEPOINT_FILE = "qc/SPN01_CMH_0001_01/index.html"


@pytest.fixture
def records(archive):
    """A shown timepoint with one session and two scans, and a file for each in the archive."""
    from studies.models import Study
    from tests.studies.factories import (
        ScanFactory,
        ScantypeFactory,
        SessionFactory,
        StudySiteFactory,
        TimepointFactory,
    )

    study_site = StudySiteFactory(
        study=Study.objects.get(nickname="SPINS"), code="SPN01", site__name="CMH"
    )
    timepoint = TimepointFactory(study_site=study_site, name="SPN01_CMH_0001_01")
    session = SessionFactory(timepoint=timepoint, number=1)
    scan = ScanFactory(session=session, scantype=ScantypeFactory(tag="T1"), series=2)
    ScanFactory(session=session, scantype=ScantypeFactory(tag="RST"), series=3)
    for path in (SCAN_PNG, OTHER_SCAN_PNG, SESSION_FILE, TIMEPOINT_FILE):
        (archive / path).parent.mkdir(parents=True, exist_ok=True)
        (archive / path).write_bytes(PNG_BYTES)
    return timepoint, session, scan


def hide(record):
    record.deleted_at = timezone.now()
    record.save(update_fields=["deleted_at"])


@pytest.mark.parametrize(
    ("hidden", "expected"),
    [
        (None, {SCAN_PNG: 200, OTHER_SCAN_PNG: 200, SESSION_FILE: 200, TIMEPOINT_FILE: 200}),
        ("scan", {SCAN_PNG: 404, OTHER_SCAN_PNG: 200, SESSION_FILE: 200, TIMEPOINT_FILE: 200}),
        ("session", {SCAN_PNG: 404, OTHER_SCAN_PNG: 404, SESSION_FILE: 404, TIMEPOINT_FILE: 200}),
        (
            "timepoint",
            {SCAN_PNG: 404, OTHER_SCAN_PNG: 404, SESSION_FILE: 404, TIMEPOINT_FILE: 404},
        ),
    ],
)
def test_hidden_record_files_404(reviewer_client, records, hidden, expected):
    timepoint, session, scan = records
    if hidden:
        hide({"timepoint": timepoint, "session": session, "scan": scan}[hidden])

    statuses = {path: reviewer_client.get(file_url(path)).status_code for path in expected}

    assert statuses == expected


def test_hidden_check_one_query(reviewer_client, records, django_assert_num_queries):
    # Without a datman ID in the path, the view runs no query for hidden records.
    (records[0].study.archive_root / "README.txt").write_text("study notes")
    with django_assert_num_queries(QUERIES_WITHOUT_IDS):
        assert reviewer_client.get(file_url("README.txt")).status_code == 200
    with django_assert_num_queries(QUERIES_WITHOUT_IDS + 1):
        assert reviewer_client.get(file_url(SCAN_PNG)).status_code == 200
