from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        # Sessions follow what the chargers report (stations.gateway signals).
        from . import sessions  # noqa: F401
