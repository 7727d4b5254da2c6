"""URLs of the JSON API, mounted at /api/v1/."""

from csp.decorators import csp_update
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from api import views

app_name = "api"

# Swagger UI sets style attributes from its scripts, which the site-wide policy forbids.
docs_view = csp_update({"style-src": ["'unsafe-inline'"]})(
    SpectacularSwaggerSplitView.as_view(url_name="api:schema")
)

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", docs_view, name="docs"),
    path("studies/", views.StudyListView.as_view(), name="study_list"),
    path("studies/<str:nickname>/", views.StudyDetailView.as_view(), name="study_detail"),
    path(
        "studies/<str:nickname>/timepoints/",
        views.StudyTimepointsView.as_view(),
        name="study_timepoints",
    ),
    path("studies/<str:nickname>/blacklist/", views.BlacklistView.as_view(), name="blacklist"),
    path("studies/<str:nickname>/checklist/", views.ChecklistView.as_view(), name="checklist"),
    path(
        "studies/<str:nickname>/qc-metadata/",
        views.SubjectMetadataView.as_view(),
        name="qc_metadata",
    ),
    path(
        "studies/<str:nickname>/gold-standards/",
        views.GoldStandardListView.as_view(),
        name="gold_standards",
    ),
    path("timepoints/<str:name>/", views.TimepointDetailView.as_view(), name="timepoint_detail"),
    path("sessions/<str:session_id>/", views.SessionView.as_view(), name="session"),
    path(
        "sessions/<str:session_id>/sign-off/",
        views.SessionSignOffView.as_view(),
        name="session_sign_off",
    ),
    path("scans/<str:name>/", views.ScanView.as_view(), name="scan"),
    path("scans/<str:name>/qc/", views.ScanQCView.as_view(), name="scan_qc"),
    path("scans/<str:name>/header-diff/", views.HeaderDiffView.as_view(), name="header_diff"),
]
