"""The hours ledger (台账) as rows for export, and signed links that let a coordinator download it."""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Activity, HourRecord, Organization, Person

LINK_TTL = timedelta(hours=24)
HEADER = ("日期", "姓名", "身份证号（脱敏）", "手机号（脱敏）", "活动/服务", "组织", "时长（小时）", "记录人", "来源", "备注")


@dataclass(frozen=True, slots=True)
class LedgerRow:
    served_on: date
    name: str
    id_masked: str
    phone_masked: str
    what: str
    organization: str
    hours: float
    recorder: str
    source: str
    note: str


async def ledger_rows(session: AsyncSession, *, organization_ids: list[int], start: date, end: date) -> list[LedgerRow]:
    """Approved hours of the organizations' activities between two dates (inclusive). Personal data masked."""
    recorder = Person.__table__.alias("recorder")
    rows = await session.exec(
        select(HourRecord, Person, Activity, Organization, recorder.c.name)
        .join(Person, Person.id == HourRecord.person_id)
        .join(Activity, Activity.id == HourRecord.activity_id)
        .join(Organization, Organization.id == Activity.organization_id)
        .outerjoin(recorder, recorder.c.id == HourRecord.recorded_by)
        .where(col(Activity.organization_id).in_(organization_ids), HourRecord.approved == True,  # noqa: E712
               HourRecord.served_on >= start, HourRecord.served_on <= end)
        .order_by(HourRecord.served_on, Person.name, HourRecord.id)
    )
    return [
        LedgerRow(served_on=record.served_on, name=person.name or "", id_masked=person.id_number_masked or "",
                  phone_masked=person.phone_masked or "", what=activity.title, organization=org.name,
                  hours=record.hours, recorder=recorder_name or ("签到签退" if record.source == "checkin" else ""),
                  source=record.source, note=record.note)
        for record, person, activity, org, recorder_name in rows
    ]


def ledger_csv(rows: list[LedgerRow]) -> bytes:
    """UTF-8 with a BOM so Excel opens the Chinese columns correctly; a total line at the end."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    for row in rows:
        writer.writerow((row.served_on.isoformat(), row.name, row.id_masked, row.phone_masked, row.what,
                         row.organization, f"{row.hours:g}", row.recorder, row.source, row.note))
    writer.writerow(("合计", "", "", "", "", "", f"{sum(r.hours for r in rows):g}", "", "", ""))
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


@dataclass(frozen=True, slots=True)
class ExportGrant:
    organization_ids: list[int]
    start: date
    end: date
    expires_at: datetime


def _mac(secret: str, payload: str) -> str:
    key = hashlib.sha256(b"volunteer-bot/ledger-link/" + secret.encode()).digest()
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()[:32]


def sign_export(grant: ExportGrant, *, secret: str) -> str:
    payload = "|".join((",".join(map(str, grant.organization_ids)), grant.start.isoformat(), grant.end.isoformat(),
                        str(int(grant.expires_at.timestamp()))))
    return base64.urlsafe_b64encode(f"{payload}|{_mac(secret, payload)}".encode()).decode().rstrip("=")


def verify_export(token: str, *, secret: str, now: datetime) -> ExportGrant | None:
    """The grant behind a token, or None when it is forged, garbled or expired."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        orgs, start, end, expires, mac = raw.split("|")
        payload = "|".join((orgs, start, end, expires))
        if not hmac.compare_digest(mac, _mac(secret, payload)):
            return None
        grant = ExportGrant(organization_ids=[int(o) for o in orgs.split(",") if o], start=date.fromisoformat(start),
                            end=date.fromisoformat(end),
                            expires_at=datetime.fromtimestamp(int(expires), tz=now.tzinfo))
    except (ValueError, UnicodeDecodeError):
        return None
    return grant if grant.expires_at > now and grant.organization_ids else None
