"""The Celery application. Tasks live in the apps (ocpi/tasks.py); settings use CELERY_*."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cpo_platform.settings")

app = Celery("cpo_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
