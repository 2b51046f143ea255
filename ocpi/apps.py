from django.apps import AppConfig


class OCPIConfig(AppConfig):
    name = "ocpi"
    verbose_name = "OCPI roaming"

    def ready(self) -> None:
        # Connect the push outbox to the network's change signals.
        from . import outbox  # noqa: F401
