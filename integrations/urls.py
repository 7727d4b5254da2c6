from django.urls import path

from integrations import views

app_name = "integrations"

urlpatterns = [
    path("xnat/failed-pushes/", views.failed_pushes, name="failed_pushes"),
    path("xnat/pushes/<int:pk>/push-again/", views.push_again, name="push_again"),
    path("timepoints/<str:name>/issues/new/", views.new_issue, name="new_issue"),
]
