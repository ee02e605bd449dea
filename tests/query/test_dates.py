"""Dates as typed: every ISO 8601 form names the period the README says, checked against datetime."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailindex.query.dates import DateSyntaxError, instant, period

UTC = dt.timezone.utc
moments = st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2099, 12, 31),
                       timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=0))
zones = st.integers(-14 * 60, 14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))


def _ts(d: dt.datetime) -> int:
    return int(d.timestamp())


@given(moments)
def test_each_form_is_its_period(d: dt.datetime) -> None:
    year = dt.datetime(d.year, 1, 1, tzinfo=UTC)
    month = dt.datetime(d.year, d.month, 1, tzinfo=UTC)
    next_month = dt.datetime(d.year + d.month // 12, d.month % 12 + 1, 1, tzinfo=UTC)
    day = dt.datetime(d.year, d.month, d.day, tzinfo=UTC)
    minute = d.replace(second=0)
    assert period(f"{d.year}") == (_ts(year), _ts(year.replace(year=d.year + 1)))
    assert period(d.strftime("%Y-%m")) == (_ts(month), _ts(next_month))
    assert period(d.strftime("%Y-%m-%d")) == (_ts(day), _ts(day) + 86400)
    assert period(d.strftime("%Y-%m-%dT%H:%M")) == (_ts(minute), _ts(minute) + 60)
    assert period(d.strftime("%Y-%m-%d %H:%M:%SZ")) == (_ts(d), _ts(d) + 1)
    assert period(str(_ts(d))) == period(f"@{_ts(d)}") == (_ts(d), _ts(d) + 1)


@given(moments, zones)
def test_a_zone_moves_the_instant(d: dt.datetime, zone: dt.timezone) -> None:
    local = d.astimezone(zone)
    text = local.strftime("%Y-%m-%dT%H:%M:%S") + local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:]
    assert instant(text) == _ts(d)


@pytest.mark.parametrize("text", ["", "soon", "2001-13", "2001-02-29", "2001-04-31", "2001-01-01T24:00",
                                  "2001-01-01T10:60", "01-02-2001", "2001/01/01", "2001-1-1", "12:30"])
def test_what_is_no_date_is_refused(text: str) -> None:
    with pytest.raises(DateSyntaxError):
        period(text)


def test_a_leap_day_is_a_date() -> None:
    assert period("2000-02-29") == (951782400, 951868800)
