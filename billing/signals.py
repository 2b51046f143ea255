"""What the billing domain announces (receivers: the OCPI push outbox).

Sent inside the saving transaction. `created` is true for a new session; `final` is true once the
session reached COMPLETED or INVALID (the last update); `new_periods` lists the ChargingPeriods
added since the previous announcement (PATCHes append periods, PROTOCOL.md §4.2).
"""

from django.dispatch import Signal

session_changed = Signal()  # session, created, final, changed_fields, new_periods
