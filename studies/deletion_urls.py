from django.urls import path

from studies import deletion_views

app_name = "deletion"

urlpatterns = [
    path("timepoints/<str:name>/delete/", deletion_views.delete_timepoint, name="timepoint"),
    path("sessions/<str:session_id>/delete/", deletion_views.delete_session, name="session"),
    path("scans/<str:name>/delete/", deletion_views.delete_scan, name="scan"),
]
