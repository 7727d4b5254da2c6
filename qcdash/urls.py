"""Root URLconf: the admin, sign-in, archive files and the QC pages."""

from django.contrib import admin
from django.urls import include, path

from qcdash import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("", include("accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("files/", include("studies.urls")),
    path("redcap/", include("redcap.urls")),
    path("pipelines/", include("pipelines.urls")),
    path("api/v1/", include("api.urls")),
    path("", include("studies.deletion_urls")),
    path("", include("notifications.urls")),
    path("", include("integrations.urls")),
    path("", include("qc.urls")),
]
