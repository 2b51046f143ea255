"""Admin for the billing domain: one module per area, registered on import."""

from . import cdr_admin, session_admin, token_admin  # noqa: F401
