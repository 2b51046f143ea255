"""Admin for the OCPI layer: partners (partner_admin) and the push outbox (outbox_admin)."""

from . import outbox_admin, partner_admin  # noqa: F401
