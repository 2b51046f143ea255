"""Finance staff pages, mounted under /staff/ (cpo_platform/urls.py); see billing/views.py."""

from django.urls import path

from . import views

app_name = "billing"

urlpatterns = [
    path("cdrs/export/", views.cdr_export, name="cdr_export"),
    path("settlement/", views.settlement, name="settlement"),
]
