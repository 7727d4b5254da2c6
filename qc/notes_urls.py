"""URLs of timepoint comments, incidental findings and history pages, in the "qc" namespace."""

from django.urls import path

from qc import notes_views

urlpatterns = [
    path("timepoints/<str:name>/history/", notes_views.timepoint_history, name="timepoint_history"),
    path("scans/<str:name>/history/", notes_views.scan_history, name="scan_history"),
    path("timepoints/<str:name>/comments/", notes_views.comment_add, name="comment_add"),
    path("comments/<int:pk>/edit/", notes_views.comment_edit, name="comment_edit"),
    path("comments/<int:pk>/delete/", notes_views.comment_delete, name="comment_delete"),
    path("timepoints/<str:name>/findings/", notes_views.finding_report, name="finding_report"),
    path("findings/<int:pk>/notes/", notes_views.finding_note_add, name="finding_note_add"),
]
