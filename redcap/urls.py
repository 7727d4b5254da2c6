from django.urls import path

from redcap import views

app_name = "redcap"

urlpatterns = [
    path("trigger/<slug:secret>/", views.trigger, name="trigger"),
    path("unmatched/", views.unmatched_records, name="unmatched_records"),
    path("records/<int:pk>/link/", views.link_record, name="link_record"),
    path("failed/", views.failed_triggers, name="failed_triggers"),
    path("triggers/<int:pk>/retry/", views.retry_trigger, name="retry_trigger"),
    path("sessions/<str:session_id>/dismiss/", views.dismiss_survey, name="dismiss_survey"),
]
