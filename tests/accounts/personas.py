"""The personas of the permission tests and the two-site study they hold roles in."""

from types import SimpleNamespace

from accounts.models import Role, StudyMembership
from tests.studies.factories import (
    ScanFactory,
    SessionFactory,
    SiteFactory,
    StudyFactory,
    StudySiteFactory,
    TimepointFactory,
    UserFactory,
)

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16

# Persona name -> (role in SPINS or None, site name or None for all sites). Anonymous, the
# outsider, the dashboard admin and the inactive user are handled apart.
PERSONA_ROLES = {
    "viewer": (Role.VIEWER, None),
    "site_reviewer": (Role.QC_REVIEWER, "CMH"),
    "qc_reviewer": (Role.QC_REVIEWER, None),
    "ra": (Role.RA, None),
    "study_admin": (Role.STUDY_ADMIN, None),
}
PERSONA_NAMES = (
    "anonymous",
    "outsider",
    "viewer",
    "site_reviewer",
    "qc_reviewer",
    "ra",
    "study_admin",
    "dashboard_admin",
    "inactive",
)


def _site_data(study_site, archive):
    session = SessionFactory(timepoint=TimepointFactory(study_site=study_site))
    image = f"qc/{session.timepoint.name}/T1.png"
    (archive / image).parent.mkdir(parents=True, exist_ok=True)
    (archive / image).write_bytes(PNG_BYTES)
    scan = ScanFactory(
        session=session,
        qc_images=[{"file": image, "title": "T1", "caption": ""}],
    )
    return SimpleNamespace(
        study_site=study_site,
        site=study_site.site,
        timepoint=session.timepoint,
        session=session,
        scan=scan,
        image=image,
    )


def make_persona_study(archive):
    """SPINS at CMH (code SPN01) and ZHH (code SPN01), with one timepoint each; `archive` is the
    study folder."""
    study = StudyFactory(nickname="SPINS", archive_path=str(archive))
    cmh = StudySiteFactory(study=study, site=SiteFactory(name="CMH"), code="SPN01")
    zhh = StudySiteFactory(study=study, site=SiteFactory(name="ZHH"), code="SPN01")
    (archive / "metadata").mkdir(parents=True, exist_ok=True)
    (archive / "metadata" / "checklist.csv").write_text("timepoint,comment\n")
    return SimpleNamespace(study=study, cmh=_site_data(cmh, archive), zhh=_site_data(zhh, archive))


def make_personas(world):
    """Create every persona; return a dict of name -> user (None for anonymous)."""
    users = {"anonymous": None, "outsider": UserFactory(username="outsider")}
    sites = {"CMH": world.cmh.site, "ZHH": world.zhh.site}
    for name, (role, site) in PERSONA_ROLES.items():
        user = UserFactory(username=name)
        StudyMembership.objects.create(
            user=user, study=world.study, site=sites.get(site), role=role
        )
        users[name] = user
    users["dashboard_admin"] = UserFactory(
        username="dashboard_admin", is_dashboard_admin=True, is_staff=True, is_superuser=True
    )
    inactive = UserFactory(username="inactive", is_active=False)
    StudyMembership.objects.create(user=inactive, study=world.study, role=Role.STUDY_ADMIN)
    users["inactive"] = inactive
    return users
