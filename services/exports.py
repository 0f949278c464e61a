"""Tables for download (the 台账, an activity's roster): typed rows under column headers, written as CSV or
as an Excel workbook (.xlsx, through XlsxWriter).

A feature builds one :class:`Table` (its columns, each with how to read a row) and both writers consume
it, so a column added to the table appears in both formats. Cells are typed: a ``date`` or a naive local
``datetime`` becomes a real Excel date, an ``int``/``float`` a number, a :class:`common.i18n.Msg` is
rendered in the export's language, any other text is written as text — never as a formula.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from common.i18n import Msg, Text, _, render

# the exports are written in 简体 (the ledger is filed with the 志愿服务 authorities)
EXPORT_LANGUAGE = "zh-Hans"
TEXT, DATE, DATETIME, NUMBER = "text", "date", "datetime", "number"
FORMATS = ("xlsx", "csv")
CONTENT_TYPES = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}

Cell = str | Msg | date | datetime | int | float | None

# a cell starting with one of these is read as a formula by Excel / WPS / LibreOffice (CSV injection)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    """Text a spreadsheet shows as text: a leading formula character gets a single quote before it (OWASP)."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


@dataclass(frozen=True, slots=True)
class Column:
    title: Msg
    value: Callable[[Any], Cell]  # reads this column's cell from one item of the table
    kind: str = TEXT  # TEXT, DATE, DATETIME or NUMBER: the column's format in Excel
    width: float = 12  # in Excel's units (characters; a Chinese character counts about 2)
    total: bool = False  # summed in the total row


@dataclass(frozen=True, slots=True)
class Table:
    sheet: Text  # the worksheet's name
    columns: tuple[Column, ...]
    rows: list[tuple[Cell, ...]]
    total_label: Msg | None = None  # a total row (its label in the first column) when set

    @classmethod
    def of(cls, sheet: Text, columns: Sequence[Column], items: Iterable[Any], *, total: bool = True) -> Table:
        return cls(sheet=sheet, columns=tuple(columns), rows=[tuple(c.value(item) for c in columns) for item in items],
                   total_label=_("合计") if total else None)

    def totals(self) -> list[float | None]:
        return [sum(float(row[i] or 0) for row in self.rows) if column.total else None  # type: ignore[arg-type]
                for i, column in enumerate(self.columns)]


def _number(value: float) -> str:
    """3 → "3", 2.5 → "2.5", 12345.25 → "12345.25" (``:g`` would round a large total)."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _csv_cell(value: Cell, lang: str) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float):
        return _number(value)
    return safe_cell(render(value, lang))


def table_csv(table: Table, *, lang: str = EXPORT_LANGUAGE) -> bytes:
    """UTF-8 with a BOM so Excel opens the Chinese columns correctly; the total line at the end.

    Names, titles and notes come from users: every text cell goes through :func:`safe_cell`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([render(column.title, lang) for column in table.columns])
    for row in table.rows:
        writer.writerow([_csv_cell(value, lang) for value in row])
    if table.total_label is not None:
        totals = table.totals()
        writer.writerow([render(table.total_label, lang), *("" if t is None else _number(t) for t in totals[1:])])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def table_xlsx(table: Table, *, lang: str = EXPORT_LANGUAGE) -> bytes:
    """One worksheet: a bold, frozen header row, column widths, dates as dates, numbers as numbers, text
    written with ``write_string`` (a name like ``=HYPERLINK(…)`` stays text) and a total row of SUM formulas."""
    import xlsxwriter  # ~1 MB; loaded only when someone exports (tests/test_lean_start.py)
    from xlsxwriter.utility import xl_range

    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False,
                                            "strings_to_numbers": False, "strings_to_urls": False})
    header = workbook.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True,
                                  "valign": "vcenter"})
    formats = {DATE: workbook.add_format({"num_format": "yyyy-mm-dd"}),
               DATETIME: workbook.add_format({"num_format": "yyyy-mm-dd hh:mm"}),
               NUMBER: workbook.add_format({"num_format": "General"}),  # 3 and 2.5 (a "0.##" shows "3.")
               TEXT: workbook.add_format({"quote_prefix": True})}  # typed over in Excel, it stays text
    bold_number = workbook.add_format({"bold": True, "num_format": "General", "top": 1})
    bold_text = workbook.add_format({"bold": True, "top": 1})
    sheet = workbook.add_worksheet(_sheet_name(render(table.sheet, lang)))
    for index, column in enumerate(table.columns):  # a date column keeps its format for rows typed in later
        sheet.set_column(index, index, column.width, formats[column.kind] if column.kind != TEXT else None)
        sheet.write_string(0, index, render(column.title, lang), header)
    sheet.freeze_panes(1, 0)
    for r, row in enumerate(table.rows, start=1):
        for c, value in enumerate(row):
            _write(sheet, r, c, value, formats, lang)
    last = len(table.rows)
    if last:
        sheet.autofilter(0, 0, last, len(table.columns) - 1)
    if table.total_label is not None:
        total_row = last + 1
        sheet.write_string(total_row, 0, render(table.total_label, lang), bold_text)
        for c, total in enumerate(table.totals()[1:], start=1):
            if total is None:
                sheet.write_blank(total_row, c, None, bold_text)
            elif last:
                sheet.write_formula(total_row, c, f"=SUM({xl_range(1, c, last, c)})", bold_number, total)
            else:
                sheet.write_number(total_row, c, 0, bold_number)
    workbook.close()
    return buffer.getvalue()


def _write(sheet: Any, row: int, col: int, value: Cell, formats: dict[str, Any], lang: str) -> None:
    if value is None:
        return
    if isinstance(value, datetime | date):  # naive local time: Excel has no time zones
        sheet.write_datetime(row, col, value, formats[DATETIME if isinstance(value, datetime) else DATE])
    elif isinstance(value, int | float) and not isinstance(value, bool):
        sheet.write_number(row, col, value, formats[NUMBER])
    else:
        text = render(value, lang)
        sheet.write_string(row, col, text, formats[TEXT] if text.startswith(FORMULA_STARTS) else None)


def local_cell(value: datetime | None, tz: tzinfo) -> datetime | None:
    """A stored time (naive ones are UTC) as the naive local time a cell shows: Excel has no time zones."""
    if value is None:
        return None
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(tz).replace(tzinfo=None, microsecond=0)

def _sheet_name(name: str) -> str:
    """Excel refuses []:*?/\\ in a sheet name and more than 31 characters."""
    return "".join(" " if ch in "[]:*?/\\" else ch for ch in name)[:31] or "Sheet1"


def write_table(table: Table, fmt: str, *, lang: str = EXPORT_LANGUAGE) -> bytes:
    """The table in one of :data:`FORMATS`."""
    return table_xlsx(table, lang=lang) if fmt == "xlsx" else table_csv(table, lang=lang)


# ---- signed download links ------------------------------------------------------------------------
def _mac(secret: str, payload: str, purpose: str) -> str:
    key = hashlib.sha256(f"volunteer-bot/{purpose}/".encode() + secret.encode()).digest()
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()[:32]


def sign_fields(fields: Sequence[str], *, purpose: str, secret: str) -> str:
    """A URL-safe token carrying ``fields`` (no ``|`` in them) and a MAC keyed by ``purpose``."""
    payload = "|".join(fields)
    return base64.urlsafe_b64encode(f"{payload}|{_mac(secret, payload, purpose)}".encode()).decode().rstrip("=")


def verify_fields(token: str, *, purpose: str, secret: str, count: int) -> list[str] | None:
    """The ``count`` fields of a token signed for ``purpose``, or None when it is forged or garbled."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    *fields, mac = raw.split("|")
    expected = _mac(secret, "|".join(fields), purpose)
    if len(fields) != count or not hmac.compare_digest(mac.encode(), expected.encode()):
        return None
    return fields
