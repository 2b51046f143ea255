"""Admin for the OCPI layer: partners (partner_admin), the push outbox (outbox_admin) and
partners' commands and charging profile requests (command_admin)."""

from . import command_admin, outbox_admin, partner_admin  # noqa: F401
