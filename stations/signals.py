"""What the network announces when OCPI-visible data changes.

Sent inside the saving transaction, so a receiver that writes rows (the OCPI push outbox) commits
or rolls back together with the change. `changed_fields` names the model fields that changed;
`created` is true for a new object.
"""

from django.dispatch import Signal

location_changed = Signal()  # location, created, changed_fields
evse_changed = Signal()  # evse, created, changed_fields
connector_changed = Signal()  # connector, created, changed_fields
tariff_changed = Signal()  # tariff, created
