"""OCPI URLs. Each path accepts an optional trailing slash (no redirects: PROTOCOL.md §10.8)."""

from django.urls import re_path

from .views import unknown_ocpi_path

urlpatterns = [
    re_path(r"^.*$", unknown_ocpi_path),
]
