"""CDRs Sender endpoint (PROTOCOL.md §4.3): the caller's CDRs, paginated, filtered on
last_updated (a CDR's creation time, as CDRs never change) with date_from/date_to.

Only the caller's own CDRs (those of its drivers' sessions, with their credits and corrections);
another partner's never appear, not even in X-Total-Count. A page costs a fixed number of
queries: everything a CDR's OCPI object holds is on its row.
"""

from billing.cdrs import cdr_list

from ...views import OCPIListView
from .serializers import cdr_to_ocpi


class CDRListView(OCPIListView):
    """GET {cdrs_url}?[date_from]&[date_to]&[offset]&[limit]."""

    def get_queryset(self):
        return cdr_list(partner=self.partner)

    def serialize(self, obj) -> dict:
        return cdr_to_ocpi(obj)
