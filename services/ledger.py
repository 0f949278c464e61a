"""The hours ledger (台账) as rows for export, and signed links that let a coordinator download it."""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.i18n import N_, _, render
from models import Activity, HourRecord, Organization, Person
from models.requests import Pairing, ServiceRequest, VisitLog
from services.hours import EFFECTIVE_HOURS, IN_EFFECT, with_correction

LINK_TTL = timedelta(hours=24)
# the export is written in 简体 (the ledger is filed with the 志愿服务 authorities)
EXPORT_LANGUAGE = "zh-Hans"
# the correction times are shown in this zone unless the caller gives the deployment's TIMEZONE
DEFAULT_TZ = ZoneInfo("Asia/Shanghai")
HEADER = (N_("日期"), N_("姓名"), N_("身份证号（脱敏）"), N_("手机号（脱敏）"), N_("活动/服务"), N_("组织"),
          N_("时长（小时）"), N_("记录人"), N_("来源"), N_("备注"),
          N_("更正"), N_("原时长（小时）"), N_("更正原因"), N_("更正审批人"), N_("更正时间"))


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
    # a record with a correction in effect: hours above are the corrected ones (0 when voided)
    correction: str = ""  # "更正" / "作废" (rendered), empty when the record counts as recorded
    original_hours: float | None = None
    correction_reason: str = ""
    corrected_by: str = ""  # who approved (or made) the correction
    corrected_at: str = ""  # when, local "YYYY-MM-DD HH:MM"


async def ledger_rows(session: AsyncSession, *, organization_ids: list[int], start: date, end: date,
                      tz: tzinfo = DEFAULT_TZ) -> list[LedgerRow]:
    """Approved hours between two dates (inclusive) that belong to the organizations: their activities,
    the residents' requests their station handled, and their pairings' visits. Personal data masked.
    A corrected record counts its correction's hours and says so; a voided one is listed with 0 hours."""
    recorder = Person.__table__.alias("recorder")
    corrector = Person.__table__.alias("corrector")

    def owned_by(owner_org: Any, *joins: tuple[Any, Any]) -> Any:
        query = with_correction(
            select(HourRecord, Person, Organization, recorder.c.name, Activity.title, EFFECTIVE_HOURS,
                   IN_EFFECT.c.id, IN_EFFECT.c.hours, IN_EFFECT.c.reason, IN_EFFECT.c.decided_at, corrector.c.name)
            .join(Person, Person.id == HourRecord.person_id)
            .outerjoin(Activity, Activity.id == HourRecord.activity_id)
        ).outerjoin(corrector, corrector.c.id == IN_EFFECT.c.decided_by)
        for target, onclause in joins:  # the owner's table must be joined before the organization
            query = query.join(target, onclause)
        return (
            query.join(Organization, Organization.id == owner_org)
            .outerjoin(recorder, recorder.c.id == HourRecord.recorded_by)
            .where(col(owner_org).in_(organization_ids), HourRecord.approved == True,  # noqa: E712
                   HourRecord.served_on >= start, HourRecord.served_on <= end)
        )

    queries = [
        owned_by(Activity.organization_id),
        owned_by(ServiceRequest.organization_id, (ServiceRequest, ServiceRequest.hour_record_id == HourRecord.id)),
        owned_by(Pairing.organization_id, (VisitLog, VisitLog.hour_record_id == HourRecord.id),
                 (Pairing, Pairing.id == VisitLog.pairing_id)),
    ]
    found: dict[int, LedgerRow] = {}
    for query in queries:
        for (record, person, org, recorder_name, title, hours, correction_id, new_hours, reason, decided_at,
             corrector_name) in await session.exec(query):
            corrected = correction_id is not None
            found[record.id] = LedgerRow(
                served_on=record.served_on, name=person.name or "", id_masked=person.id_number_masked or "",
                phone_masked=person.phone_masked or "", what=title or record.note, organization=org.name,
                hours=float(hours), recorder=recorder_name or (render(_("签到签退"), EXPORT_LANGUAGE) if record.source == "checkin" else ""),
                source=record.source, note=record.note,
                correction=render(_("作废") if new_hours is None else _("更正"), EXPORT_LANGUAGE) if corrected else "",
                original_hours=record.hours if corrected else None, correction_reason=reason or "",
                corrected_by=corrector_name or "",
                corrected_at=f"{decided_at.astimezone(tz):%Y-%m-%d %H:%M}" if decided_at is not None else "")
    ids = sorted(found, key=lambda i: (found[i].served_on, found[i].name, i))
    return [found[i] for i in ids]


# a cell starting with one of these is read as a formula by Excel / WPS / LibreOffice (CSV injection)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    """Text a spreadsheet shows as text: a leading formula character gets a single quote before it (OWASP)."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def ledger_csv(rows: list[LedgerRow]) -> bytes:
    """UTF-8 with a BOM so Excel opens the Chinese columns correctly; a total line at the end.

    Names, titles and notes come from users: every text cell goes through :func:`safe_cell`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([render(title, EXPORT_LANGUAGE) for title in HEADER])
    for row in rows:
        writer.writerow((row.served_on.isoformat(), *map(safe_cell, (
            row.name, row.id_masked, row.phone_masked, row.what, row.organization)),
            f"{row.hours:g}", *map(safe_cell, (row.recorder, row.source, row.note, row.correction)),
            f"{row.original_hours:g}" if row.original_hours is not None else "",
            *map(safe_cell, (row.correction_reason, row.corrected_by)), row.corrected_at))
    writer.writerow((render(_("合计"), EXPORT_LANGUAGE), "", "", "", "", "", f"{sum(r.hours for r in rows):g}",
                     *[""] * (len(HEADER) - 7)))
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
