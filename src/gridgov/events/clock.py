"""An event's deadline clock: allowed and spent time, pauses, yellow and red thresholds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gridgov.events.calendar import Allowance, WorkCalendar
from gridgov.events.catalog import CatalogRules
from gridgov.events.models import Event


@dataclass(frozen=True, slots=True)
class Deadlines:
    calendar: WorkCalendar
    rules: CatalogRules

    def allowance(self, spec: str) -> Allowance:
        return Allowance.parse(spec, self.calendar.office_hours.day_seconds)

    # -------------------------------------------------------------------------- the clock

    def spent(self, ev: Event, now: datetime) -> int:
        """Seconds of the event's clock kind spent so far (up to `now` while running)."""
        running = 0
        if ev.clock_since is not None and now > ev.clock_since:
            running = self.calendar.between(ev.clock_since, now, office=ev.office_clock)
        return ev.spent_seconds + running

    def set_allowance(self, ev: Event, spec: str) -> None:
        allowance = self.allowance(spec)
        ev.allowance = spec
        ev.office_clock = allowance.office
        ev.allowed_seconds = allowance.seconds
        ev.spent_seconds = 0

    def start(self, ev: Event, now: datetime) -> None:
        """Run the clock from `now` and place the yellow and red instants."""
        ev.clock_since = now
        self._place(ev)

    def stop(self, ev: Event, now: datetime) -> None:
        """Pause: bank the time spent; nothing is due while paused."""
        if ev.clock_since is not None:
            ev.spent_seconds = self.spent(ev, now)
        ev.clock_since = None
        ev.deadline_at = None
        ev.yellow_at = None

    def extend(self, ev: Event, spec: str, now: datetime) -> None:
        """Add an approved extension; warnings already raised are lifted if no longer due."""
        extra = self.allowance(spec)
        if extra.office != ev.office_clock:
            kind = "工作时间 (如 2wd、4wh)" if ev.office_clock else "自然时间 (如 4h、30m)"
            raise ValueError(f"延期时长 {spec} 与事件的计时方式不同, 须为{kind}")
        ev.allowed_seconds += extra.seconds
        ev.extension_spec = spec
        if ev.clock_since is not None:
            ev.spent_seconds = self.spent(ev, now)
            ev.clock_since = now
            self._place(ev)
        ev.escalate_at = None
        if ev.deadline_at is not None and ev.deadline_at > now:
            ev.warning_level = 1 if ev.yellow_at is not None and ev.yellow_at <= now else 0

    def _yellow_spent(self, ev: Event) -> int:
        """Seconds spent at which the yellow warning falls due."""
        at = int(ev.allowed_seconds * self.rules.yellow_fraction)
        left = self.allowance(self.rules.yellow_left)
        if left.office == ev.office_clock and ev.allowed_seconds > left.seconds:
            at = min(at, ev.allowed_seconds - left.seconds)
        return at

    def _place(self, ev: Event) -> None:
        if ev.clock_since is None:
            raise RuntimeError("the clock is not running")
        since, office = ev.clock_since, ev.office_clock
        remaining = max(0, ev.allowed_seconds - ev.spent_seconds)
        ev.deadline_at = self.calendar.add(since, remaining, office=office)
        ev.yellow_at = self.calendar.add(
            since, max(0, self._yellow_spent(ev) - ev.spent_seconds), office=office
        )

    # ------------------------------------------------------------------------ judgements

    def on_time(self, ev: Event, now: datetime) -> bool:
        return self.spent(ev, now) <= ev.allowed_seconds

    def dispatch_on_time(self, accepted_at: datetime, now: datetime, *, immediate: bool) -> bool:
        spec = (
            self.rules.dispatch_allowance_immediate if immediate else self.rules.dispatch_allowance
        )
        allowance = self.allowance(spec)
        return self.calendar.between(accepted_at, now, office=allowance.office) <= allowance.seconds

    def grace_end(self, now: datetime) -> datetime:
        grace = self.allowance(self.rules.supervision_grace)
        return self.calendar.add(now, grace.seconds, office=grace.office)
