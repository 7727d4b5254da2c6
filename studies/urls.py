from django.urls import path

from studies import views

app_name = "studies"

urlpatterns = [
    path("<str:study>/<path:relative_path>", views.archive_file, name="archive_file"),
]
