"""志愿服务证明 (《志愿服务记录与证明出具办法》 Art 14–15): issue, find and revoke certificates, and
the signed links that download one.

A certificate states the volunteer's identity (name, masked ID number), the period, the total hours
and each service (date, what, organization, hours, recorder). Its number is 19 random digits and a
Luhn check digit: unguessable, and a mistyped number is told apart from an unknown one without a query.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Activity, HourRecord, Organization, Person
from models.certificates import Certificate

NUMBER_DIGITS = 20  # 19 random + 1 check digit
LINK_TTL = timedelta(days=7)


class CertificateError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # not_registered | no_hours | unknown | revoked


# ---- numbers ------------------------------------------------------------------------------------
def _luhn_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        value = int(ch) * (2 if i % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str(-total % 10)


def new_number() -> str:
    body = "".join(secrets.choice("0123456789") for _ in range(NUMBER_DIGITS - 1))
    return body + _luhn_digit(body)


def normalize_number(text: str) -> str | None:
    """The number without spaces or dashes, or None when it cannot be one (length, check digit)."""
    digits = "".join(ch for ch in text if ch not in " -")
    if len(digits) != NUMBER_DIGITS or not digits.isascii() or not digits.isdigit():
        return None
    return digits if _luhn_digit(digits[:-1]) == digits[-1] else None


def format_number(number: str) -> str:
    """Groups of four, as printed: 1234-5678-9012-3456-7890."""
    return "-".join(number[i:i + 4] for i in range(0, len(number), 4))


# ---- what a certificate says ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CertificateLine:
    served_on: date
    what: str  # the activity's title or the record's note; "" → the reader's word for 志愿服务
    organization: str
    hours: float
    recorder: str  # who recorded or approved it; the organization's name when they never registered


@dataclass(frozen=True, slots=True)
class CertificateFacts:
    number: str
    name: str
    id_masked: str
    start: date
    end: date
    total_hours: float
    lines: list[CertificateLine]
    issued_on: date  # local date
    revoked_at: datetime | None
    revoked_reason: str | None

    @property
    def issuers(self) -> list[tuple[str, list[str]]]:
        """Each organization in the lines, in order, with its recorders."""
        found: dict[str, list[str]] = {}
        for line in self.lines:
            recorders = found.setdefault(line.organization, [])
            if line.recorder and line.recorder not in recorders:
                recorders.append(line.recorder)
        return [(org, names) for org, names in found.items() if org]


_RECORDER = Person.__table__.alias("recorder")  # type: ignore[attr-defined]
_REVIEWER = Person.__table__.alias("reviewer")  # type: ignore[attr-defined]


async def certificate_lines(session: AsyncSession, *, person_id: int, start: date | None,
                            end: date) -> list[CertificateLine]:
    """The person's approved hours between the dates (inclusive; ``start`` None → from the first)."""
    org_id = func.coalesce(HourRecord.organization_id, Activity.organization_id)
    query = (
        select(HourRecord, Activity.title, Organization.name, _RECORDER.c.name, _REVIEWER.c.name)
        .outerjoin(Activity, Activity.id == HourRecord.activity_id)  # type: ignore[arg-type]
        .outerjoin(Organization, Organization.id == org_id)  # type: ignore[arg-type]
        .outerjoin(_RECORDER, _RECORDER.c.id == HourRecord.recorded_by)
        .outerjoin(_REVIEWER, _REVIEWER.c.id == HourRecord.reviewed_by)
        .where(HourRecord.person_id == person_id, HourRecord.approved == True,  # noqa: E712
               HourRecord.served_on <= end)
        .order_by(col(HourRecord.served_on), col(HourRecord.id))
    )
    if start is not None:
        query = query.where(HourRecord.served_on >= start)
    lines = []
    for record, title, org, recorder, reviewer in await session.exec(query):
        lines.append(CertificateLine(served_on=record.served_on, what=title or record.note or "",
                                     organization=org or "", hours=round(record.hours, 2),
                                     recorder=recorder or reviewer or org or ""))
    return lines


def _facts_json(person: Person, lines: list[CertificateLine]) -> dict[str, Any]:
    return {"name": person.name or "", "id_masked": person.id_number_masked or "",
            "lines": [[line.served_on.isoformat(), line.what, line.organization, line.hours, line.recorder]
                      for line in lines]}


async def issue_certificate(session: AsyncSession, *, person_id: int, start: date | None, end: date,
                            now: datetime) -> Certificate:
    """A certificate of the person's approved hours in the period. Asking again for the same period
    with nothing changed gives the same certificate (same number), not a new one."""
    person = await session.get(Person, person_id)
    if person is None or person.status != "active" or not person.name:
        raise CertificateError("not_registered")
    lines = await certificate_lines(session, person_id=person_id, start=start, end=end)
    if not lines:
        raise CertificateError("no_hours")
    first = start or lines[0].served_on
    facts = _facts_json(person, lines)
    earlier = await session.exec(
        select(Certificate).where(Certificate.person_id == person_id, Certificate.period_start == first,
                                  Certificate.period_end == end, col(Certificate.revoked_at).is_(None))
        .order_by(col(Certificate.id).desc()).limit(5))
    for certificate in earlier:
        if certificate.facts == facts:
            return certificate
    certificate = Certificate(number=new_number(), person_id=person_id, period_start=first, period_end=end,
                              total_hours=round(sum(line.hours for line in lines), 2), record_count=len(lines),
                              facts=facts, issued_at=now)
    session.add(certificate)
    await session.flush()
    return certificate


async def find_certificate(session: AsyncSession, *, number: str) -> Certificate | None:
    digits = normalize_number(number)
    if digits is None:
        return None
    return (await session.exec(select(Certificate).where(Certificate.number == digits))).first()


async def revoke_certificate(session: AsyncSession, *, number: str, reason: str, now: datetime) -> Certificate:
    certificate = await find_certificate(session, number=number)
    if certificate is None:
        raise CertificateError("unknown")
    if certificate.revoked_at is not None:
        raise CertificateError("revoked")
    certificate.revoked_at = now
    certificate.revoked_reason = reason.strip()[:500]
    session.add(certificate)
    await session.flush()
    return certificate


async def forget_id_numbers(session: AsyncSession, *, person_id: int) -> None:
    """A volunteer who withdraws: their certificates no longer show even the masked ID number."""
    for certificate in await session.exec(select(Certificate).where(Certificate.person_id == person_id)):
        if certificate.facts.get("id_masked"):
            certificate.facts = {**certificate.facts, "id_masked": ""}
            session.add(certificate)
    await session.flush()


def facts_of(certificate: Certificate, *, timezone: str) -> CertificateFacts:
    data = certificate.facts
    lines = [CertificateLine(served_on=date.fromisoformat(day), what=what, organization=org, hours=float(hours),
                             recorder=recorder) for day, what, org, hours, recorder in data.get("lines", [])]
    return CertificateFacts(
        number=certificate.number, name=data.get("name", ""), id_masked=data.get("id_masked", ""),
        start=certificate.period_start, end=certificate.period_end, total_hours=certificate.total_hours,
        lines=lines, issued_on=certificate.issued_at.astimezone(ZoneInfo(timezone)).date(),
        revoked_at=certificate.revoked_at, revoked_reason=certificate.revoked_reason)


# ---- signed download links ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LinkCheck:
    number: str | None  # None: forged or garbled
    expired: bool = False


def _mac(secret: str, payload: str) -> str:
    key = hashlib.sha256(b"volunteer-bot/certificate-link/" + secret.encode()).digest()
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()[:32]


def sign_download(number: str, *, expires_at: datetime, secret: str) -> str:
    payload = f"{number}|{int(expires_at.timestamp())}"
    return base64.urlsafe_b64encode(f"{payload}|{_mac(secret, payload)}".encode()).decode().rstrip("=")


def open_download(token: str, *, secret: str, now: datetime) -> LinkCheck:
    """The certificate number behind a link, whether the link has expired, or no number (forged)."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        number, expires, mac = raw.split("|")
        if not hmac.compare_digest(mac, _mac(secret, f"{number}|{expires}")):
            return LinkCheck(None)
        expired = int(expires) <= now.timestamp()
    except (ValueError, UnicodeDecodeError):
        return LinkCheck(None)
    return LinkCheck(number, expired=expired)
