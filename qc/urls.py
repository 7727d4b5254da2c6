from django.urls import path

from qc import views

app_name = "qc"

urlpatterns = [
    path("", views.study_list, name="study_list"),
    path("studies/<str:nickname>/", views.study_detail, name="study_detail"),
    path("timepoints/<str:name>/", views.timepoint_detail, name="timepoint_detail"),
    path("scans/<str:name>/", views.scan_detail, name="scan_detail"),
    path("scans/<str:name>/review/", views.scan_review, name="scan_review"),
    path("sessions/<str:session_id>/sign-off/", views.session_sign_off, name="session_sign_off"),
]
