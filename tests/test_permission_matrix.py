"""Who may do what on every URL: (URL name, method, persona) -> status.

The personas are built by tests/accounts/personas.py. Besides anonymous, they are an outsider
(active, no role), a viewer, a QC reviewer, an RA and a study admin of SPINS at all sites, a QC
reviewer limited to SPINS at CMH (`site_reviewer`), a dashboard admin and an inactive study
admin. URLs that name a timepoint,
session, scan or file name the CMH one, which every member sees; the ZHH ones are tested apart,
because the site reviewer must get 404 there. The authentication backend does not load an
inactive user from the session, so the inactive persona reaches the pages as anonymous.

allauth's URLs (under accounts/) and the admin site's (under admin/) are covered by a few
representative entries; the rest of them is allow-listed by the URLconf module they come from.
"""

from types import SimpleNamespace

import pytest
from django.contrib.admin.sites import site as admin_site
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.models import AccessEvent, AccountRequest, Role, StudyMembership
from integrations.models import IssueRequest, PushStatus, XnatPush
from pipelines.models import PageScope, PipelinePage
from qc.compliance_services import compute_header_diffs_for_sessions
from qc.models import (
    DeviationResolution,
    FindingNote,
    HeaderDiff,
    IncidentalFinding,
    MissingScanDismissal,
    QCEvent,
    ScanReview,
    SessionSignOff,
    SidecarRepair,
    TimepointComment,
    TimepointCommentRevision,
)
from qc.notes_services import add_comment, report_finding
from studies.models import DeletionEvent, StudyReadme
from tests.accounts.personas import PERSONA_NAMES
from tests.qc.compliance_factories import GoldStandardFactory
from tests.studies.factories import (
    ExpectedScanFactory,
    ScanFactory,
    ScantypeFactory,
    SessionFactory,
    TimepointFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

LOGIN = "login"  # a redirect to the sign-in page
ADMIN_LOGIN = "admin-login"  # a redirect to the admin site's sign-in page
OK, FOUND, UNAUTHORIZED, DENIED, MISSING, NOT_ALLOWED = 200, 302, 401, 403, 404, 405
UNSUPPORTED_MEDIA = 415

# Personas in the column order of MATRIX.
PERSONAS = PERSONA_NAMES


def row(anonymous, outsider, viewer, site_reviewer, qc_reviewer, ra, study_admin, admin, inactive):
    return (
        anonymous,
        outsider,
        viewer,
        site_reviewer,
        qc_reviewer,
        ra,
        study_admin,
        admin,
        inactive,
    )


# Shorthands for common rows.
EVERY_MEMBER = row(LOGIN, MISSING, OK, OK, OK, OK, OK, OK, LOGIN)
SIGNED_IN = row(LOGIN, OK, OK, OK, OK, OK, OK, OK, LOGIN)
POST_ONLY = row(
    LOGIN,
    NOT_ALLOWED,
    NOT_ALLOWED,
    NOT_ALLOWED,
    NOT_ALLOWED,
    NOT_ALLOWED,
    NOT_ALLOWED,
    NOT_ALLOWED,
    LOGIN,
)  # noqa: E501
GET_ONLY = POST_ONLY
SIGNED_IN_REDIRECT = row(LOGIN, FOUND, FOUND, FOUND, FOUND, FOUND, FOUND, FOUND, LOGIN)
REVIEWERS_WRITE = row(LOGIN, MISSING, DENIED, FOUND, FOUND, FOUND, FOUND, FOUND, LOGIN)
REVIEWERS_READ = row(LOGIN, MISSING, DENIED, OK, OK, OK, OK, OK, LOGIN)
RA_WRITE = row(LOGIN, MISSING, DENIED, DENIED, DENIED, FOUND, FOUND, FOUND, LOGIN)
RA_LIST = row(LOGIN, DENIED, DENIED, DENIED, DENIED, OK, OK, OK, LOGIN)
RA_LIST_WRITE = row(LOGIN, DENIED, DENIED, DENIED, DENIED, FOUND, FOUND, FOUND, LOGIN)
# Only the author (the RA persona) may edit or delete their comment.
AUTHOR_WRITE = row(LOGIN, MISSING, DENIED, DENIED, DENIED, FOUND, DENIED, DENIED, LOGIN)
AUTHOR_READ = row(LOGIN, MISSING, DENIED, DENIED, DENIED, OK, DENIED, DENIED, LOGIN)
# A finding reported by the QC reviewer: hidden (404) from those who may not see it, seen but not
# followed up by its reporter (403), followed up by study and dashboard admins.
FINDING_FOLLOW_UP = row(LOGIN, MISSING, MISSING, MISSING, DENIED, MISSING, FOUND, FOUND, LOGIN)
STUDY_ADMIN_LIST = row(LOGIN, DENIED, DENIED, DENIED, DENIED, DENIED, OK, OK, LOGIN)
STUDY_ADMIN_READ = row(LOGIN, MISSING, DENIED, DENIED, DENIED, DENIED, OK, OK, LOGIN)
STUDY_ADMIN_WRITE = row(LOGIN, MISSING, DENIED, DENIED, DENIED, DENIED, FOUND, FOUND, LOGIN)
ADMIN_READ = row(LOGIN, DENIED, DENIED, DENIED, DENIED, DENIED, DENIED, OK, LOGIN)
ADMIN_WRITE = row(LOGIN, DENIED, DENIED, DENIED, DENIED, DENIED, DENIED, FOUND, LOGIN)
# Study data only dashboard admins may change: members get 403, others 404.
ADMIN_ONLY_READ = row(LOGIN, MISSING, DENIED, DENIED, DENIED, DENIED, DENIED, OK, LOGIN)
ADMIN_ONLY_WRITE = row(LOGIN, MISSING, DENIED, DENIED, DENIED, DENIED, DENIED, FOUND, LOGIN)
PUBLIC = row(OK, OK, OK, OK, OK, OK, OK, OK, OK)
SIGNED_OUT_ONLY = row(OK, FOUND, FOUND, FOUND, FOUND, FOUND, FOUND, FOUND, OK)
# The JSON API returns 401 instead of redirecting to the sign-in page.
API_MEMBER = row(UNAUTHORIZED, MISSING, OK, OK, OK, OK, OK, OK, UNAUTHORIZED)
API_SIGNED_IN = row(UNAUTHORIZED, OK, OK, OK, OK, OK, OK, OK, UNAUTHORIZED)
API_GET_ONLY = row(
    UNAUTHORIZED,
    NOT_ALLOWED,
    NOT_ALLOWED,
    NOT_ALLOWED,
    NOT_ALLOWED,
    NOT_ALLOWED,
    NOT_ALLOWED,
    NOT_ALLOWED,
    UNAUTHORIZED,
)  # noqa: E501
API_PUBLIC_GET_ONLY = row(*[NOT_ALLOWED] * 9)
ADMIN_SITE = row(
    ADMIN_LOGIN,
    ADMIN_LOGIN,
    ADMIN_LOGIN,
    ADMIN_LOGIN,
    ADMIN_LOGIN,
    ADMIN_LOGIN,
    ADMIN_LOGIN,
    OK,
    ADMIN_LOGIN,
)  # noqa: E501

MATRIX = {
    # Health checks respond to everyone.
    ("healthz", "GET"): PUBLIC,
    # QC pages.
    ("qc:study_list", "GET"): SIGNED_IN,
    ("qc:study_list", "POST"): GET_ONLY,
    ("qc:study_detail", "GET"): EVERY_MEMBER,
    ("qc:study_detail", "POST"): GET_ONLY,
    ("qc:timepoint_detail", "GET"): EVERY_MEMBER,
    ("qc:timepoint_detail", "POST"): GET_ONLY,
    ("qc:scan_detail", "GET"): EVERY_MEMBER,
    ("qc:scan_detail", "POST"): GET_ONLY,
    # A redirect to a session, or to the study list when none waits for the user.
    ("qc:next_session", "GET"): SIGNED_IN_REDIRECT,
    ("qc:next_session", "POST"): GET_ONLY,
    ("qc:scan_review", "GET"): POST_ONLY,
    ("qc:scan_review", "POST"): REVIEWERS_WRITE,
    ("qc:session_sign_off", "GET"): REVIEWERS_READ,
    ("qc:session_sign_off", "POST"): REVIEWERS_WRITE,
    ("qc:timepoint_history", "GET"): EVERY_MEMBER,
    ("qc:timepoint_history", "POST"): GET_ONLY,
    ("qc:scan_history", "GET"): EVERY_MEMBER,
    ("qc:scan_history", "POST"): GET_ONLY,
    ("qc:comment_add", "GET"): POST_ONLY,
    ("qc:comment_add", "POST"): RA_WRITE,
    ("qc:comment_edit", "GET"): POST_ONLY,
    ("qc:comment_edit", "POST"): AUTHOR_WRITE,
    # The confirmation page, then the deletion.
    ("qc:comment_delete", "GET"): AUTHOR_READ,
    ("qc:comment_delete", "POST"): AUTHOR_WRITE,
    ("qc:finding_report", "GET"): POST_ONLY,
    ("qc:finding_report", "POST"): REVIEWERS_WRITE,
    ("qc:finding_note_add", "GET"): POST_ONLY,
    ("qc:finding_note_add", "POST"): FINDING_FOLLOW_UP,
    ("qc:study_readme_edit", "GET"): STUDY_ADMIN_READ,
    ("qc:study_readme_edit", "POST"): STUDY_ADMIN_WRITE,
    ("qc:study_progress", "GET"): EVERY_MEMBER,
    ("qc:study_progress", "POST"): GET_ONLY,
    # Deleting (hiding) timepoints, sessions and scans.
    ("deletion:timepoint", "GET"): ADMIN_ONLY_READ,
    ("deletion:timepoint", "POST"): ADMIN_ONLY_WRITE,
    ("deletion:session", "GET"): ADMIN_ONLY_READ,
    ("deletion:session", "POST"): ADMIN_ONLY_WRITE,
    ("deletion:scan", "GET"): ADMIN_ONLY_READ,
    ("deletion:scan", "POST"): ADMIN_ONLY_WRITE,
    ("qc:compliance:study_compliance", "GET"): EVERY_MEMBER,
    ("qc:compliance:study_compliance", "POST"): GET_ONLY,
    ("qc:compliance:study_compliance_csv", "GET"): EVERY_MEMBER,
    ("qc:compliance:study_compliance_csv", "POST"): GET_ONLY,
    ("qc:compliance:resolve_deviation", "GET"): POST_ONLY,
    ("qc:compliance:resolve_deviation", "POST"): REVIEWERS_WRITE,
    ("qc:compliance:dismiss_missing_scans", "GET"): POST_ONLY,
    ("qc:compliance:dismiss_missing_scans", "POST"): REVIEWERS_WRITE,
    ("qc:compliance:repair_sidecar", "GET"): POST_ONLY,
    ("qc:compliance:repair_sidecar", "POST"): REVIEWERS_WRITE,
    ("studies:archive_file", "GET"): EVERY_MEMBER,
    ("studies:archive_file", "POST"): GET_ONLY,
    # Archive reports of pipeline pages that may run scripts: the same file checks.
    ("pipelines:report", "GET"): EVERY_MEMBER,
    ("pipelines:report", "POST"): GET_ONLY,
    # REDCap pages: the lists span studies, so they return 403 rather than 404.
    ("redcap:unmatched_records", "GET"): RA_LIST,
    ("redcap:unmatched_records", "POST"): GET_ONLY,
    ("redcap:link_record", "GET"): POST_ONLY,
    ("redcap:link_record", "POST"): RA_LIST_WRITE,
    ("redcap:failed_triggers", "GET"): RA_LIST,
    ("redcap:failed_triggers", "POST"): GET_ONLY,
    ("redcap:retry_trigger", "GET"): POST_ONLY,
    ("redcap:retry_trigger", "POST"): RA_LIST_WRITE,
    ("redcap:dismiss_survey", "GET"): POST_ONLY,
    ("redcap:dismiss_survey", "POST"): RA_WRITE,
    # Search pages span the user's studies; their results come from the visible querysets.
    ("qc:search", "GET"): SIGNED_IN,
    ("qc:search", "POST"): GET_ONLY,
    ("qc:search_suggest", "GET"): SIGNED_IN,
    ("qc:search_suggest", "POST"): GET_ONLY,
    ("qc:qc_search", "GET"): SIGNED_IN,
    ("qc:qc_search", "POST"): GET_ONLY,
    ("qc:qc_search_export", "GET"): SIGNED_IN,
    ("qc:qc_search_export", "POST"): GET_ONLY,
    # The JSON API. Its schema and docs describe endpoints, not data, and are public.
    ("api:schema", "GET"): PUBLIC,
    ("api:schema", "POST"): API_PUBLIC_GET_ONLY,
    ("api:docs", "GET"): PUBLIC,
    ("api:docs", "POST"): API_PUBLIC_GET_ONLY,
    ("api:study_list", "GET"): API_SIGNED_IN,
    ("api:study_list", "POST"): API_GET_ONLY,
    ("api:study_detail", "GET"): API_MEMBER,
    ("api:study_detail", "POST"): API_GET_ONLY,
    ("api:study_timepoints", "GET"): API_MEMBER,
    ("api:study_timepoints", "POST"): API_GET_ONLY,
    ("api:blacklist", "GET"): API_MEMBER,
    ("api:blacklist", "POST"): API_GET_ONLY,
    ("api:checklist", "GET"): API_MEMBER,
    ("api:checklist", "POST"): API_GET_ONLY,
    ("api:qc_metadata", "GET"): API_MEMBER,
    ("api:qc_metadata", "POST"): API_GET_ONLY,
    ("api:gold_standards", "GET"): API_MEMBER,
    ("api:gold_standards", "POST"): API_GET_ONLY,
    ("api:timepoint_detail", "GET"): API_MEMBER,
    ("api:timepoint_detail", "POST"): API_GET_ONLY,
    ("api:session", "GET"): API_MEMBER,
    ("api:session", "POST"): API_GET_ONLY,
    ("api:session_sign_off", "GET"): API_MEMBER,
    # An empty form body: reviewers get past the permission check to the JSON-only parser.
    ("api:session_sign_off", "POST"): row(
        UNAUTHORIZED,
        MISSING,
        DENIED,
        UNSUPPORTED_MEDIA,
        UNSUPPORTED_MEDIA,
        UNSUPPORTED_MEDIA,
        UNSUPPORTED_MEDIA,
        UNSUPPORTED_MEDIA,
        UNAUTHORIZED,
    ),
    ("api:scan", "GET"): API_MEMBER,
    ("api:scan", "POST"): API_GET_ONLY,
    ("api:scan_qc", "GET"): API_MEMBER,
    ("api:scan_qc", "POST"): API_GET_ONLY,
    # The scan has no header diff, so members get 404 too; the check still runs first.
    ("api:header_diff", "GET"): row(UNAUTHORIZED, *[MISSING] * 7, UNAUTHORIZED),
    ("api:header_diff", "POST"): API_GET_ONLY,
    # Accounts: own profile, account requests and users (dashboard admins), study members.
    ("accounts:profile", "GET"): SIGNED_IN,
    ("accounts:profile", "POST"): row(
        LOGIN, FOUND, FOUND, FOUND, FOUND, FOUND, FOUND, FOUND, LOGIN
    ),
    ("accounts:request_list", "GET"): ADMIN_READ,
    ("accounts:request_list", "POST"): GET_ONLY,
    ("accounts:request_detail", "GET"): ADMIN_READ,
    ("accounts:request_detail", "POST"): GET_ONLY,
    ("accounts:request_approve", "GET"): POST_ONLY,
    ("accounts:request_approve", "POST"): ADMIN_WRITE,
    ("accounts:request_reject", "GET"): POST_ONLY,
    ("accounts:request_reject", "POST"): ADMIN_WRITE,
    ("accounts:user_list", "GET"): ADMIN_READ,
    ("accounts:user_list", "POST"): GET_ONLY,
    ("accounts:user_detail", "GET"): ADMIN_READ,
    ("accounts:user_detail", "POST"): GET_ONLY,
    ("accounts:user_grant", "GET"): POST_ONLY,
    ("accounts:user_grant", "POST"): ADMIN_WRITE,
    ("accounts:user_revoke", "GET"): POST_ONLY,
    ("accounts:user_revoke", "POST"): ADMIN_WRITE,
    ("accounts:user_deactivate", "GET"): POST_ONLY,
    ("accounts:user_deactivate", "POST"): ADMIN_WRITE,
    ("accounts:user_reactivate", "GET"): POST_ONLY,
    ("accounts:user_reactivate", "POST"): ADMIN_WRITE,
    ("accounts:study_members", "GET"): STUDY_ADMIN_READ,
    ("accounts:study_members", "POST"): GET_ONLY,
    ("accounts:study_member_grant", "GET"): POST_ONLY,
    ("accounts:study_member_grant", "POST"): STUDY_ADMIN_WRITE,
    ("accounts:study_member_revoke", "GET"): POST_ONLY,
    ("accounts:study_member_revoke", "POST"): STUDY_ADMIN_WRITE,
    # Notifications: own preferences, failed emails (dashboard admins), a study's recipients.
    ("notifications:preferences", "GET"): SIGNED_IN,
    ("notifications:preferences", "POST"): row(
        LOGIN, FOUND, FOUND, FOUND, FOUND, FOUND, FOUND, FOUND, LOGIN
    ),
    ("notifications:failed", "GET"): ADMIN_READ,
    ("notifications:failed", "POST"): GET_ONLY,
    ("notifications:study_recipients", "GET"): STUDY_ADMIN_READ,
    ("notifications:study_recipients", "POST"): GET_ONLY,
    # Integrations: failed XNAT pushes (a list across studies) and new tracker issues. Without
    # an issue tracker, an allowed POST ends in a redirect with an error message.
    ("integrations:failed_pushes", "GET"): STUDY_ADMIN_LIST,
    ("integrations:failed_pushes", "POST"): GET_ONLY,
    ("integrations:push_again", "GET"): POST_ONLY,
    ("integrations:push_again", "POST"): STUDY_ADMIN_WRITE,
    ("integrations:new_issue", "GET"): REVIEWERS_READ,
    ("integrations:new_issue", "POST"): REVIEWERS_WRITE,
    # Representatives of allauth's URLs.
    ("account_login", "GET"): SIGNED_OUT_ONLY,
    ("account_signup", "GET"): SIGNED_OUT_ONLY,
    ("account_inactive", "GET"): PUBLIC,
    ("account_logout", "POST"): row(FOUND, FOUND, FOUND, FOUND, FOUND, FOUND, FOUND, FOUND, FOUND),
    ("account_email", "GET"): SIGNED_IN,
    ("mfa_index", "GET"): SIGNED_IN,
    ("socialaccount_connections", "GET"): SIGNED_IN,
    # Representatives of the admin site: dashboard admins only.
    ("admin:index", "GET"): ADMIN_SITE,
    ("admin:accounts_user_changelist", "GET"): ADMIN_SITE,
    ("admin:accounts_accessevent_changelist", "GET"): ADMIN_SITE,
}

# URLs left out of the persona matrix: the REDCap trigger answers REDCap with a secret in the
# URL, not people, and the readiness check answers 503 until a background worker has run.
NOT_PERSONA_URLS = {"redcap:trigger", "readyz"}

# Where the allow-listed URLs come from, and the route prefix they must have: allauth's URLconf
# and the admin site. Their URLs need only the representative entries above.
ALLOW_LISTED_SOURCES = {"allauth.urls": "accounts/", "admin site": "admin/"}

CASES = [
    (name, method, persona, statuses[index])
    for (name, method), statuses in MATRIX.items()
    for index, persona in enumerate(PERSONAS)
]


def _compliance_data(site_data):
    """A session of its own at the site, short of an expected DTI scan, whose RST scan
    deviates from the site's gold standard in EchoTime. It is kept apart from the site's main
    session, so the sign-off and the API's header diff entries see no change."""
    study = site_data.study_site.study
    rst = ScantypeFactory(tag="RST", qc_type="fmri")
    ExpectedScanFactory(
        study_site=site_data.study_site,
        scantype=ScantypeFactory(tag="DTI60-1000", qc_type="dti"),
        count=1,
        phantom_count=1,
    )
    GoldStandardFactory(
        study=study,
        site=site_data.site,
        scantype=rst,
        sidecar={"SeriesDescription": "Resting state", "EchoTime": 0.03},
    )
    session = SessionFactory(timepoint=TimepointFactory(study_site=site_data.study_site))
    scan = ScanFactory(
        session=session,
        scantype=rst,
        description="RestingState",
        sidecar={"SeriesDescription": "Resting state", "EchoTime": 0.035},
    )
    compute_header_diffs_for_sessions(study, [session])
    header_diff = HeaderDiff.objects.current().get(scan=scan)
    return SimpleNamespace(session=session, scan=scan, header_diff=header_diff)


def _notes_data(site_data, personas):
    """A comment by the RA and an incidental finding reported by the QC reviewer."""
    timepoint = site_data.timepoint
    return SimpleNamespace(
        comment=add_comment(timepoint=timepoint, author=personas["ra"], text="Arrived late."),
        finding=report_finding(
            timepoint=timepoint, reporter=personas["qc_reviewer"], description="A cyst."
        ),
    )


@pytest.fixture
def objects(persona_study, personas):
    """Everything the URLs name, besides the personas and their study."""
    from tests.redcap.factories import (
        RedcapConfigFactory,
        RedcapRecordFactory,
        RedcapTriggerFactory,
    )

    config = RedcapConfigFactory(study_sites=[persona_study.cmh.study_site])

    target = UserFactory(username="target")
    membership = StudyMembership.objects.create(
        user=target, study=persona_study.study, site=persona_study.cmh.site, role=Role.VIEWER
    )
    requester = UserFactory(username="requester", is_active=False)
    account_request = AccountRequest.objects.create(
        user=requester,
        institution="CAMH",
        position="RA",
        studies_and_sites="SPINS at CMH",
        reason="Scan QC",
    )
    deactivated = UserFactory(username="deactivated", is_active=False)
    pushes = {
        site: XnatPush.objects.create(
            scan=data.scan,
            study=persona_study.study,
            status=PushStatus.FAILED,
            last_error="XNAT returned HTTP 503.",
        )
        for site, data in (("cmh", persona_study.cmh), ("zhh", persona_study.zhh))
    }
    return {
        "pushes": pushes,
        "world": persona_study,
        "target": target,
        "membership": membership,
        "account_request": account_request,
        "deactivated": deactivated,
        "compliance": {
            "cmh": _compliance_data(persona_study.cmh),
            "zhh": _compliance_data(persona_study.zhh),
        },
        "notes": {
            "cmh": _notes_data(persona_study.cmh, personas),
            "zhh": _notes_data(persona_study.zhh, personas),
        },
        "record": RedcapRecordFactory(config=config),
        "pipeline_page": PipelinePage.objects.create(
            study=persona_study.study,
            name="Report",
            scope=PageScope.SCAN,
            path_template="qc/{timepoint}/{scan}.html",
            allow_scripts=True,
        ),
        "trigger": RedcapTriggerFactory(config=config),
    }


def url_for(name, objects, site="cmh"):
    world = objects["world"]
    data = getattr(world, site)
    compliance = objects["compliance"][site]
    notes = objects["notes"][site]
    kwargs = {
        "qc:study_detail": {"nickname": "SPINS"},
        "qc:study_readme_edit": {"nickname": "SPINS"},
        "qc:study_progress": {"nickname": "SPINS"},
        "qc:qc_search_export": {"export_format": "csv"},
        "api:study_detail": {"nickname": "SPINS"},
        "api:study_timepoints": {"nickname": "SPINS"},
        "api:blacklist": {"nickname": "SPINS"},
        "api:checklist": {"nickname": "SPINS"},
        "api:qc_metadata": {"nickname": "SPINS"},
        "api:gold_standards": {"nickname": "SPINS"},
        "api:timepoint_detail": {"name": data.timepoint.name},
        "api:session": {"session_id": data.session.name},
        "api:session_sign_off": {"session_id": data.session.name},
        "api:scan": {"name": data.scan.name},
        "api:scan_qc": {"name": data.scan.name},
        "api:header_diff": {"name": data.scan.name},
        "qc:timepoint_detail": {"name": data.timepoint.name},
        "deletion:timepoint": {"name": data.timepoint.name},
        "deletion:session": {"session_id": data.session.name},
        "deletion:scan": {"name": data.scan.name},
        "qc:scan_detail": {"name": data.scan.name},
        "qc:scan_review": {"name": data.scan.name},
        "qc:session_sign_off": {"session_id": data.session.name},
        "qc:timepoint_history": {"name": data.timepoint.name},
        "qc:scan_history": {"name": data.scan.name},
        "qc:comment_add": {"name": data.timepoint.name},
        "qc:comment_edit": {"pk": notes.comment.pk},
        "qc:comment_delete": {"pk": notes.comment.pk},
        "qc:finding_report": {"name": data.timepoint.name},
        "qc:finding_note_add": {"pk": notes.finding.pk},
        "qc:compliance:study_compliance": {"nickname": "SPINS"},
        "qc:compliance:study_compliance_csv": {"nickname": "SPINS"},
        "qc:compliance:resolve_deviation": {"name": compliance.scan.name},
        "qc:compliance:dismiss_missing_scans": {"session_id": compliance.session.name},
        "qc:compliance:repair_sidecar": {"name": compliance.scan.name},
        "studies:archive_file": {"study": "SPINS", "relative_path": data.image},
        "pipelines:report": {"pk": objects["pipeline_page"].pk, "relative_path": data.image},
        "redcap:link_record": {"pk": objects["record"].pk},
        "redcap:retry_trigger": {"pk": objects["trigger"].pk},
        "redcap:dismiss_survey": {"session_id": data.session.name},
        "integrations:push_again": {"pk": objects["pushes"][site].pk},
        "integrations:new_issue": {"name": data.timepoint.name},
        "accounts:request_detail": {"pk": objects["account_request"].pk},
        "accounts:request_approve": {"pk": objects["account_request"].pk},
        "accounts:request_reject": {"pk": objects["account_request"].pk},
        "accounts:user_detail": {"pk": objects["target"].pk},
        "accounts:user_grant": {"pk": objects["target"].pk},
        "accounts:user_revoke": {
            "pk": objects["target"].pk,
            "membership_pk": objects["membership"].pk,
        },
        "accounts:user_deactivate": {"pk": objects["target"].pk},
        "accounts:user_reactivate": {"pk": objects["deactivated"].pk},
        "accounts:study_members": {"nickname": "SPINS"},
        "notifications:study_recipients": {"nickname": "SPINS"},
        "accounts:study_member_grant": {"nickname": "SPINS"},
        "accounts:study_member_revoke": {
            "nickname": "SPINS",
            "membership_pk": objects["membership"].pk,
        },
    }.get(name, {})
    return reverse(name, kwargs=kwargs)


def post_data(name, objects, site="cmh"):
    """A valid form for each mutating URL, so an allowed POST succeeds."""
    world = objects["world"]
    data = getattr(world, site)
    compliance = objects["compliance"][site]
    return {
        "qc:scan_review": {"state": "flagged", "comment": "motion"},
        "qc:session_sign_off": {"approve_scan_ids": [data.scan.pk]},
        "qc:comment_add": {"text": "The participant asked for a break."},
        "qc:comment_edit": {"text": "Arrived 20 minutes late."},
        "qc:finding_report": {"description": "An enlarged ventricle in the T1."},
        "qc:finding_note_add": {"text": "The PI called the participant.", "marks_resolved": "on"},
        "qc:study_readme_edit": {"text": "# SPINS\n\nScan notes.", "action": "save"},
        "deletion:timepoint": {"reason": "Entered under the wrong subject ID."},
        "deletion:session": {"reason": "Scanned twice by mistake."},
        "deletion:scan": {"reason": "Test series, not part of the protocol."},
        "qc:compliance:resolve_deviation": {
            "header_diff": compliance.header_diff.pk,
            "field": "EchoTime",
            "decision": "accepted",
            "reason": "The site's scanner rounds the echo time.",
        },
        "qc:compliance:dismiss_missing_scans": {"reason": "The participant stopped the session."},
        "qc:compliance:repair_sidecar": {"action": "removed"},
        "redcap:dismiss_survey": {"reason": "The participant left before the survey."},
        "integrations:new_issue": {"title": "Motion", "body": "Heavy motion in RST."},
        "accounts:profile": {"first_name": "Pat", "last_name": "Doe"},
        "accounts:request_approve": {"scopes": [str(world.study.pk)], "role": Role.VIEWER},
        "accounts:request_reject": {"reason": "Not part of the lab."},
        "accounts:user_grant": {"study": world.study.pk, "role": Role.RA},
        "accounts:study_member_grant": {
            "study": world.study.pk,
            "email": "target@example.org",
            "role": Role.QC_REVIEWER,
        },
    }.get(name, {})


def client_for(client, personas, persona):
    if personas[persona] is not None:
        client.force_login(personas[persona])
    return client


def writes():
    return (
        ScanReview.objects.count(),
        SessionSignOff.objects.count(),
        QCEvent.objects.count(),
        AccessEvent.objects.count(),
        StudyMembership.objects.count(),
        DeviationResolution.objects.count(),
        MissingScanDismissal.objects.count(),
        TimepointComment.objects.count(),
        TimepointCommentRevision.objects.count(),
        TimepointComment.objects.filter(deleted_at__isnull=False).count(),
        IncidentalFinding.objects.count(),
        FindingNote.objects.count(),
        StudyReadme.objects.count(),
        XnatPush.objects.count(),
        IssueRequest.objects.count(),
        DeletionEvent.objects.count(),
        SidecarRepair.objects.count(),
    )


def check_status(response, expected):
    if expected == LOGIN:
        assert response.status_code == 302
        assert response.url.startswith(f"{reverse('account_login')}?next=")
    elif expected == ADMIN_LOGIN:
        assert response.status_code == 302
        assert response.url.startswith(reverse("admin:login"))
    else:
        assert response.status_code == expected


@pytest.mark.parametrize(("name", "method", "persona", "expected"), CASES)
def test_permission_matrix(client, objects, personas, name, method, persona, expected):
    client = client_for(client, personas, persona)
    before = writes()
    url = url_for(name, objects)
    response = client.get(url) if method == "GET" else client.post(url, post_data(name, objects))

    check_status(response, expected)
    if expected != FOUND:
        assert writes() == before


# URLs that name one site's data, with the status a study-wide QC reviewer gets for the other
# site's (ZHH) objects; the reviewer limited to CMH must get 404 for all of them.
SITE_BOUND = {
    ("qc:timepoint_detail", "GET"): OK,
    ("qc:scan_detail", "GET"): OK,
    ("qc:scan_review", "POST"): FOUND,
    ("qc:session_sign_off", "GET"): OK,
    ("qc:session_sign_off", "POST"): FOUND,
    ("qc:compliance:resolve_deviation", "POST"): FOUND,
    ("qc:compliance:dismiss_missing_scans", "POST"): FOUND,
    ("qc:compliance:repair_sidecar", "POST"): FOUND,
    ("studies:archive_file", "GET"): OK,
    ("pipelines:report", "GET"): OK,
    ("api:timepoint_detail", "GET"): OK,
    ("api:session", "GET"): OK,
    ("api:scan", "GET"): OK,
    ("redcap:dismiss_survey", "POST"): DENIED,
    ("qc:timepoint_history", "GET"): OK,
    ("qc:scan_history", "GET"): OK,
    ("qc:comment_add", "POST"): DENIED,
    ("qc:comment_edit", "POST"): DENIED,
    ("qc:comment_delete", "GET"): DENIED,
    ("qc:comment_delete", "POST"): DENIED,
    ("qc:finding_report", "POST"): FOUND,
    ("qc:finding_note_add", "POST"): DENIED,
    ("integrations:push_again", "POST"): DENIED,
    ("integrations:new_issue", "GET"): OK,
    ("integrations:new_issue", "POST"): FOUND,
    ("deletion:timepoint", "GET"): DENIED,
    ("deletion:session", "POST"): DENIED,
    ("deletion:scan", "POST"): DENIED,
}


@pytest.mark.parametrize(("name", "method"), SITE_BOUND)
def test_site_reviewer_other_site_404(client, objects, personas, name, method):
    client = client_for(client, personas, "site_reviewer")
    before = writes()
    url = url_for(name, objects, site="zhh")
    data = post_data(name, objects, site="zhh")
    response = client.get(url) if method == "GET" else client.post(url, data)

    assert response.status_code == 404
    assert writes() == before


@pytest.mark.parametrize(
    ("name", "method", "expected"), [(*key, status) for key, status in SITE_BOUND.items()]
)
def test_qc_reviewer_other_site_allowed(client, objects, personas, name, method, expected):
    client = client_for(client, personas, "qc_reviewer")
    url = url_for(name, objects, site="zhh")
    data = post_data(name, objects, site="zhh")
    response = client.get(url) if method == "GET" else client.post(url, data)

    assert response.status_code == expected


def _source_of(resolver, outer_source):
    """Name where a top-level include comes from: its URLconf module, or "admin site"."""
    if outer_source:
        return outer_source
    if resolver.namespace == admin_site.name:
        return "admin site"
    urlconf = resolver.urlconf_name
    return urlconf if isinstance(urlconf, str) else getattr(urlconf, "__name__", "")


def collect_urls(patterns, namespace="", prefix="", source=""):
    """Return (URL name, route, source) for every named URL under `patterns`."""
    found = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = namespace
            if pattern.namespace:
                inner = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
            found += collect_urls(pattern.url_patterns, inner, route, _source_of(pattern, source))
        elif isinstance(pattern, URLPattern) and pattern.name:
            name = f"{namespace}:{pattern.name}" if namespace else pattern.name
            found.append((name, route, source))
    return found


def is_allow_listed(route, source):
    prefix = ALLOW_LISTED_SOURCES.get(source)
    return prefix is not None and route.startswith(prefix)


def test_matrix_covers_every_url():
    urls = collect_urls(get_resolver().url_patterns)
    names = {name for name, route, source in urls if not is_allow_listed(route, source)}
    covered = {name for name, _ in MATRIX} | NOT_PERSONA_URLS
    all_names = {name for name, _, _ in urls}

    assert names, "no URLs found in the URLconf"
    assert names - covered == set(), "URLs missing from MATRIX"
    assert covered - all_names == set(), "MATRIX names URLs that no longer exist"


def test_allow_list_holds_only_allauth_and_admin():
    urls = collect_urls(get_resolver().url_patterns)
    allow_listed = {
        route.split("/")[0] for name, route, source in urls if is_allow_listed(route, source)
    }

    assert allow_listed == {"accounts", "admin"}


def test_every_persona_column_filled():
    for key, statuses in MATRIX.items():
        assert len(statuses) == len(PERSONAS), key


@pytest.mark.parametrize(
    "name",
    ["qc:study_detail", "qc:timepoint_detail", "qc:scan_detail", "qc:session_sign_off"],
)
def test_unknown_objects_404(reviewer_client, name):
    kwargs = {
        "qc:study_detail": {"nickname": "NOPE"},
        "qc:timepoint_detail": {"name": "SPN01_CMH_9999_01"},
        "qc:scan_detail": {"name": "SPN01_CMH_9999_01_01_T1_02"},
        "qc:session_sign_off": {"session_id": "SPN01_CMH_9999_01_01"},
    }[name]

    assert reviewer_client.get(reverse(name, kwargs=kwargs)).status_code == 404


@pytest.mark.parametrize(
    ("name", "expected_writes"),
    # Flagging writes a review and its event; signing off approves the new scan (a review
    # and an event), writes the sign-off and its own event.
    [("qc:scan_review", (1, 0, 1)), ("qc:session_sign_off", (1, 1, 2))],
)
def test_reviewer_post_writes(client, objects, personas, name, expected_writes):
    client = client_for(client, personas, "qc_reviewer")
    response = client.post(url_for(name, objects), post_data(name, objects))

    assert response.status_code == 302
    assert writes()[:3] == expected_writes


@pytest.mark.parametrize(
    ("name", "written"),
    # Each decision is a row of its own with an audit event.
    [
        ("qc:compliance:resolve_deviation", DeviationResolution),
        ("qc:compliance:dismiss_missing_scans", MissingScanDismissal),
    ],
)
def test_reviewer_compliance_post_writes(client, objects, personas, name, written):
    client = client_for(client, personas, "qc_reviewer")
    events_before = QCEvent.objects.count()
    response = client.post(url_for(name, objects), post_data(name, objects))

    assert response.status_code == 302
    assert written.objects.count() == 1
    assert QCEvent.objects.count() == events_before + 1
