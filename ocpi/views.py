"""Base views of the OCPI layer: envelope out, auth in, errors mapped in one place."""

from django.conf import settings
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.views import APIView

from .envelope import ocpi_response
from .middleware import envelope_response
from .pagination import PageRequest, paginate


class OCPIView(APIView):
    """An OCPI endpoint. Handlers return `ocpi_response(...)` and raise OCPIError subclasses."""

    #: Versions, version details and credentials accept the registration token A.
    allow_token_a = False
    #: No DRF OPTIONS metadata: OCPI has no OPTIONS, so it is a 405 in the envelope.
    metadata_class = None

    @property
    def partner(self):
        return self.request.auth

    def initial(self, request, *args, **kwargs):
        try:
            super().initial(request, *args, **kwargs)
        except (exceptions.NotAuthenticated, exceptions.AuthenticationFailed):
            # DRF throttles only callers that passed authentication and permissions; a caller
            # without a valid token is counted too (by client IP, ocpi.throttling), so a flood
            # of bad tokens meets HTTP 429 like any other.
            self.check_throttles(request)
            raise


class OCPIListView(OCPIView):
    """A paginated Sender list: subclasses give the partner's queryset and the serializer."""

    def get_queryset(self):
        raise NotImplementedError

    def serialize(self, obj) -> dict:
        raise NotImplementedError

    def serialize_page(self, items: list) -> list[dict]:
        return [self.serialize(obj) for obj in items]

    def get(self, request, *args, **kwargs):
        page_request = PageRequest.from_query(request.query_params)
        page = paginate(
            self.get_queryset(),
            page_request,
            base_url=settings.OCPI_BASE_URL + request.path,
        )
        return ocpi_response(self.serialize_page(page.items), headers=page.headers)


@csrf_exempt  # OCPI callers have no CSRF cookie: a POST here is a 404 envelope, not a 403 page
def unknown_ocpi_path(request, *args, **kwargs):
    """Any /ocpi/ path no endpoint serves: a 404 in the envelope, whatever DEBUG says."""
    return envelope_response(2000, 404, f"No OCPI endpoint at {request.path}")
