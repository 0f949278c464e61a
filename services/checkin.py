"""Check-in and check-out at an activity by its code: the window, the writes, and hours from the times."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Activity, Signup
from services.hours import HoursError, activity_length_hours, record_activity_hours

# check-in opens two hours before the start and closes six hours after the end
OPENS_BEFORE = timedelta(hours=2)
CLOSES_AFTER = timedelta(hours=6)


class CheckError(Exception):
    """``reason``: bad_code, cancelled, not_signed_up, outside_window, not_checked_in."""

    def __init__(self, reason: str, activity: Activity | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.activity = activity


@dataclass(frozen=True, slots=True)
class CheckResult:
    activity: Activity
    signup: Signup
    hours: float = 0.0  # hours recorded at check-out (0: nothing to record)
    recorded: bool = True  # False when hours were due but could not be written


async def _signup_in_window(session: AsyncSession, *, code: str, person_id: int,
                            now: datetime) -> tuple[Activity, Signup]:
    activity = (await session.exec(select(Activity).where(Activity.checkin_code == code))).first()
    if activity is None:
        raise CheckError("bad_code")
    if activity.status != "open":
        raise CheckError("cancelled", activity)
    signup = (await session.exec(select(Signup).where(
        Signup.activity_id == activity.id, Signup.person_id == person_id, Signup.status == "confirmed"))).first()
    if signup is None:
        raise CheckError("not_signed_up", activity)
    if now < activity.start_at - OPENS_BEFORE or now > activity.end_at + CLOSES_AFTER:
        raise CheckError("outside_window", activity)
    return activity, signup


async def check_in(session: AsyncSession, *, code: str, person_id: int, now: datetime) -> CheckResult:
    """The first check-in counts; a second scan answers with the same time."""
    activity, signup = await _signup_in_window(session, code=code, person_id=person_id, now=now)
    if signup.checkin_at is None:
        signup.checkin_at = now
        session.add(signup)
    return CheckResult(activity=activity, signup=signup)


async def check_out(session: AsyncSession, *, code: str, person_id: int, now: datetime,
                    tz: tzinfo) -> CheckResult:
    """Check out and record the hours between check-in and now, within the activity's own times.

    The hours count on the activity's date in the deployment's zone ``tz`` (the ledger's 日期)."""
    activity, signup = await _signup_in_window(session, code=code, person_id=person_id, now=now)
    if signup.checkin_at is None:
        raise CheckError("not_checked_in", activity)
    signup.checkout_at = now
    session.add(signup)
    worked = (min(now, activity.end_at) - max(signup.checkin_at, activity.start_at)).total_seconds() / 3600
    hours = round(max(0.0, min(worked, activity_length_hours(activity))), 2)
    if hours <= 0:
        return CheckResult(activity=activity, signup=signup, hours=0.0)
    try:
        await record_activity_hours(session, activity=activity, person_id=person_id, hours=hours, recorded_by=None,
                                    served_on=activity.start_at.astimezone(tz).date(), now=now,
                                    source="checkin")
    except HoursError:
        return CheckResult(activity=activity, signup=signup, hours=hours, recorded=False)
    return CheckResult(activity=activity, signup=signup, hours=hours)
