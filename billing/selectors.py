"""Read access to the billing domain for the protocol layer. Every selector touching
partner-owned data takes `partner=` (STYLE.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Prefetch, QuerySet

from .models import ChargingPeriod, Session

if TYPE_CHECKING:
    from ocpi.models import Partner


def session_list(*, partner: Partner) -> QuerySet[Session]:
    """The partner's sessions (those of its drivers' tokens), oldest first, with what their OCPI
    objects need joined or prefetched: a page costs a fixed number of queries."""
    return (
        Session.objects.filter(partner=partner)
        .select_related("location", "evse", "connector")
        .prefetch_related(
            Prefetch("periods", queryset=ChargingPeriod.objects.order_by("start_date_time", "pk"))
        )
        .order_by("created", "pk")
    )
