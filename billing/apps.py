from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        # Sessions follow what the chargers report (stations.gateway signals); a final session
        # gets its CDR (billing.cdrs imports billing.sessions: its receivers come first).
        from . import cdrs, sessions  # noqa: F401
