from django.urls import include, path, re_path

from qc import search_views, study_extras_views, views

app_name = "qc"

urlpatterns = [
    path("", views.study_list, name="study_list"),
    path("studies/<str:nickname>/", views.study_detail, name="study_detail"),
    path("timepoints/<str:name>/", views.timepoint_detail, name="timepoint_detail"),
    path(
        "studies/<str:nickname>/readme/",
        study_extras_views.study_readme_edit,
        name="study_readme_edit",
    ),
    path(
        "studies/<str:nickname>/progress/",
        study_extras_views.study_progress,
        name="study_progress",
    ),
    path("next-session/", views.next_session, name="next_session"),
    path("scans/<str:name>/", views.scan_detail, name="scan_detail"),
    path("scans/<str:name>/review/", views.scan_review, name="scan_review"),
    path("sessions/<str:session_id>/sign-off/", views.session_sign_off, name="session_sign_off"),
    # Search and QC search (qc/search_views.py).
    path("search/", search_views.search_page, name="search"),
    path("search/suggest/", search_views.search_suggest, name="search_suggest"),
    path("qc-search/", search_views.qc_search, name="qc_search"),
    re_path(
        r"^qc-search/export\.(?P<export_format>csv|json)$",
        search_views.qc_search_export,
        name="qc_search_export",
    ),
    # Timepoint comments, incidental findings and history pages (qc/notes_urls.py).
    path("", include("qc.notes_urls")),
    # Protocol compliance (qc/compliance_urls.py), in the nested "qc:compliance" namespace.
    path("", include("qc.compliance_urls")),
]
