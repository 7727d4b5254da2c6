"""Root URLconf: the admin, sign-in, archive files and the QC pages."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("files/", include("studies.urls")),
    path("", include("qc.urls")),
]
