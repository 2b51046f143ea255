from django.apps import AppConfig


class OCPIConfig(AppConfig):
    name = "ocpi"
    verbose_name = "OCPI roaming"

    def ready(self) -> None:
        # Connect the push outbox to the network's change signals; fill billing's seams
        # (authorize fills billing.seams.registry); commands receives the chargers' answers
        # (command_answered, reservation_ended).
        from . import authorize, commands, outbox  # noqa: F401
