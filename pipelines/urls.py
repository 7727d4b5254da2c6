from django.urls import path

from pipelines import views

app_name = "pipelines"

urlpatterns = [
    path("reports/<int:pk>/<path:relative_path>", views.report, name="report"),
]
