"""Compliance pages and actions: the study page and its CSV, the deviation and dismissal POSTs,
the partials, the admin, and who may use them."""

import csv
import io
from datetime import date

import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Role, StudyMembership
from qc.compliance_selectors import attach_header_diffs, attach_session_compliance
from qc.compliance_services import compute_header_diffs
from qc.models import DeviationResolution, HeaderDiff, MissingScanDismissal, QCEvent
from studies.datman_ids import mangle_description
from studies.models import Scan, Session
from tests.qc.compliance_factories import GoldStandardFactory, make_compliance_site
from tests.studies.factories import (
    ScanFactory,
    ScantypeFactory,
    SessionFactory,
    SiteFactory,
    StudyFactory,
    TimepointFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ACCENTED = "Sag T1 – Bravo «é» 1/2"
STANDARD = {"SeriesDescription": "Sag T1 Bravo", "EchoTime": 0.003, "RepetitionTime": 2.3}


def grant(user, role=Role.QC_REVIEWER, site=None, nickname="SPINS"):
    """Give the user a role in the study (at one site, or study-wide)."""
    study = StudyFactory(nickname=nickname)
    StudyMembership.objects.create(user=user, study=study, site=site, role=role)
    return user


@pytest.fixture
def reviewer_client(client, reviewer):
    """A client signed in as a QC reviewer of every site of SPINS."""
    grant(reviewer)
    client.force_login(reviewer)
    return client


def page_url(nickname="SPINS"):
    return reverse("qc:compliance:study_compliance", args=[nickname])


def csv_url(nickname="SPINS"):
    return reverse("qc:compliance:study_compliance_csv", args=[nickname])


def make_study(session_count=1, tmp_path=None):
    """SPINS at CMH with a T1 standard and `session_count` sessions of a matching T1 and a
    mismatching RST (which has a standard too), all compared."""
    study_site = make_compliance_site()
    for tag in ("T1", "RST"):
        GoldStandardFactory(
            study=study_site.study,
            site=study_site.site,
            scantype=ScantypeFactory(tag=tag),
            sidecar=dict(STANDARD),
        )
    for index in range(session_count):
        session = SessionFactory(
            timepoint=TimepointFactory(study_site=study_site),
            acquired_on=date(2025, 1 + index % 12, 1),
        )
        ScanFactory(session=session, scantype=ScantypeFactory(tag="T1"), sidecar=dict(STANDARD))
        ScanFactory(
            session=session,
            scantype=ScantypeFactory(tag="RST"),
            sidecar={**STANDARD, "EchoTime": 0.03},
        )
    compute_header_diffs(study_site.study)
    return study_site


def accented_scan():
    """A T1 scan whose SeriesDescription has accents and punctuation, compared with a standard
    that does not ignore it."""
    study_site = make_compliance_site()
    GoldStandardFactory(
        study=study_site.study,
        site=study_site.site,
        scantype=ScantypeFactory(tag="T1"),
        sidecar=dict(STANDARD),
    )
    scan = ScanFactory(
        session=SessionFactory(timepoint=TimepointFactory(study_site=study_site)),
        scantype=ScantypeFactory(tag="T1"),
        description=mangle_description(ACCENTED),
        sidecar={**STANDARD, "SeriesDescription": ACCENTED},
    )
    compute_header_diffs(study_site.study)
    return scan


# Compliance page


def test_page_shows_site_and_tag_rows(reviewer_client):
    make_study(3)

    response = reviewer_client.get(page_url())

    assert response.status_code == 200
    rows = {(row.site, row.tag): row for row in response.context["summary"].rows}
    assert rows[("CMH", "T1")].counts == {"match": 3}
    assert rows[("CMH", "RST")].counts == {"mismatch": 3}
    assert rows[("CMH", "RST")].top_fields == [("EchoTime", 3)]
    html = response.text
    assert 'data-site="CMH" data-tag="T1"' in html
    assert 'data-share="1.000"' in html
    assert 'data-share="0.000"' in html
    assert "50% compliant" in html
    assert 'data-field="EchoTime"' in html


def test_page_draws_trend_svg(reviewer_client):
    make_study(3)

    html = reviewer_client.get(page_url()).text

    # One overall chart and one per row, each with a bar per month from January to March.
    assert html.count("<svg") == 3
    assert html.count('data-month="2025-01"') == 3
    assert 'data-month="2025-03" data-compared="2" data-compliant="1"' in html
    assert "2025-02: 1 of 2 compliant (50%)" in html
    assert "<script" not in html.split("<main", 1)[1].split("</main>", 1)[0]


def test_page_without_scans(reviewer_client):
    make_compliance_site()

    response = reviewer_client.get(page_url())

    assert response.status_code == 200
    assert "SPINS has no scans yet" in response.text


def test_page_counts_not_compared_scans(reviewer_client):
    study_site = make_study(1)
    session = Session.objects.first()
    ScanFactory(session=session, scantype=ScantypeFactory(tag="DTI60-1000"))

    response = reviewer_client.get(page_url())

    rows = {row.tag: row for row in response.context["summary"].rows}
    assert rows["DTI60-1000"].counts == {"not_compared": 1}
    assert rows["DTI60-1000"].share is None
    assert study_site.study.nickname == "SPINS"


def page_queries(client):
    with CaptureQueriesContext(connection) as context:
        response = client.get(page_url())
    assert response.status_code == 200
    return len(context.captured_queries)


def test_page_query_count_constant(client):
    make_study(1)
    client.force_login(grant(UserFactory(username="one")))
    one = page_queries(client)

    make_study(20)
    twenty = page_queries(client)

    # Session, user, study, counts by site/tag/status/month, deviating fields of mismatches.
    assert one == 5
    assert twenty == one


def test_page_unknown_study_404(reviewer_client):
    assert reviewer_client.get(page_url("NOPE")).status_code == 404


@pytest.mark.parametrize("url_name", ["study_compliance", "study_compliance_csv"])
def test_anonymous_redirected_to_login(client, url_name):
    make_compliance_site()
    url = reverse(f"qc:compliance:{url_name}", args=["SPINS"])

    response = client.get(url)

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_inactive_user_redirected(client):
    make_compliance_site()
    user = UserFactory(username="gone", is_active=False)
    client.force_login(user)

    response = client.get(page_url())

    assert response.status_code == 302


@pytest.mark.parametrize("url_name", ["study_compliance", "study_compliance_csv"])
def test_page_get_only(reviewer_client, url_name):
    make_compliance_site()

    response = reviewer_client.post(reverse(f"qc:compliance:{url_name}", args=["SPINS"]))

    assert response.status_code == 405


# CSV export


def read_csv(response):
    assert response.streaming
    text = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.reader(io.StringIO(text)))


def test_csv_one_row_per_scan(reviewer_client):
    make_study(2)

    response = reviewer_client.get(csv_url())

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="SPINS-compliance.csv"' in response["Content-Disposition"]
    rows = read_csv(response)
    header = rows[0]
    assert header[:8] == [
        "site",
        "tag",
        "session",
        "scan",
        "series",
        "series_description",
        "month",
        "status",
    ]
    records = [dict(zip(header, row, strict=True)) for row in rows[1:]]
    assert len(records) == 4
    rst = [record for record in records if record["tag"] == "RST"]
    assert {record["status"] for record in rst} == {"mismatch"}
    assert rst[0]["deviating_fields"] == "EchoTime"
    assert rst[0]["gold_standard"] == "metadata/standards/RST.json"
    assert rst[0]["month"] in ("2025-01", "2025-02")
    assert rst[0]["session"].endswith("_01")


def test_csv_keeps_accents(reviewer_client):
    scan = accented_scan()

    rows = read_csv(reviewer_client.get(csv_url()))

    record = dict(zip(rows[0], rows[1], strict=True))
    assert record["scan"] == scan.name
    assert record["series_description"] == ACCENTED
    assert record["deviating_fields"] == "SeriesDescription"


def test_csv_missing_fields_and_formula_cells(reviewer_client):
    study_site = make_compliance_site()
    GoldStandardFactory(
        study=study_site.study,
        site=study_site.site,
        scantype=ScantypeFactory(tag="T1"),
        sidecar={**STANDARD, "FlipAngle": 8},
    )
    ScanFactory(
        session=SessionFactory(timepoint=TimepointFactory(study_site=study_site)),
        scantype=ScantypeFactory(tag="T1"),
        sidecar={**STANDARD, "SeriesDescription": "=HYPERLINK(1)"},
    )
    compute_header_diffs(study_site.study)

    rows = read_csv(reviewer_client.get(csv_url()))

    record = dict(zip(rows[0], rows[1], strict=True))
    assert record["missing_fields"] == "FlipAngle"
    assert record["deviating_fields"] == "SeriesDescription"
    assert record["series_description"] == "'=HYPERLINK(1)"


def test_csv_scan_without_diff(reviewer_client):
    make_compliance_site()
    study_site = make_compliance_site()
    ScanFactory(
        session=SessionFactory(timepoint=TimepointFactory(study_site=study_site)),
        description="SagT1Bravo",
        sidecar=None,
    )

    rows = read_csv(reviewer_client.get(csv_url()))

    record = dict(zip(rows[0], rows[1], strict=True))
    assert record["status"] == "not_compared"
    assert record["series_description"] == "SagT1Bravo"
    assert record["gold_standard"] == ""


def test_csv_query_count_constant(client):
    make_study(1)
    client.force_login(grant(UserFactory(username="one")))
    with CaptureQueriesContext(connection) as one:
        read_csv(client.get(csv_url()))
    make_study(20)
    with CaptureQueriesContext(connection) as twenty:
        read_csv(client.get(csv_url()))

    # Session, user, study and the scans with their current diffs.
    assert len(one.captured_queries) == 4
    assert len(twenty.captured_queries) == len(one.captured_queries)


# Resolving deviations


def resolve_url(scan):
    return reverse("qc:compliance:resolve_deviation", args=[scan.name])


def test_accept_deviation_post(reviewer_client, reviewer):
    scan = accented_scan()
    diff = HeaderDiff.objects.current().get(scan=scan)

    response = reviewer_client.post(
        resolve_url(scan),
        {
            "header_diff": diff.pk,
            "field": "SeriesDescription",
            "decision": "accepted",
            "reason": "Renamed protocol, same sequence.",
            "next": "/somewhere/",
        },
    )

    assert response.status_code == 302
    assert response.url == "/somewhere/"
    resolution = DeviationResolution.objects.get()
    assert resolution.reviewer == reviewer
    assert resolution.actual == ACCENTED
    assert QCEvent.objects.count() == 1


def test_accept_without_reason_shows_error(reviewer_client):
    scan = accented_scan()
    diff = HeaderDiff.objects.current().get(scan=scan)

    response = reviewer_client.post(
        resolve_url(scan),
        {"header_diff": diff.pk, "field": "SeriesDescription", "decision": "accepted"},
        follow=True,
    )

    messages = [str(message) for message in response.context["messages"]]
    assert any("A reason is required to accept" in message for message in messages)
    assert DeviationResolution.objects.count() == 0


def test_resolve_invalid_form_shows_error(reviewer_client):
    scan = accented_scan()

    response = reviewer_client.post(
        resolve_url(scan), {"field": "SeriesDescription", "decision": "maybe"}, follow=True
    )

    messages = " ".join(str(message) for message in response.context["messages"])
    assert "maybe is not a decision" in messages
    assert "lacks the header diff" in messages
    assert response.redirect_chain[0][0] == reverse("qc:scan_detail", args=[scan.name])


@pytest.mark.parametrize(
    "target", ["https://evil.example.org/", "/\\evil.example.org", "/accounts/logout/"]
)
def test_resolve_unsafe_next_ignored(reviewer_client, target):
    scan = accented_scan()
    diff = HeaderDiff.objects.current().get(scan=scan)

    response = reviewer_client.post(
        resolve_url(scan),
        {
            "header_diff": diff.pk,
            "field": "SeriesDescription",
            "decision": "violation",
            "next": target,
        },
    )

    assert response.url == reverse("qc:scan_detail", args=[scan.name])


def test_resolve_get_not_allowed(reviewer_client):
    assert reviewer_client.get(resolve_url(accented_scan())).status_code == 405


def test_resolve_anonymous_redirected(client):
    scan = accented_scan()

    response = client.post(resolve_url(scan), {"decision": "violation"})

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))
    assert DeviationResolution.objects.count() == 0


def test_resolve_unknown_scan_404(reviewer_client):
    response = reviewer_client.post(
        reverse("qc:compliance:resolve_deviation", args=["SPN01_CMH_9999_01_01_T1_02"])
    )

    assert response.status_code == 404


# Dismissing missing scans


def dismiss_url(session):
    return reverse("qc:compliance:dismiss_missing_scans", args=[session.name])


def test_dismiss_post(reviewer_client):
    study_site = make_compliance_site()
    session = SessionFactory(timepoint=TimepointFactory(study_site=study_site))

    response = reviewer_client.post(dismiss_url(session), {"reason": "Scanner broke down."})

    assert response.status_code == 302
    assert response.url == reverse("qc:timepoint_detail", args=[session.timepoint.name])
    assert MissingScanDismissal.objects.get().reason == "Scanner broke down."


def test_dismiss_without_reason(reviewer_client):
    study_site = make_compliance_site()
    session = SessionFactory(timepoint=TimepointFactory(study_site=study_site))

    response = reviewer_client.post(dismiss_url(session), {"reason": ""}, follow=True)

    messages = [str(message) for message in response.context["messages"]]
    assert messages == ["Give a reason: say why the scans are missing."]
    assert MissingScanDismissal.objects.count() == 0


def test_dismiss_invalid_session_id_404(reviewer_client):
    url = reverse("qc:compliance:dismiss_missing_scans", args=["SPN01_CMH_0001_01"])

    assert reviewer_client.post(url, {"reason": "x"}).status_code == 404


def test_dismiss_anonymous_redirected(client):
    study_site = make_compliance_site()
    session = SessionFactory(timepoint=TimepointFactory(study_site=study_site))

    response = client.post(dismiss_url(session), {"reason": "x"})

    assert response.status_code == 302
    assert MissingScanDismissal.objects.count() == 0


# Partials


def render_partial(template, context, user):
    request = RequestFactory().get("/")
    request.user = user
    return render_to_string(template, context, request=request)


def test_diff_table_shows_accents(reviewer):
    scan = attach_header_diffs([accented_scan()])[0]

    html = render_partial(
        "qc/compliance/_diff_table.html", {"scan": scan, "can_review": True}, reviewer
    )

    assert ACCENTED in html
    assert 'data-status="mismatch"' in html
    assert 'data-field="SeriesDescription"' in html
    assert "Accept deviation" in html
    assert reverse("qc:compliance:resolve_deviation", args=[scan.name]) in html


def test_diff_table_without_review_rights_has_no_form(reviewer):
    scan = attach_header_diffs([accented_scan()])[0]

    html = render_partial(
        "qc/compliance/_diff_table.html", {"scan": scan, "can_review": False}, reviewer
    )

    assert "<form" not in html


def test_diff_table_escapes_html(reviewer):
    study_site = make_compliance_site()
    GoldStandardFactory(
        study=study_site.study,
        site=study_site.site,
        scantype=ScantypeFactory(tag="T1"),
        sidecar=dict(STANDARD),
    )
    scan = ScanFactory(
        session=SessionFactory(timepoint=TimepointFactory(study_site=study_site)),
        scantype=ScantypeFactory(tag="T1"),
        sidecar={**STANDARD, "SeriesDescription": "<script>alert(1)</script>"},
    )
    compute_header_diffs(study_site.study)

    html = render_partial(
        "qc/compliance/_diff_table.html", {"scan": attach_header_diffs([scan])[0]}, reviewer
    )

    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_diff_table_not_compared_and_no_standard(reviewer):
    study_site = make_compliance_site()
    scan = ScanFactory(
        session=SessionFactory(timepoint=TimepointFactory(study_site=study_site)),
        scantype=ScantypeFactory(tag="RST"),
    )
    before = render_partial(
        "qc/compliance/_diff_table.html", {"scan": attach_header_diffs([scan])[0]}, reviewer
    )
    compute_header_diffs(study_site.study)

    after = render_partial(
        "qc/compliance/_diff_table.html", {"scan": attach_header_diffs([scan])[0]}, reviewer
    )

    assert 'data-status="not_compared"' in before
    assert 'data-status="no_gold_standard"' in after
    assert "no gold standard" in after


def test_session_badges(reviewer):
    study_site = make_study(1)
    session = Session.objects.select_related("timepoint").get(timepoint__study_site=study_site)
    attach_session_compliance([session])

    html = render_partial("qc/compliance/_session_badges.html", {"session": session}, reviewer)
    form = render_partial(
        "qc/compliance/_dismiss_missing_form.html", {"session": session}, reviewer
    )

    assert 'data-compliance="missing-scans"' in html
    assert "missing: DTI60-1000 (0 of 1)" in html
    assert 'data-compliance="header-mismatch" data-count="1"' in html
    assert reverse("qc:compliance:dismiss_missing_scans", args=[session.name]) in form


def test_session_badges_after_dismissal(reviewer_client, reviewer):
    study_site = make_study(1)
    session = Session.objects.select_related("timepoint").get(timepoint__study_site=study_site)
    reviewer_client.post(dismiss_url(session), {"reason": "Participant declined DTI."})
    attach_session_compliance([session])

    html = render_partial("qc/compliance/_session_badges.html", {"session": session}, reviewer)
    form = render_partial(
        "qc/compliance/_dismiss_missing_form.html", {"session": session}, reviewer
    )

    assert 'data-compliance="missing-scans-dismissed"' in html
    assert "Participant declined DTI." in html
    assert "<form" not in form


# Admin


@pytest.fixture
def admin_client(client):
    user = UserFactory(username="admin", is_staff=True, is_superuser=True, is_dashboard_admin=True)
    client.force_login(user)
    return client


def test_admin_header_diff_list_shows_accents(admin_client):
    accented_scan()

    response = admin_client.get(reverse("admin:qc_headerdiff_changelist"))

    assert response.status_code == 200
    assert ACCENTED in response.text


def test_admin_adds_gold_standard(admin_client):
    study_site = make_compliance_site()
    scantype = ScantypeFactory(tag="T1")

    response = admin_client.post(
        reverse("admin:qc_goldstandard_add"),
        {
            "study": study_site.study.pk,
            "site": study_site.site.pk,
            "scantype": scantype.pk,
            "sidecar": '{"EchoTime": 0.003, "ConversionSoftware": "dcm2niix"}',
            "bvals": "",
            "source_path": "",
        },
    )

    assert response.status_code == 302
    standard = study_site.study.gold_standards.get()
    assert standard.converter_version == "dcm2niix - Version Not Available"
    assert standard.bvals is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("sidecar", "[1, 2]", "The sidecar must be a JSON object"),
        ("bvals", '[0, "x"]', "B-value 2 is &#x27;x&#x27;"),
    ],
)
def test_admin_rejects_invalid_gold_standard(admin_client, field, value, message):
    study_site = make_compliance_site()
    data = {
        "study": study_site.study.pk,
        "site": study_site.site.pk,
        "scantype": ScantypeFactory(tag="T1").pk,
        "sidecar": '{"EchoTime": 0.003}',
        "bvals": "",
        "source_path": "",
        field: value,
    }

    response = admin_client.post(reverse("admin:qc_goldstandard_add"), data)

    assert response.status_code == 200
    assert message in response.text
    assert study_site.study.gold_standards.count() == 0


def test_admin_rejects_site_outside_study(admin_client):
    study_site = make_compliance_site()
    other = make_compliance_site(nickname="OTHER", site="UTO", code="OTH01")

    response = admin_client.post(
        reverse("admin:qc_goldstandard_add"),
        {
            "study": study_site.study.pk,
            "site": other.site.pk,
            "scantype": ScantypeFactory(tag="T1").pk,
            "sidecar": '{"EchoTime": 0.003}',
            "bvals": "",
            "source_path": "",
        },
    )

    assert "This site takes no part in the study" in response.text


def test_admin_settings_reject_negative_tolerance(admin_client):
    study_site = make_compliance_site()

    response = admin_client.post(
        reverse("admin:studies_headercomparisonsettings_add"),
        {
            "study": study_site.study.pk,
            "site": "",
            "ignored_fields": '["SeriesNumber"]',
            "tolerances": '{"EchoTime": -1}',
        },
    )

    assert response.status_code == 200
    assert "The tolerance of EchoTime is -1" in response.text


# Roles


def two_site_study():
    """SPINS at CMH (from make_study) and at UTO, one compared T1 scan at UTO."""
    make_study(1)
    uto = make_compliance_site(site="UTO", code="SPN02")
    GoldStandardFactory(
        study=uto.study, site=uto.site, scantype=ScantypeFactory(tag="T1"), sidecar=STANDARD
    )
    scan = ScanFactory(
        session=SessionFactory(timepoint=TimepointFactory(study_site=uto)),
        scantype=ScantypeFactory(tag="T1"),
        sidecar=dict(STANDARD),
    )
    compute_header_diffs(uto.study)
    return scan


def test_outsider_gets_404(client):
    scan = accented_scan()
    client.force_login(UserFactory(username="outsider"))
    diff = HeaderDiff.objects.current().get(scan=scan)

    assert client.get(page_url()).status_code == 404
    assert client.get(csv_url()).status_code == 404
    response = client.post(
        resolve_url(scan),
        {"header_diff": diff.pk, "field": "SeriesDescription", "decision": "violation"},
    )
    assert response.status_code == 404
    assert client.post(dismiss_url(scan.session), {"reason": "x"}).status_code == 404
    assert DeviationResolution.objects.count() == 0


def test_viewer_sees_page_but_cannot_decide(client):
    scan = accented_scan()
    client.force_login(grant(UserFactory(username="viewer"), role=Role.VIEWER))
    diff = HeaderDiff.objects.current().get(scan=scan)

    assert client.get(page_url()).status_code == 200
    response = client.post(
        resolve_url(scan),
        {"header_diff": diff.pk, "field": "SeriesDescription", "decision": "violation"},
    )
    assert response.status_code == 403
    assert client.post(dismiss_url(scan.session), {"reason": "x"}).status_code == 403
    assert DeviationResolution.objects.count() == 0
    assert MissingScanDismissal.objects.count() == 0


def test_site_reviewer_sees_only_their_site(client):
    uto_scan = two_site_study()
    cmh = SiteFactory(name="CMH")
    client.force_login(grant(UserFactory(username="cmh"), site=cmh))

    summary = client.get(page_url()).context["summary"]
    rows = read_csv(client.get(csv_url()))

    assert {row.site for row in summary.rows} == {"CMH"}
    assert {row[0] for row in rows[1:]} == {"CMH"}
    assert uto_scan.name not in {row[3] for row in rows[1:]}
    diff = HeaderDiff.objects.current().get(scan=uto_scan)
    response = client.post(
        resolve_url(uto_scan),
        {"header_diff": diff.pk, "field": "EchoTime", "decision": "violation"},
    )
    assert response.status_code == 404


def test_site_reviewer_decides_at_their_site(client):
    two_site_study()
    cmh = SiteFactory(name="CMH")
    client.force_login(grant(UserFactory(username="cmh"), site=cmh))
    rst = Scan.objects.get(session__timepoint__study_site__site=cmh, scantype__tag="RST")
    diff = HeaderDiff.objects.current().get(scan=rst)

    response = client.post(
        resolve_url(rst), {"header_diff": diff.pk, "field": "EchoTime", "decision": "violation"}
    )

    assert response.status_code == 302
    assert DeviationResolution.objects.get().header_diff == diff
