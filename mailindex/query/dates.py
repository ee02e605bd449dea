"""Points in time as people type them: ISO 8601 dates and times, or Unix seconds.

Each form names a period, [start, end) in Unix seconds: `2001` the year,
`2001-10` the month, `2001-10-05` the day, `2001-10-05T14:30` the minute,
`2001-10-05T14:30:15` (or a space for the `T`) the second, and `1002290415`
(any number of digits but four) or `@2001` one second. Times without a zone
are UTC; `Z` and `+02:00`/`-0500` name one.
"""

from __future__ import annotations

import calendar
import re

_ISO = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?"
                  r"(Z|[+-]\d{2}:?\d{2})?)?)?)?", re.ASCII | re.IGNORECASE)
_SECONDS = re.compile(r"@?-?\d+", re.ASCII)


class DateSyntaxError(ValueError):
    """The text is no date this module reads; the message says what was expected."""


def period(text: str) -> tuple[int, int]:
    """[start, end) in Unix seconds of the period `text` names (see the module's doc)."""
    text = text.strip()
    iso = _ISO.fullmatch(text)
    if iso and not (text.isdigit() and len(text) != 4):
        return _iso_period(iso)
    if _SECONDS.fullmatch(text):
        second = int(text.lstrip("@"))
        return second, second + 1
    raise DateSyntaxError(f"{text!r} is not a date: write 2001, 2001-10, 2001-10-05, 2001-10-05T14:30[:15][Z|+02:00] "
                          "or Unix seconds")


def _iso_period(m: re.Match[str]) -> tuple[int, int]:
    year, month, day, hour, minute, second, zone = m.groups()
    y = int(year)
    mo, d = int(month or 1), int(day or 1)
    h, mi, s = int(hour or 0), int(minute or 0), int(second or 0)
    if not 1 <= mo <= 12 or not 1 <= d <= calendar.monthrange(y, mo)[1] or h > 23 or mi > 59 or s > 59:
        raise DateSyntaxError(f"{m.group(0)!r} is not a date of the calendar")
    start = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) - _offset(zone)
    if second is not None:
        return start, start + 1
    if minute is not None:
        return start, start + 60
    if day is not None:
        return start, start + 86400
    if month is not None:
        ny, nm = (y + 1, 1) if mo == 12 else (y, mo + 1)
        return start, calendar.timegm((ny, nm, 1, 0, 0, 0, 0, 0, 0))
    return start, calendar.timegm((y + 1, 1, 1, 0, 0, 0, 0, 0, 0))


def _offset(zone: str | None) -> int:
    if not zone or zone.upper() == "Z":
        return 0
    digits = zone[1:].replace(":", "")
    seconds = int(digits[:2]) * 3600 + int(digits[2:]) * 60
    return seconds if zone[0] == "+" else -seconds


def instant(text: str) -> int:
    """The first second of the period `text` names: what a `--date-after 2001-10-05` means."""
    return period(text)[0]
