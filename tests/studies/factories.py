"""factory-boy factories: each builds a valid object with no arguments."""

import factory

from accounts.models import User
from studies.models import (
    ExpectedScan,
    Scan,
    Scantype,
    Session,
    Site,
    Study,
    StudySite,
    Timepoint,
)

TEST_PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.org")
    password = factory.django.Password(TEST_PASSWORD)


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Study
        django_get_or_create = ["nickname"]

    nickname = factory.Sequence(lambda n: f"STUDY{n}")
    name = factory.LazyAttribute(lambda study: f"The {study.nickname} study")


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site
        django_get_or_create = ["name"]

    name = factory.Sequence(lambda n: f"S{n:02d}")


class StudySiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StudySite
        django_get_or_create = ["study", "site"]

    study = factory.SubFactory(StudyFactory)
    site = factory.SubFactory(SiteFactory)
    code = factory.Sequence(lambda n: f"STU{n:02d}")


class ScantypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Scantype
        django_get_or_create = ["tag"]

    tag = "T1"
    qc_type = "anat"


class ExpectedScanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExpectedScan
        django_get_or_create = ["study_site", "scantype"]

    study_site = factory.SubFactory(StudySiteFactory)
    scantype = factory.SubFactory(ScantypeFactory)
    count = 1
    phantom_count = 0


class TimepointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Timepoint

    study_site = factory.SubFactory(StudySiteFactory)
    study = factory.LazyAttribute(lambda timepoint: timepoint.study_site.study)
    name = factory.Sequence(lambda n: f"{{code}}_{{site}}_{n:04d}_01")
    is_phantom = False

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        study_site = kwargs["study_site"]
        kwargs["name"] = kwargs["name"].format(code=study_site.code, site=study_site.site.name)
        return super()._create(model_class, *args, **kwargs)


class SessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Session

    timepoint = factory.SubFactory(TimepointFactory)
    number = 1


class ScanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Scan

    session = factory.SubFactory(SessionFactory)
    scantype = factory.SubFactory(ScantypeFactory)
    series = factory.Sequence(lambda n: n % 90 + 2)
    description = "SagT1Bravo"
    name = factory.LazyAttribute(
        lambda scan: f"{scan.session.name}_{scan.scantype.tag}_{scan.series:02d}"
    )
    file_stem = factory.LazyAttribute(lambda scan: f"{scan.name}_{scan.description}")
    sidecar = factory.LazyFunction(
        lambda: {"SeriesDescription": "Sag T1 Bravo", "RepetitionTime": 2.3, "EchoTime": 0.003}
    )


class PhantomTimepointFactory(TimepointFactory):
    """A phantom timepoint, named `<code>_<site>_PHA_FBN<nnnn>`."""

    name = factory.Sequence(lambda n: f"{{code}}_{{site}}_PHA_FBN{n:04d}")
    is_phantom = True


class AltStudyCodeFactory(factory.django.DjangoModelFactory):
    """Another study code of a study site (datman's SiteTags)."""

    class Meta:
        model = "studies.AltStudyCode"
        django_get_or_create = ["study_site", "code"]

    study_site = factory.SubFactory(StudySiteFactory)
    code = factory.Sequence(lambda n: f"ALT{n:02d}")
