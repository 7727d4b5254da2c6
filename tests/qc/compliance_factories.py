"""factory-boy factories for gold standards and header comparison settings, and helpers that
build a study site whose scans can be compared."""

import factory

from qc.models import GoldStandard
from studies.models import HeaderComparisonSettings
from tests.studies.factories import (
    ExpectedScanFactory,
    ScantypeFactory,
    SiteFactory,
    StudyFactory,
    StudySiteFactory,
)


class GoldStandardFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GoldStandard

    study = factory.SubFactory(StudyFactory)
    site = factory.SubFactory(SiteFactory)
    scantype = factory.SubFactory(ScantypeFactory)
    sidecar = factory.LazyFunction(
        lambda: {"SeriesDescription": "Sag T1 Bravo", "RepetitionTime": 2.3, "EchoTime": 0.003}
    )
    bvals = None
    source_path = factory.LazyAttribute(
        lambda standard: f"metadata/standards/{standard.scantype.tag}.json"
    )


class HeaderComparisonSettingsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = HeaderComparisonSettings

    study = factory.SubFactory(StudyFactory)
    site = None
    ignored_fields = factory.LazyFunction(list)
    tolerances = factory.LazyFunction(dict)


def make_compliance_site(nickname="SPINS", site="CMH", code="SPN01", tags=None):
    """A study site expecting one scan of each tag; `tags` maps tag to qc_type."""
    study_site = StudySiteFactory(
        study=StudyFactory(nickname=nickname), site=SiteFactory(name=site), code=code
    )
    for tag, qc_type in (tags or {"T1": "anat", "RST": "fmri", "DTI60-1000": "dti"}).items():
        ExpectedScanFactory(
            study_site=study_site,
            scantype=ScantypeFactory(tag=tag, qc_type=qc_type),
            count=1,
            phantom_count=1,
        )
    return study_site
