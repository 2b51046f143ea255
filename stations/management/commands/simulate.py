"""Drive realistic traffic across the network through the charger simulator, and print it.

    manage.py simulate [--seconds N] [--rate SWIPES_PER_MINUTE] [--seed N] [--tick SECONDS]

Every tick it advances the simulated chargers (as the beat task does; both may run), and now
and then:
- a driver swipes a cached token (billing.Token) at a free EVSE with an RFID reader: the
  platform authorizes it as it would at a real charger (billing.tokens.token_authorize: the
  cache or real-time authorization at the token's eMSP, per its whitelist), and if allowed the
  driver plugs in and charging starts; the session, its meter values and its end reach the
  token's eMSP through the usual pushes;
- an EVSE fails (OUTOFORDER or INOPERATIVE; a charging one ends its session with FAULT) and
  recovers a while later.
Sessions end by themselves: the simulated drivers unplug when they are done (see
stations/simulator.py). Use SIMULATOR_TIME_SCALE to make charges faster than real time.
"""

import random
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from stations import gateway, simulator
from stations.choices import EVSEStatus
from stations.models import EVSE
from stations.services import evse_set_status

FAULTS = (EVSEStatus.OUTOFORDER, EVSEStatus.INOPERATIVE)


class Command(BaseCommand):
    help = "Drive realistic charging traffic across the network through the charger simulator."

    def add_arguments(self, parser):
        parser.add_argument(
            "--seconds", type=float, default=None, help="Stop after N seconds (default: Ctrl-C)"
        )
        parser.add_argument(
            "--rate",
            type=float,
            default=2.0,
            help="Swipes per minute (real time); faults happen at a tenth of this rate",
        )
        parser.add_argument("--seed", type=int, default=None, help="Seed for repeatable traffic")
        parser.add_argument(
            "--tick",
            type=float,
            default=None,
            help="Seconds between ticks (default: SIMULATOR_TICK_SECONDS, at most 5)",
        )

    def handle(self, *args, seconds=None, rate=2.0, seed=None, tick=None, **options):
        if rate < 0 or (seconds is not None and seconds < 0):
            raise CommandError("--rate and --seconds must not be negative")
        self.rng = random.Random(seed)
        self.tick_seconds = tick if tick is not None else min(settings.SIMULATOR_TICK_SECONDS, 5.0)
        self.rate = rate
        self.recoveries: dict[int, tuple[float, str]] = {}  # EVSE pk -> (due, fault status)
        self.counts = {"swipes": 0, "refused": 0, "started": 0, "ended": 0, "faults": 0}
        scale = settings.SIMULATOR_TIME_SCALE
        self.say(f"Simulating the network: time scale {scale:g}, {rate:g} swipes/min.")
        self._connect()
        started = time.monotonic()
        last = started
        try:
            while seconds is None or time.monotonic() - started < seconds:
                now = time.monotonic()
                elapsed, last = now - last, now
                simulator.simulator_tick()
                for _ in range(self._events(self.rate * elapsed / 60)):
                    self._swipe()
                for _ in range(self._events(self.rate / 10 * elapsed / 60)):
                    self._fault()
                self._recover(now)
                time.sleep(self.tick_seconds)
        except KeyboardInterrupt:
            self.say("Interrupted.")
        finally:
            self._disconnect()
        simulator.simulator_tick()
        summary = ", ".join(f"{n} {what}" for what, n in self.counts.items())
        self.say(f"Done: {summary}.")

    # -- output -------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        self.stdout.write(f"{timezone.localtime():%H:%M:%S} {text}")

    def _connect(self) -> None:
        from billing.signals import session_changed  # billing sits above stations: local import

        self._receivers = [
            (gateway.transaction_started, self._on_started),
            (gateway.transaction_stopped, self._on_stopped),
            (session_changed, self._on_session),
        ]
        for signal, handler in self._receivers:
            signal.connect(handler, dispatch_uid=f"simulate-{id(self)}-{handler.__name__}")

    def _disconnect(self) -> None:
        for signal, handler in self._receivers:
            signal.disconnect(dispatch_uid=f"simulate-{id(self)}-{handler.__name__}")

    def _on_started(self, sender, transaction_ref, evse, id_tag, **kwargs) -> None:
        self.counts["started"] += 1
        self.say(f"  charging starts at {evse} for {id_tag} ({transaction_ref})")

    def _on_stopped(self, sender, transaction_ref, reason, **kwargs) -> None:
        self.counts["ended"] += 1
        self.say(f"  {transaction_ref} ends: {reason}")

    def _on_session(self, sender, session, created, final, **kwargs) -> None:
        if created:
            self.say(f"  session {session.ocpi_id} {session.status} for {session.partner}")
        elif final:
            self.say(f"  session {session.ocpi_id} {session.status}: {session.kwh} kWh")

    # -- traffic ------------------------------------------------------------------------------
    def _events(self, expected: float) -> int:
        """How many events happen now, for `expected` on average."""
        whole = int(expected)
        return whole + (self.rng.random() < expected - whole)

    def _swipe(self) -> None:
        # billing sits above stations (imports point one way): imported here, at run time.
        from billing.models import Token
        from billing.sessions import pending_start_register
        from billing.tokens import token_authorize

        tokens = list(Token.objects.select_related("partner").order_by("pk")[:500])
        evses = [
            e
            for e in EVSE.objects.filter(status=EVSEStatus.AVAILABLE).order_by("pk")
            if "RFID_READER" in (e.capabilities or [])
        ]
        if not tokens or not evses:
            self.say("No swipe: no cached tokens or no free EVSE with an RFID reader.")
            return
        token, evse = self.rng.choice(tokens), self.rng.choice(evses)
        connector = self.rng.choice(list(evse.connectors.order_by("pk")) or [None])
        if connector is None:
            return
        self.counts["swipes"] += 1
        decision = token_authorize(uid=token.uid, token_type=token.type, evse=evse)
        if not decision.authorized:
            self.counts["refused"] += 1
            self.say(f"Swipe {token.uid} at {evse}: {decision.allowed} ({decision.reason})")
            return
        self.say(f"Swipe {token.uid} at {evse}: ALLOWED ({decision.auth_method})")
        with transaction.atomic():
            pending_start_register(
                request_ref=f"SWIPE-{uuid.uuid4().hex}",
                partner_id=token.partner_id,
                cdr_token=token.cdr_token(),
                auth_method=decision.auth_method,
                authorization_reference=decision.authorization_reference,
                token_pk=token.pk,
                location=evse.location_id,
                evse=evse,
                connector=connector,
            )
            tx = simulator.plug_in(evse_pk=evse.pk, connector_pk=connector.pk, id_tag=token.uid)
            if tx is None:
                self.say(f"  {evse} refused to start")

    def _fault(self) -> None:
        candidates = list(
            EVSE.objects.filter(status__in=(EVSEStatus.AVAILABLE, EVSEStatus.CHARGING))
            .exclude(pk__in=self.recoveries)
            .order_by("pk")
        )
        if not candidates:
            return
        evse = self.rng.choice(candidates)
        fault = self.rng.choice(FAULTS)
        with transaction.atomic():
            evse_set_status(evse=evse, status=fault)
        self.counts["faults"] += 1
        # Repaired after 2 to 20 simulated minutes.
        repair = timedelta(minutes=self.rng.uniform(2, 20)).total_seconds()
        due = time.monotonic() + repair / max(settings.SIMULATOR_TIME_SCALE, 1e-9)
        self.recoveries[evse.pk] = (due, fault)
        self.say(f"{evse} is {fault}")

    def _recover(self, now: float) -> None:
        for pk, (due, fault) in list(self.recoveries.items()):
            if due > now:
                continue
            del self.recoveries[pk]
            with transaction.atomic():
                evse = EVSE.objects.select_for_update().filter(pk=pk, status=fault).first()
                if evse is not None:  # staff may have changed it meanwhile: then leave it
                    evse_set_status(evse=evse, status=EVSEStatus.AVAILABLE)
                    self.say(f"{evse} is AVAILABLE again")
