"""Domain errors of the billing services. The OCPI layer maps them to OCPI answers (a
CommandResponse, an OCPI status code); billing never knows how."""


class BillingError(Exception):
    """A request the billing domain refuses."""


class UnknownSession(BillingError):
    """No session with that id (OCPI session ids are matched case-insensitively)."""


class NotYourSession(BillingError):
    """The session exists but belongs to another partner (its cdr_token is not theirs)."""


class ChargingPreferencesNotSupported(BillingError):
    """The session's EVSE does not have the CHARGING_PREFERENCES_CAPABLE capability."""


class SessionNotActive(BillingError):
    """The session is not running (already ended, or a reservation not yet charging)."""
