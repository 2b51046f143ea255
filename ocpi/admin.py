"""Admin for the OCPI layer: partners (partner_admin), the push outbox (outbox_admin),
partners' commands and charging profile requests (command_admin) and the OCPI traffic log
(traffic_admin)."""

from . import command_admin, outbox_admin, partner_admin, traffic_admin  # noqa: F401
