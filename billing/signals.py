"""What the billing domain announces (receivers: the OCPI push outbox).

Sent inside the saving transaction. `created` is true for a new session; `final` is true once the
session reached COMPLETED or INVALID (the last update); `new_periods` lists the ChargingPeriods
added since the previous announcement (PATCHes append periods, PROTOCOL.md §4.2).

`cdr_created` announces a new CDR (a session's CDR, a credit CDR or a corrected CDR) inside the
transaction that created it; the outbox POSTs it to its partner. `cdr_delivery_requested` is
staff asking for a CDR that did not reach its partner (FAILED, NOT_SENT) to be sent again;
receivers return a short text saying what they did.
"""

from django.dispatch import Signal

session_changed = Signal()  # session, created, final, changed_fields, new_periods
cdr_created = Signal()  # cdr
cdr_delivery_requested = Signal()  # cdr
