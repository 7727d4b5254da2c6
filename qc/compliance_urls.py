"""URLs of the protocol-compliance pages and actions, included from `qc.urls`."""

from django.urls import path

from qc import compliance_views

app_name = "compliance"

urlpatterns = [
    path(
        "studies/<str:nickname>/compliance/",
        compliance_views.study_compliance,
        name="study_compliance",
    ),
    path(
        "studies/<str:nickname>/compliance.csv",
        compliance_views.study_compliance_csv,
        name="study_compliance_csv",
    ),
    path(
        "scans/<str:name>/deviations/",
        compliance_views.resolve_deviation,
        name="resolve_deviation",
    ),
    path(
        "scans/<str:name>/sidecar-repair/",
        compliance_views.repair_sidecar,
        name="repair_sidecar",
    ),
    path(
        "sessions/<str:session_id>/missing-scans/dismiss/",
        compliance_views.dismiss_missing_scans,
        name="dismiss_missing_scans",
    ),
]
