"""The role rules of accounts/permissions.py, without going through views."""

import pytest
from django.contrib.auth.models import AnonymousUser

from accounts import permissions
from accounts.models import Role, StudyMembership
from qc.models import IncidentalFinding
from qc.notes_services import add_comment, report_finding
from studies.models import Scan, Timepoint
from tests.studies.factories import StudyFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_roles_are_ordered(personas, persona_study):
    study = persona_study.study

    assert permissions.role_in(personas["viewer"], study) == Role.VIEWER
    assert not permissions.can_review(personas["viewer"], study)
    assert permissions.can_review(personas["qc_reviewer"], study)
    assert not permissions.can_comment(personas["qc_reviewer"], study)
    assert permissions.can_comment(personas["ra"], study)
    assert permissions.can_handle_redcap(personas["ra"], study)
    assert not permissions.can_manage_members(personas["ra"], study)
    assert permissions.can_manage_members(personas["study_admin"], study)
    assert permissions.can_manage_members(personas["dashboard_admin"], study)
    assert not permissions.can_manage_users(personas["study_admin"])
    assert permissions.can_manage_users(personas["dashboard_admin"])


def test_inactive_and_outsider_have_no_role(personas, persona_study):
    study = persona_study.study

    assert permissions.role_in(personas["inactive"], study) is None
    assert permissions.role_in(personas["outsider"], study) is None
    assert not permissions.visible_studies(personas["inactive"]).exists()


def test_site_role_counts_only_at_its_site(personas, persona_study):
    reviewer = personas["site_reviewer"]
    study = persona_study.study

    assert permissions.can_review(reviewer, study, persona_study.cmh.site)
    assert not permissions.can_review(reviewer, study, persona_study.zhh.site)
    assert permissions.allowed_site_ids(reviewer, study) == {persona_study.cmh.site.pk}
    assert not permissions.can_manage_members(reviewer, study)


def test_mixed_roles_take_highest_per_site(persona_study):
    user = UserFactory(username="mixed")
    study = persona_study.study
    StudyMembership.objects.create(user=user, study=study, role=Role.VIEWER)
    StudyMembership.objects.create(
        user=user, study=study, site=persona_study.cmh.site, role=Role.QC_REVIEWER
    )

    assert permissions.can_review(user, study, persona_study.cmh.site)
    assert not permissions.can_review(user, study, persona_study.zhh.site)
    assert permissions.allowed_site_ids(user, study) is None


def test_visible_querysets_follow_site(personas, persona_study):
    reviewer = personas["site_reviewer"]
    cmh = persona_study.cmh

    assert list(permissions.visible_timepoints(reviewer)) == [cmh.timepoint]
    assert list(permissions.visible_sessions(reviewer)) == [cmh.session]
    assert list(permissions.visible_scans(reviewer)) == [cmh.scan]
    assert permissions.visible_timepoints(personas["qc_reviewer"]).count() == 2
    assert permissions.visible_timepoints(personas["dashboard_admin"]).count() == 2
    assert permissions.visible_timepoints(personas["outsider"]).count() == 0


def test_get_scan_filters_any_queryset(personas, persona_study):
    from django.http import Http404

    with pytest.raises(Http404):
        permissions.get_scan(
            personas["site_reviewer"], persona_study.zhh.scan.name, queryset=Scan.objects.all()
        )
    with pytest.raises(Http404):
        permissions.get_timepoint(
            personas["site_reviewer"],
            persona_study.zhh.timepoint.name,
            queryset=Timepoint.objects.all(),
        )


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("qc/SPN01_CMH_0001_01/T1.png", True),
        ("data/nii/SPN01_CMH_0001_01/SPN01_CMH_0001_01_01_T1_02_SagT1.nii.gz", True),
        ("qc/SPN01_ZHH_0001_01/T1.png", False),
        ("data/nii/SPN01_CMH_0001_01/SPN01_ZHH_0001_01_01_T1_02_SagT1.nii.gz", False),
        ("metadata/checklist.csv", False),
        ("qc/T1.png", False),
    ],
)
def test_site_reviewer_file_rule(personas, persona_study, path, expected):
    reviewer = personas["site_reviewer"]

    assert permissions.can_view_file(reviewer, persona_study.study, path) is expected
    assert permissions.can_view_file(personas["viewer"], persona_study.study, path) is True


def test_other_study_invisible(personas, persona_study):
    other = StudyFactory(nickname="OTHER")

    assert permissions.role_in(personas["study_admin"], other) is None
    assert list(permissions.visible_studies(personas["study_admin"])) == [persona_study.study]
    assert not permissions.can_view_files(personas["study_admin"], other)


def test_backend_preloads_memberships(client, personas, persona_study, django_assert_num_queries):
    from accounts.backends import AuthenticationBackend

    user = personas["site_reviewer"]
    with django_assert_num_queries(1):
        loaded = AuthenticationBackend().get_user(user.pk)
        assert permissions.can_review(loaded, persona_study.study, persona_study.cmh.site)
        assert not permissions.can_review(loaded, persona_study.study, persona_study.zhh.site)


def test_backend_skips_inactive(personas):
    from accounts.backends import AuthenticationBackend

    assert AuthenticationBackend().get_user(personas["inactive"].pk) is None


def test_forget_memberships_after_grant(personas, persona_study):
    user = personas["outsider"]
    assert permissions.role_in(user, persona_study.study) is None

    StudyMembership.objects.create(user=user, study=persona_study.study, role=Role.RA)
    permissions.forget_memberships(user)

    assert permissions.role_in(user, persona_study.study) == Role.RA


# --- Incidental findings and comments -------------------------------------------------------


def _findings_seen(user):
    return set(
        permissions.visible_findings(user, IncidentalFinding.objects.all()).values_list(
            "timepoint__study_site__site__name", flat=True
        )
    )


@pytest.fixture
def findings(persona_study, personas):
    """A finding at each site, both reported by the study-wide QC reviewer."""
    for site_data in (persona_study.cmh, persona_study.zhh):
        report_finding(
            timepoint=site_data.timepoint,
            reporter=personas["qc_reviewer"],
            description=f"Finding at {site_data.site.name}.",
        )


@pytest.mark.parametrize(
    ("persona", "sites"),
    [
        ("anonymous", set()),
        ("outsider", set()),
        ("inactive", set()),
        ("viewer", set()),
        ("site_reviewer", set()),
        ("ra", set()),
        ("qc_reviewer", {"CMH", "ZHH"}),
        ("study_admin", {"CMH", "ZHH"}),
        ("dashboard_admin", {"CMH", "ZHH"}),
    ],
)
def test_visible_findings_by_persona(personas, persona_study, findings, persona, sites):
    user = personas[persona]
    if user is None:
        user = AnonymousUser()

    assert _findings_seen(user) == sites


@pytest.mark.parametrize(
    ("flags", "site_name", "sites"),
    [
        ({"is_primary_contact": True}, None, {"CMH", "ZHH"}),
        ({"is_staff_contact": True}, None, {"CMH", "ZHH"}),
        ({"is_primary_contact": True}, "CMH", {"CMH"}),
        ({}, None, set()),
    ],
)
def test_visible_findings_for_contacts(persona_study, findings, flags, site_name, sites):
    user = UserFactory(username="contact")
    site = {"CMH": persona_study.cmh.site, None: None}[site_name]
    StudyMembership.objects.create(
        user=user, study=persona_study.study, site=site, role=Role.VIEWER, **flags
    )

    assert _findings_seen(user) == sites
    assert permissions.can_follow_up_findings(
        user, persona_study.study, persona_study.cmh.site
    ) is bool(sites)


def test_site_study_admin_follows_up_own_site_only(persona_study):
    user = UserFactory(username="cmh_admin")
    StudyMembership.objects.create(
        user=user, study=persona_study.study, site=persona_study.cmh.site, role=Role.STUDY_ADMIN
    )

    assert permissions.can_follow_up_findings(user, persona_study.study, persona_study.cmh.site)
    assert not permissions.can_follow_up_findings(user, persona_study.study, persona_study.zhh.site)


def test_reporter_cannot_follow_up(personas, persona_study):
    assert permissions.can_report_finding(personas["qc_reviewer"], persona_study.study)
    assert not permissions.can_report_finding(personas["viewer"], persona_study.study)
    assert not permissions.can_follow_up_findings(personas["qc_reviewer"], persona_study.study)


def test_only_author_edits_comment(personas, persona_study):
    study, site = persona_study.study, persona_study.cmh.site
    comment = add_comment(
        timepoint=persona_study.cmh.timepoint, author=personas["ra"], text="Arrived late."
    )

    assert permissions.can_edit_comment(personas["ra"], comment, study, site)
    assert not permissions.can_edit_comment(personas["study_admin"], comment, study, site)
    assert not permissions.can_edit_comment(personas["dashboard_admin"], comment, study, site)
    StudyMembership.objects.filter(user=personas["ra"]).update(role=Role.VIEWER)
    permissions.forget_memberships(personas["ra"])
    assert not permissions.can_edit_comment(personas["ra"], comment, study, site)
