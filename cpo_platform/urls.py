"""URL map: the admin and staff pages, and the OCPI API under /ocpi/."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("staff/", include("billing.urls")),
    path("ocpi/", include("ocpi.urls")),
]
