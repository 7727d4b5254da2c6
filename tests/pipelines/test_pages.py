"""Pipeline pages: template validation, links on the reviewer pages and sandboxed reports."""

from urllib.parse import unquote

import pytest
from django.core.exceptions import ValidationError
from django.urls import resolve, reverse
from django.utils import timezone

from pipelines.models import (
    CommandKind,
    DownloadJob,
    DownloadRun,
    PageScope,
    PipelinePage,
)
from studies.views import html_policy
from tests.pipelines.conftest import SESSION
from tests.studies.factories import ScanFactory, SessionFactory, TimepointFactory

pytestmark = pytest.mark.django_db

TIMEPOINT = "SPN01_CMH_0001_01"


@pytest.fixture
def session(study_site):
    timepoint = TimepointFactory(study_site=study_site, name=TIMEPOINT)
    return SessionFactory(timepoint=timepoint, number=1)


@pytest.fixture
def scan(session):
    return ScanFactory(session=session)


def page(study, **values):
    values.setdefault("name", "MRIQC")
    values.setdefault("scope", PageScope.TIMEPOINT)
    return PipelinePage(study=study, **values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"url_template": "ftp://host/{timepoint}"}, "must start with http:// or https://"),
        ({"url_template": "javascript:alert(1)"}, "must start with http:// or https://"),
        ({"url_template": "https:///{timepoint}"}, "name a host"),
        ({"url_template": "https://h/{scan}"}, "cannot use {scan}"),
        ({"url_template": "https://h/{timepoint.upper}"}, "is invalid"),
        ({"url_template": "https://h/{timepoint!r}"}, "is invalid"),
        ({"url_template": "https://h/{}"}, "is invalid"),
        ({"url_template": "https://h/{timepoint"}, "unbalanced braces"),
        ({"path_template": "/etc/{timepoint}.html"}, "relative to the study archive"),
        ({"path_template": "reports/../../{timepoint}"}, "must not contain . or .."),
        ({"path_template": "reports\\{timepoint}"}, "forward slashes"),
        ({}, "either a URL template or an archive path template"),
        (
            {"url_template": "https://h/", "path_template": "r/{timepoint}"},
            "either a URL template or an archive path template",
        ),
    ],
)
def test_page_template_rejected(study_site, values, message):
    with pytest.raises(ValidationError) as error:
        page(study_site.study, **values).full_clean()

    assert message in str(error.value)


@pytest.mark.parametrize(
    ("scope", "values"),
    [
        (PageScope.STUDY, {"url_template": "https://reports.example.org/{study}/"}),
        (PageScope.SCAN, {"path_template": "mriqc/{session}/{scan}.html"}),
        (PageScope.SESSION, {"url_template": "https://h/{timepoint}?s={session}"}),
    ],
)
def test_page_template_accepted(study_site, scope, values):
    page(study_site.study, scope=scope, **values).full_clean()


def test_timepoint_page_links(reviewer_client, study_site, session):
    study = study_site.study
    report = study.archive_root / "pipelines" / "mriqc" / f"sub-{TIMEPOINT}.html"
    report.parent.mkdir(parents=True)
    report.write_text("<html><body>report</body></html>")
    page(study, path_template="pipelines/mriqc/sub-{timepoint}.html").save()
    page(study, name="Missing", path_template="pipelines/none/{timepoint}.html").save()
    page(study, name="XNAT", url_template="https://xnat.example.org/data/{timepoint}").save()
    page(study, name="fMRIPrep", scope=PageScope.SESSION, path_template="fmriprep/{session}").save()

    response = reviewer_client.get(reverse("qc:timepoint_detail", args=[TIMEPOINT]))

    text = response.content.decode()
    archive_url = reverse(
        "studies:archive_file", args=["SPINS", f"pipelines/mriqc/sub-{TIMEPOINT}.html"]
    )
    assert f'href="{archive_url}"' in text
    assert 'href="https://xnat.example.org/data/SPN01_CMH_0001_01"' in text
    assert 'data-reason="No report at pipelines/none/SPN01_CMH_0001_01.html in the archive' in text
    assert f'data-reason="No report at fmriprep/{SESSION} in the archive yet."' in text


def test_folder_report_opens_index(reviewer_client, study_site, session):
    study = study_site.study
    folder = study.archive_root / "fmriprep" / SESSION
    folder.mkdir(parents=True)
    (folder / "index.html").write_text("<html></html>")
    page(study, name="fMRIPrep", scope=PageScope.SESSION, path_template="fmriprep/{session}").save()

    response = reviewer_client.get(reverse("qc:timepoint_detail", args=[TIMEPOINT]))

    url = reverse("studies:archive_file", args=["SPINS", f"fmriprep/{SESSION}/index.html"])
    assert f'href="{url}"' in response.content.decode()


def test_study_and_scan_page_links(reviewer_client, study_site, scan):
    study = study_site.study
    page(study, name="Dashboard", scope=PageScope.STUDY, url_template="https://h/{study}").save()
    page(study, name="Scan QC", scope=PageScope.SCAN, url_template="https://h/{scan}").save()

    study_page = reviewer_client.get(reverse("qc:study_detail", args=["SPINS"]))
    scan_page = reviewer_client.get(reverse("qc:scan_detail", args=[scan.name]))

    assert 'href="https://h/SPINS"' in study_page.content.decode()
    assert f'href="https://h/{scan.name}"' in scan_page.content.decode()
    assert "https://h/SPINS" not in scan_page.content.decode()


def test_no_pages_no_links(reviewer_client, session):
    response = reviewer_client.get(reverse("qc:timepoint_detail", args=[TIMEPOINT]))

    assert "pipeline-links" not in response.content.decode()


def test_archive_html_sandboxed(reviewer_client, study_site):
    report = study_site.study.archive_root / "reports" / "a.html"
    report.parent.mkdir(parents=True)
    report.write_text("<script>alert(1)</script>")

    url = reverse("studies:archive_file", args=["SPINS", "reports/a.html"])
    response = reviewer_client.get(url)

    policy = response["Content-Security-Policy"]
    assert policy.startswith("sandbox allow-same-origin;")
    assert "allow-scripts" not in policy
    assert "script-src 'none'" in policy
    assert response["X-Content-Type-Options"] == "nosniff"


def test_report_view_allows_scripts(reviewer_client, study_site, session):
    study = study_site.study
    report = study.archive_root / "reports" / f"{TIMEPOINT}.html"
    report.parent.mkdir(parents=True)
    report.write_text("<script>draw()</script>")
    scripted = page(study, path_template="reports/{timepoint}.html", allow_scripts=True)
    scripted.save()

    tp_page = reviewer_client.get(reverse("qc:timepoint_detail", args=[TIMEPOINT]))
    url = reverse("pipelines:report", args=[scripted.pk, f"reports/{TIMEPOINT}.html"])
    response = reviewer_client.get(url)

    assert f'href="{url}"' in tp_page.content.decode()
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == html_policy(allow_scripts=True)
    assert response["Content-Security-Policy"].startswith("sandbox allow-scripts;")


def test_report_view_404_without_allow_scripts(reviewer_client, study_site):
    report = study_site.study.archive_root / "r.html"
    report.write_text("<html></html>")
    plain = page(study_site.study, path_template="r.html")
    plain.save()

    response = reviewer_client.get(reverse("pipelines:report", args=[plain.pk, "r.html"]))

    assert response.status_code == 404


def test_report_view_stays_in_archive(reviewer_client, study_site, tmp_path):
    (tmp_path / "secret.html").write_text("secret")
    scripted = page(study_site.study, path_template="r.html", allow_scripts=True)
    scripted.save()

    url = reverse("pipelines:report", args=[scripted.pk, "../secret.html"])
    response = reviewer_client.get(url)

    assert response.status_code == 404


def test_timepoint_page_shows_download_runs(reviewer_client, study_site, session):
    now = timezone.now()
    job = DownloadJob.objects.create(session_name=SESSION, study_site=study_site, deadline_at=now)
    DownloadRun.objects.create(
        job=job,
        kind=CommandKind.DOWNLOAD,
        command=["/opt/dl.sh", "SPINS", SESSION],
        exit_code=2,
        output_tail="connection refused",
        started_at=now,
        finished_at=now,
    )

    response = reviewer_client.get(reverse("qc:timepoint_detail", args=[TIMEPOINT]))

    text = response.content.decode()
    assert f'data-download-job="{SESSION}" data-status="waiting"' in text
    assert 'data-outcome="exit code 2"' in text
    assert f"/opt/dl.sh SPINS {SESSION}" in text
    assert "connection refused" in text


@pytest.mark.parametrize("count", [1, 20])
def test_timepoint_query_count_with_jobs(
    reviewer_client, study_site, django_assert_num_queries, count
):
    timepoint = TimepointFactory(study_site=study_site, name=TIMEPOINT)
    now = timezone.now()
    for number in range(1, count + 1):
        session = SessionFactory(timepoint=timepoint, number=number)
        ScanFactory(session=session)
        job = DownloadJob.objects.create(
            session_name=session.name, study_site=study_site, deadline_at=now
        )
        DownloadRun.objects.create(
            job=job, kind=CommandKind.DOWNLOAD, command=["x"], started_at=now, finished_at=now
        )
    page(study_site.study, scope=PageScope.SESSION, url_template="https://h/{session}").save()

    # The 16 queries of the timepoint page (tests/qc/test_views_timepoint.py names them), and
    # 17 the runs of the download jobs, fetched only when there are jobs.
    with django_assert_num_queries(17):
        response = reviewer_client.get(reverse("qc:timepoint_detail", args=[TIMEPOINT]))

    text = response.content.decode()
    assert text.count("data-download-job=") == count
    assert text.count('data-pipeline-link="MRIQC"') == count


def test_report_view_stays_in_report_folder(reviewer_client, study_site):
    other = study_site.study.archive_root / "other" / "x.html"
    other.parent.mkdir(parents=True)
    other.write_text("<html></html>")
    scripted = page(study_site.study, path_template="reports/{timepoint}.html", allow_scripts=True)
    scripted.save()

    response = reviewer_client.get(reverse("pipelines:report", args=[scripted.pk, "other/x.html"]))
    sneaky = reviewer_client.get(
        reverse("pipelines:report", args=[scripted.pk, "reports/../other/x.html"])
    )

    assert response.status_code == 404
    assert sneaky.status_code == 404


@pytest.mark.parametrize(
    ("template", "folder"),
    [
        ("pipelines/mriqc/sub-{timepoint}.html", "pipelines/mriqc"),
        ("fmriprep/{session}/", "fmriprep"),
        ("{timepoint}/report.html", ""),
        ("reports/index.html", "reports"),
    ],
)
def test_report_folder(template, folder):
    assert PipelinePage(path_template=template).report_folder == folder


@pytest.mark.parametrize(
    ("name", "sandboxed"), [("figure.svg", True), ("page.xhtml", True), ("image.png", False)]
)
def test_archive_sandbox_by_type(reviewer_client, study_site, name, sandboxed):
    path = study_site.study.archive_root / "reports" / name
    path.parent.mkdir(parents=True)
    path.write_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'/>")

    response = reviewer_client.get(
        reverse("studies:archive_file", args=["SPINS", f"reports/{name}"])
    )

    assert response.status_code == 200
    assert response.get("Content-Security-Policy", "").startswith("sandbox") is sandboxed


@pytest.mark.parametrize(
    "template", ["{timepoint}/report.html", "{study}-{timepoint}.html", "reports{timepoint}.html"]
)
def test_scripted_page_needs_report_folder(study_site, template):
    with pytest.raises(ValidationError) as error:
        page(study_site.study, path_template=template, allow_scripts=True).full_clean()

    messages = error.value.message_dict["allow_scripts"]
    assert len(messages) == 1
    assert repr(template) in messages[0]
    assert "begin it with a folder" in messages[0]


def test_unscripted_page_without_folder_accepted(study_site):
    page(study_site.study, path_template="{timepoint}/report.html").full_clean()


@pytest.fixture
def folderless_page(study_site, session):
    """A page that allows scripts but has no fixed folder, saved without validation."""
    root = study_site.study.archive_root
    (root / TIMEPOINT).mkdir(parents=True)
    (root / TIMEPOINT / "report.html").write_text("<html>report</html>")
    (root / "metadata").mkdir()
    (root / "metadata" / "private.html").write_text("<html>not a report</html>")
    scripted = page(study_site.study, path_template="{timepoint}/report.html", allow_scripts=True)
    scripted.save()
    return scripted


@pytest.mark.parametrize("path", [f"{TIMEPOINT}/report.html", "metadata/private.html"])
def test_report_view_404_without_folder(reviewer_client, folderless_page, path):
    response = reviewer_client.get(reverse("pipelines:report", args=[folderless_page.pk, path]))

    assert response.status_code == 404
    assert b"not a report" not in response.content


def test_folderless_page_links_sandboxed_file(reviewer_client, folderless_page):
    response = reviewer_client.get(reverse("qc:timepoint_detail", args=[TIMEPOINT]))

    url = reverse("studies:archive_file", args=["SPINS", f"{TIMEPOINT}/report.html"])
    assert f'href="{url}"' in response.content.decode()
    assert "/pipelines/reports/" not in response.content.decode()


@pytest.fixture
def scripted_report(study_site):
    folder = study_site.study.archive_root / "reports"
    folder.mkdir(parents=True)
    (folder / f"{TIMEPOINT}.html").write_text("<script src='draw.js'></script>")
    (folder / "draw.js").write_text("draw();")
    scripted = page(study_site.study, path_template="reports/{timepoint}.html", allow_scripts=True)
    scripted.save()
    return scripted


def test_report_view_head(reviewer_client, scripted_report):
    url = reverse("pipelines:report", args=[scripted_report.pk, f"reports/{TIMEPOINT}.html"])

    head = reviewer_client.head(url)
    post = reviewer_client.post(url)

    assert head.status_code == 200
    assert head.content == b""
    assert head["Content-Security-Policy"] == html_policy(allow_scripts=True)
    assert post.status_code == 405


def test_report_view_sends_scripts_as_javascript(reviewer_client, scripted_report):
    report_url = reverse("pipelines:report", args=[scripted_report.pk, "reports/draw.js"])
    file_url = reverse("studies:archive_file", args=["SPINS", "reports/draw.js"])

    assert reviewer_client.get(report_url)["Content-Type"] == "text/javascript"
    assert reviewer_client.get(file_url)["Content-Type"] == "text/plain"


@pytest.mark.parametrize(
    "path",
    [
        f"reports/./{TIMEPOINT}.html",
        f"reports//{TIMEPOINT}.html",
        f"reports/x/../{TIMEPOINT}.html",
        f"reports/%2e%2e/reports/{TIMEPOINT}.html",
        f"reports/%2E/{TIMEPOINT}.html",
    ],
)
def test_report_view_dot_segments_404(reviewer_client, scripted_report, path):
    url = f"/pipelines/reports/{scripted_report.pk}/{path}"
    assert resolve(unquote(url)).url_name == "report"

    assert reviewer_client.get(url).status_code == 404
