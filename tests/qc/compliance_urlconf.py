"""The project's URLconf with the compliance URLs included in the `qc` namespace, as
`qc.urls` includes them. Tests of the compliance pages use it so they run whether or not
`qc.urls` already includes `qc.compliance_urls`."""

from django.urls import URLResolver, include, path

from qc import urls as qc_urls
from qcdash import urls as project_urls


def _includes_compliance(patterns):
    return any(
        isinstance(pattern, URLResolver) and pattern.namespace == "compliance"
        for pattern in patterns
    )


qc_patterns = list(qc_urls.urlpatterns)
if not _includes_compliance(qc_patterns):
    qc_patterns.append(path("", include("qc.compliance_urls")))

urlpatterns = [
    pattern
    for pattern in project_urls.urlpatterns
    if not (isinstance(pattern, URLResolver) and pattern.namespace == "qc")
]
urlpatterns.append(path("", include((qc_patterns, "qc"))))
