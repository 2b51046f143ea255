"""WSGI entry point (gunicorn cpo_platform.wsgi)."""

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cpo_platform.settings")

application = get_wsgi_application()

# Import every view now, then keep what is loaded out of the garbage collector's full passes:
# a page of the Locations list allocates thousands of objects, and each full pass would walk
# all of Django and the app along with them (bench/: about 15% of a page's CPU, and most of
# its slowest pages). gc.freeze() moves objects to a permanent generation, nothing else.
get_resolver().url_patterns  # noqa: B018 - imports the URLconf and its views
gc.freeze()
