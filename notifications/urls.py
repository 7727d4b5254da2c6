from django.urls import path

from notifications import views

app_name = "notifications"

urlpatterns = [
    path("notifications/preferences/", views.preferences, name="preferences"),
    path("notifications/failed/", views.failed_notifications, name="failed"),
    path("studies/<str:nickname>/notifications/", views.study_recipients, name="study_recipients"),
]
