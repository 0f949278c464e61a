"""The hours ledger (台账) as a table for export (CSV and .xlsx, services/exports.py), and signed links that
let a coordinator download it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from operator import attrgetter
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.i18n import N_, Msg, Text, _
from models import Activity, HourRecord, Identity, Organization, Person
from models.requests import Pairing, ServiceRequest, VisitLog
from services.exports import (  # noqa: F401  (safe_cell and EXPORT_LANGUAGE are imported from here too)
    DATE,
    DATETIME,
    EXPORT_LANGUAGE,
    NUMBER,
    Column,
    Table,
    local_cell,
    safe_cell,
    sign_fields,
    table_csv,
    table_xlsx,
    verify_fields,
)
from services.hours import EFFECTIVE_HOURS, IN_EFFECT, with_correction

LINK_TTL = timedelta(hours=24)
# correction times are shown in this zone unless the caller gives the deployment's TIMEZONE
DEFAULT_TZ = ZoneInfo("Asia/Shanghai")
LINK_PURPOSE = "ledger-link"  # keys the links' MAC apart from other signed links
# readable names of HourRecord.source, in every catalog; an unknown code is shown as it is
SOURCE_NAMES: dict[str, Msg] = {
    "activity": N_("活动记录"),
    "checkin": N_("签到"),
    "request": N_("居民求助"),
    "pairing": N_("结对看望"),
}


@dataclass(frozen=True, slots=True)
class LedgerRow:
    served_on: date
    name: str
    id_masked: str
    phone_masked: str
    what: str
    organization: str
    hours: float
    recorder: Text  # a name, or a Msg (签到签退, 协调员#id) rendered in the export's language
    source: str  # the HourRecord.source code; the export shows source_name(row)
    note: str
    self_reported: bool = False  # reported by the volunteer, approved by a coordinator
    # a record with a correction in effect: hours above are the corrected ones (0 when voided)
    correction: Text = ""  # 更正 / 作废, empty when the record counts as recorded
    original_hours: float | None = None
    correction_reason: str = ""
    corrected_by: Text = ""  # who approved (or made) the correction
    corrected_at: datetime | None = None  # when, naive local time


def source_name(row: LedgerRow) -> Text:
    name: Text = SOURCE_NAMES.get(row.source, row.source)
    return _("{source}（自报）", source=name) if row.self_reported else name


# the ledger's columns, in order: add one here (and its field on LedgerRow) and both formats show it
LEDGER_COLUMNS: tuple[Column, ...] = (
    Column(N_("日期"), attrgetter("served_on"), DATE, width=12),
    Column(N_("姓名"), attrgetter("name"), width=10),
    Column(N_("身份证号（脱敏）"), attrgetter("id_masked"), width=21),
    Column(N_("手机号（脱敏）"), attrgetter("phone_masked"), width=14),
    Column(N_("活动/服务"), attrgetter("what"), width=30),
    Column(N_("组织"), attrgetter("organization"), width=16),
    Column(N_("时长（小时）"), attrgetter("hours"), NUMBER, width=11, total=True),
    Column(N_("记录人"), attrgetter("recorder"), width=12),
    Column(N_("来源"), source_name, width=14),
    Column(N_("备注"), attrgetter("note"), width=30),
    Column(N_("更正"), attrgetter("correction"), width=8),
    Column(N_("原时长（小时）"), attrgetter("original_hours"), NUMBER, width=11),
    Column(N_("更正原因"), attrgetter("correction_reason"), width=24),
    Column(N_("更正审批人"), attrgetter("corrected_by"), width=12),
    Column(N_("更正时间"), attrgetter("corrected_at"), DATETIME, width=17),
)
HEADER = tuple(column.title for column in LEDGER_COLUMNS)


def ledger_table(rows: list[LedgerRow]) -> Table:
    """The one table both export formats are written from."""
    return Table.of(N_("台账"), LEDGER_COLUMNS, rows)


def ledger_csv(rows: list[LedgerRow]) -> bytes:
    return table_csv(ledger_table(rows))


def ledger_xlsx(rows: list[LedgerRow]) -> bytes:
    return table_xlsx(ledger_table(rows))


async def ledger_rows(session: AsyncSession, *, organization_ids: list[int], start: date, end: date,
                      tz: tzinfo = DEFAULT_TZ, name: str = "") -> list[LedgerRow]:
    """Approved hours between two dates (inclusive) that belong to the organizations: their activities,
    the residents' requests their station handled, and their pairings' visits. Personal data masked.
    A corrected record counts its correction's hours and says so; a voided one is listed with 0 hours.
    ``name``: only volunteers whose name contains it (in SQL: a station's year is many rows)."""
    recorder = Person.__table__.alias("recorder")
    corrector = Person.__table__.alias("corrector")

    def owned_by(owner_org: Any, *joins: tuple[Any, Any]) -> Any:
        query = with_correction(
            select(HourRecord, Person, Organization, recorder.c.name, Activity.title, EFFECTIVE_HOURS,
                   IN_EFFECT.c.id, IN_EFFECT.c.hours, IN_EFFECT.c.reason, IN_EFFECT.c.decided_at,
                   IN_EFFECT.c.decided_by, corrector.c.name)
            .join(Person, Person.id == HourRecord.person_id)
            .outerjoin(Activity, Activity.id == HourRecord.activity_id)
        ).outerjoin(corrector, corrector.c.id == IN_EFFECT.c.decided_by)
        for target, onclause in joins:  # the owner's table must be joined before the organization
            query = query.join(target, onclause)
        if name:
            query = query.where(col(Person.name).contains(name, autoescape=True))
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
    found: dict[int, tuple[Any, ...]] = {}
    for query in queries:
        for found_row in await session.exec(query):
            found[found_row[0].id] = tuple(found_row)
    unnamed = {row[0].recorded_by for row in found.values() if row[0].recorded_by and not row[3]}
    unnamed |= {row[10] for row in found.values() if row[10] is not None and not row[11]}
    shown = await _display_names(session, unnamed)
    rows: dict[int, LedgerRow] = {}
    for record_id, (record, person, org, recorder_name, title, hours, correction_id, new_hours, reason,
                    decided_at, decided_by, corrector_name) in found.items():
        corrected = correction_id is not None
        rows[record_id] = LedgerRow(
            served_on=record.served_on, name=person.name or "", id_masked=person.id_number_masked or "",
            phone_masked=person.phone_masked or "", what=title or record.note, organization=org.name,
            hours=float(hours), recorder=_recorder(record, recorder_name, shown), source=record.source,
            note=record.note, self_reported=record.reviewed_by is not None,
            correction=(_("作废") if new_hours is None else _("更正")) if corrected else "",
            original_hours=record.hours if corrected else None, correction_reason=reason or "",
            corrected_by=_person_name(decided_by, corrector_name, shown) if corrected else "",
            corrected_at=local_cell(decided_at, tz))
    ids = sorted(rows, key=lambda i: (rows[i].served_on, rows[i].name, i))
    return [rows[i] for i in ids]


def _recorder(record: HourRecord, name: str | None, shown: dict[int, str]) -> Text:
    """Who recorded it: their registered name, else their chat display name, else 协调员#id."""
    if record.recorded_by is None:
        return _("签到签退") if record.source == "checkin" else ""
    return _person_name(record.recorded_by, name, shown)


def _person_name(person_id: int | None, name: str | None, shown: dict[int, str]) -> Text:
    if person_id is None:
        return ""
    return name or shown.get(person_id) or _("协调员#{id}", id=person_id)



async def _display_names(session: AsyncSession, person_ids: set[int | None]) -> dict[int, str]:
    if not person_ids:
        return {}
    found = await session.exec(
        select(Identity.person_id, Identity.display_name)
        .where(col(Identity.person_id).in_(person_ids), col(Identity.display_name).is_not(None))
        .order_by(col(Identity.id)))
    names: dict[int, str] = {}
    for person_id, display_name in found:
        if display_name and display_name.strip():
            names.setdefault(person_id, display_name.strip())
    return names


@dataclass(frozen=True, slots=True)
class ExportGrant:
    organization_ids: list[int]
    start: date
    end: date
    expires_at: datetime


def sign_export(grant: ExportGrant, *, secret: str) -> str:
    return sign_fields((",".join(map(str, grant.organization_ids)), grant.start.isoformat(), grant.end.isoformat(),
                        str(int(grant.expires_at.timestamp()))), purpose=LINK_PURPOSE, secret=secret)


def verify_export(token: str, *, secret: str, now: datetime) -> ExportGrant | None:
    """The grant behind a token, or None when it is forged, garbled or expired."""
    fields = verify_fields(token, purpose=LINK_PURPOSE, secret=secret, count=4)
    if fields is None:
        return None
    orgs, start, end, expires = fields
    try:
        grant = ExportGrant(organization_ids=[int(o) for o in orgs.split(",") if o], start=date.fromisoformat(start),
                            end=date.fromisoformat(end),
                            expires_at=datetime.fromtimestamp(int(expires), tz=now.tzinfo))
    except ValueError:
        return None
    return grant if grant.expires_at > now and grant.organization_ids else None
