"""mbox as real archives write it: Mailman pipermail From_ lines, other From_ variants, bounded memory."""

from __future__ import annotations

import calendar
import gzip
import hashlib
import io
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailindex.sources import mbox as mbox_module
from mailindex.sources.mbox import (Envelope, MboxSource, RawSlice, contents, is_envelope, parse_envelope_date,
                                    split_mbox, unescape)
from tests.budget import examples

from .conftest import ENVELOPE, mbox_bytes, mboxrd_escape, scan


def date(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> int:
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))


def asctime(secs: int) -> str:
    """C asctime() of a UTC time, in any locale: "Wed Apr  6 17:25:41 2005"."""
    t = time.gmtime(secs)
    return (f"{'Mon Tue Wed Thu Fri Sat Sun'.split()[t.tm_wday]} "
            f"{'Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec'.split()[t.tm_mon - 1]} {t.tm_mday:2d} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} {t.tm_year}")


def pipermail_line(sender: str, secs: int) -> bytes:
    """A From_ line as Mailman's pipermail writes it: the sender, two spaces, asctime."""
    return f"From {sender}  {asctime(secs)}\n".encode()


def msg(n: int, *body: bytes, headers: bytes = b"") -> bytes:
    lines = [b"From: user%d at example.org (User %d)" % (n, n), b"Subject: m%d" % n,
             *filter(None, headers.split(b"\n")), b"", *(body or [b"body %d" % n])]
    return b"\n".join(lines) + b"\n"


def listed(path: Path) -> list:
    """Entries of an mbox file, each checked against read_bytes of its locator."""
    source = MboxSource(path)
    entries = list(scan(source))
    for e in entries:
        got = source.read_bytes(e.locator)
        assert hashlib.sha256(got).hexdigest() == e.key.split("#")[0]
        assert e.data is None or got == e.data
    return entries


# --- From_ lines ------------------------------------------------------------

@pytest.mark.parametrize("line,sender,when", [
    (b"From andy_liaw at merck.com  Wed Apr  6 17:25:41 2005", "andy_liaw at merck.com",
     date(2005, 4, 6, 17, 25, 41)),
    (b"From Friedrich.Leisch at ci.tuwien.ac.at  Wed Jan  3 19:07:38 2001\r",
     "Friedrich.Leisch at ci.tuwien.ac.at", date(2001, 1, 3, 19, 7, 38)),
    (b"From Martin Maechler <maechler at stat.math.ethz.ch>  Fri Apr 11 08:18:42 1997",
     "Martin Maechler <maechler at stat.math.ethz.ch>", date(1997, 4, 11, 8, 18, 42)),
    (b"From guido at sirio.stat.unipd.it (Guido Masarotto)  Mon Mar  2 10:00:00 1998",
     "guido at sirio.stat.unipd.it (Guido Masarotto)", date(1998, 3, 2, 10)),
    # The R lists' later archives obscure addresses further.
    (b"From bbo|ker @end|ng |rom gm@||@com  Tue Mar  5 10:00:00 2019", "bbo|ker @end|ng |rom gm@||@com",
     date(2019, 3, 5, 10)),
])
def test_pipermail_envelope_lines(line: bytes, sender: str, when: int) -> None:
    env = Envelope.parse(line)
    assert (env.sender, env.date, env.spaced) == (sender, when, True)
    assert is_envelope(line, prev_blank=True, next_line=b"From: x at y.org (X)")
    assert is_envelope(line, prev_blank=False, next_line=b"Date: Wed, 6 Apr 2005 17:25:41 +0200")
    # A sender with spaces is known only by the date after it: quoted in a body it splits nothing.
    assert not is_envelope(line, prev_blank=True, next_line=b"is the line I mean.")
    assert not is_envelope(line, prev_blank=True, next_line=None)


@pytest.mark.parametrize("line,sender,when", [
    # pipermail with a plain address: one word, so any From_ line rule takes it
    (b"From Kurt.Hornik@ci.tuwien.ac.at  Mon Aug  4 12:15:54 1997", "Kurt.Hornik@ci.tuwien.ac.at",
     date(1997, 8, 4, 12, 15, 54)),
    (b'From "John Smith"@example.org Tue Aug  5 08:00:23 2008', '"John Smith"@example.org',
     date(2008, 8, 5, 8, 0, 23)),
    (b"From xxxx@yyyyyyy.fr Wed Aug  2 00:39:12 MET DST 1995", "xxxx@yyyyyyy.fr", date(1995, 8, 1, 22, 39, 12)),
    (b"From a@b Sat Jan  3 01:05:34 CET 1996", "a@b", date(1996, 1, 3, 0, 5, 34)),
    (b"From a@b Tue Aug  5 2008 08:00:23", "a@b", date(2008, 8, 5, 8, 0, 23)),
    (b"From a@b Tue Aug  5 2008 08:00:23 +0200", "a@b", date(2008, 8, 5, 6, 0, 23)),
    (b"From a@b Thu, 9 Nov 2002 22:33:52", "a@b", date(2002, 11, 9, 22, 33, 52)),
    (b"From  Mon Jan  1 00:00:00 2001", "", date(2001, 1, 1)),
    (b"From MAILER-DAEMON Sun Aug  7 11:40:37 2022 remote from host", "MAILER-DAEMON",
     date(2022, 8, 7, 11, 40, 37)),
])
def test_other_envelope_variants(line: bytes, sender: str, when: int) -> None:
    env = Envelope.parse(line)
    assert (env.sender, env.date, env.spaced) == (sender, when, False)
    assert is_envelope(line, prev_blank=False, next_line=b"no header")


@pytest.mark.parametrize("line", [
    b"From time to time I run R CMD check on it.",
    b"From Russia with love",
    b"From the CHANGES file:",
    b"From R >=2.7.0, it seems you should also be able to write unicode text",
    b"From jens.oehlschlaegel at bbdo-interone.de",
    b"From  R CMD check --help",
    b"From x at y  Wed Apr  6 17:25:41 2005 and then some",  # the date must end the line
    b"From the meeting on Wed Apr  6 17:25:41 2005",  # one space before the date
    b"From x at y  Wed Apr 31 17:25:41 2005",  # no such day
    b"From x at y  Apr  6 17:25:41 2005",  # pipermail always writes the weekday
])
def test_body_from_lines_are_not_envelopes(line: bytes) -> None:
    assert not is_envelope(line, prev_blank=True, next_line=b"Subject: looks like a header")


def test_envelope_date_formats() -> None:
    assert parse_envelope_date("Wed Aug  2 00:39:12 MET DST 1995") == date(1995, 8, 1, 22, 39, 12)
    assert parse_envelope_date("Tue Aug  5 2008 08:00:23 EST") == date(2008, 8, 5, 13, 0, 23)
    assert parse_envelope_date("Tue Aug  5 08:00:23 XYZ 2008") == date(2008, 8, 5, 8, 0, 23)  # unknown: UTC
    for bad in ("Mon Jan  1 00:00:00 0000", "Tue Aug  5 2008", "Tue Aug  5 2008 25:00:00"):
        assert parse_envelope_date(bad) is None


# --- pipermail archives -----------------------------------------------------

def test_pipermail_archive(tmp_path: Path) -> None:
    m1 = msg(1, b"From time to time I run it.", b"", b"From the CHANGES file:", b"  o  fixed",
             b">From an escaped line", b"From jens at example.org")
    # A list footer and no blank line before the next From_ line (r-devel, 2001).
    m2 = msg(2, b"text", b"_._._._._._._._._._._._._._._._._._._._._._._._._._._._._._._._._._._._._._._")
    # A pasted archive line in a body, not followed by headers.
    m3 = msg(3, b"The archive shows:", b"", b"From andy_liaw at merck.com  Wed Apr  6 17:25:41 2005",
             b"which is the line I mean.")
    m4 = msg(4)
    when = [date(2005, 4, 6, 17, 25, 41), date(2001, 1, 3, 19, 7, 38), date(1997, 4, 11, 8, 18, 42),
            date(2024, 2, 29)]
    senders = ["andy_liaw at merck.com", "Friedrich.Leisch at ci.tuwien.ac.at",
               "Martin Maechler <maechler at stat.math.ethz.ch>", "x at y.org"]
    path = tmp_path / "2005-April.txt"
    path.write_bytes(pipermail_line(senders[0], when[0]) + m1 + b"\n" + pipermail_line(senders[1], when[1]) + m2
                     + pipermail_line(senders[2], when[2]) + m3 + b"\n" + pipermail_line(senders[3], when[3]) + m4)
    entries = listed(path)
    assert [e.data for e in entries] == [m1.replace(b">From an", b"From an"), m2, m3, m4]
    assert [e.envelope_date for e in entries] == when
    assert [e.locator["escaped"] for e in entries] == [True, False, False, False]


SENDERS = st.builds(lambda user, host, name: f"{name} <{user} at {host}>" if name else f"{user} at {host}",
                    st.sampled_from(["andy_liaw", "Kurt.Hornik", "r-devel", "p.dalgaard"]),
                    st.sampled_from(["merck.com", "ci.tuwien.ac.at", "stat.math.ethz.ch"]),
                    st.sampled_from(["", "Martin Maechler", "Prof Brian Ripley", "a  b"]))
TIMES = st.integers(min_value=0, max_value=4_102_444_799)  # 1970 to 2099
NOT_ENVELOPES = [b"From time to time", b"From Russia with love", b"From the CHANGES file:", b"From  R CMD check",
                 b"From x at y  Wed Apr  6 17:25:41 2005 and then some", b"From x at y", b"From",
                 b"From: header-like", b" From x at y  Wed Apr  6 17:25:41 2005", b">>From", b"", b"text", b">"]
ENVELOPE_LOOKING = [b"From andy_liaw at merck.com  Wed Apr  6 17:25:41 2005", b"From a@b Sat Jan  3 01:05:34 1996",
                    b"From Martin Maechler <m at x.ch>  Fri Apr 11 08:18:42 1997",
                    b">From a@b Sat Jan  3 01:05:34 1996",
                    b"From: x", b"From - ", b"From -"]
TEXT = st.binary(max_size=10).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b""))


def bodies(lines: st.SearchStrategy[bytes]) -> st.SearchStrategy[list[bytes]]:
    """Messages with headers, then body lines from `lines`."""
    return st.lists(st.lists(lines, max_size=6), min_size=1, max_size=5).map(
        lambda specs: [msg(i, *body) for i, body in enumerate(specs)])


@settings(max_examples=examples(2), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=bodies(st.one_of(st.sampled_from(NOT_ENVELOPES), TEXT)), data=st.data(),
       chunk=st.sampled_from([5, 64, 1 << 20]))
def test_pipermail_round_trip(messages: list[bytes], data: st.DataObject, chunk: int) -> None:
    # As pipermail writes: body From lines left as they are (none here starts a message).
    envelopes = [(data.draw(SENDERS), data.draw(TIMES)) for _ in messages]
    box = b"".join(pipermail_line(s, t) + m + b"\n" for (s, t), m in zip(envelopes, messages, strict=True))
    with mock.patch.object(mbox_module, "CHUNK", chunk):
        pieces = list(split_mbox(io.BytesIO(box)))
    assert [p.raw for p in pieces] == messages
    assert [(p.envelope.sender, p.envelope.date) for p in pieces] == envelopes


@settings(max_examples=examples(1.5), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=bodies(st.one_of(st.sampled_from(NOT_ENVELOPES + ENVELOPE_LOOKING), TEXT)), data=st.data())
def test_pipermail_escaped_round_trip(messages: list[bytes], data: st.DataObject) -> None:
    # Escaped (mboxrd), a body may hold anything, envelope lines too.
    envelopes = [(data.draw(SENDERS), data.draw(TIMES)) for _ in messages]
    box = b"".join(pipermail_line(s, t) + mboxrd_escape(m) + b"\n"
                   for (s, t), m in zip(envelopes, messages, strict=True))
    assert [unescape(p.raw) for p in split_mbox(io.BytesIO(box))] == messages


# --- bounded memory ---------------------------------------------------------

class _Peak(mbox_module._Window):
    """A window that remembers the most bytes it ever held."""

    peak = 0

    def more(self) -> bool:
        grew = super().more()
        _Peak.peak = max(_Peak.peak, len(self.buf))
        return grew


@pytest.fixture
def small_window() -> Iterator[int]:
    """MAX_HELD of 64 KiB read in 4 KiB chunks; yields the most a window may hold then."""
    _Peak.peak = 0
    with mock.patch.object(mbox_module, "MAX_HELD", 1 << 16), mock.patch.object(mbox_module, "CHUNK", 1 << 12), \
            mock.patch.object(mbox_module, "_Window", _Peak):
        # A spill leaves a chunk's worth; a From_ line and the line after it may add MAX_LINE each.
        yield (1 << 16) + 2 * (1 << 12) + 2 * mbox_module.MAX_LINE


def big_box() -> tuple[bytes, list[bytes]]:
    """An mbox with messages far longer than MAX_HELD (64 KiB here), and the messages."""
    many_lines = msg(1, *[b"line %06d of a long message" % i for i in range(40_000)], b">From an escape")
    one_line = msg(2, b"<p>" + b"x>From y>>>>From z F>From " * 40_000 + b"</p>")
    inner = mbox_bytes([msg(9, b"From the inner box")] * 3000, escape=lambda m: m)  # From_ lines, kept raw
    counted = msg(3, inner, headers=b"Content-Length: %d" % (len(inner) + 1))
    messages = [many_lines, msg(4), one_line, counted, msg(5)]
    return mbox_bytes(messages[:3]) + ENVELOPE + counted + b"\n" + mbox_bytes(messages[4:]), messages


def test_long_messages_are_not_held(tmp_path: Path, small_window: int) -> None:
    box, messages = big_box()
    path = tmp_path / "big.mbox"
    path.write_bytes(box)
    entries = listed(path)
    assert _Peak.peak <= small_window < len(box) // 10
    assert [e.key.split("#")[0] for e in entries] == [hashlib.sha256(m).hexdigest() for m in messages]
    assert [e.data is None for e in entries] == [True, False, True, True, False]
    assert [e.locator["escaped"] for e in entries] == [True, False, False, False, False]
    assert [e.folders for e in entries] == [("big",)] * 5
    # The same held (MAX_HELD restored) gives the same entries, but for the data.
    with mock.patch.object(mbox_module, "MAX_HELD", 1 << 30):
        held = listed(path)
    assert [(e.key, e.locator, e.flags) for e in held] == [(e.key, e.locator, e.flags) for e in entries]
    assert [e.data for e in held] == messages


def test_long_messages_compressed(tmp_path: Path, small_window: int) -> None:
    box, messages = big_box()
    path = tmp_path / "big.mbox.gz"
    path.write_bytes(gzip.compress(box, compresslevel=1))
    entries = listed(path)  # the Content-Length is checked by seeking in the gzip stream
    assert _Peak.peak <= small_window
    assert [e.key.split("#")[0] for e in entries] == [hashlib.sha256(m).hexdigest() for m in messages]


def test_long_content_length_on_a_stream_that_cannot_seek(small_window: int) -> None:
    box, messages = big_box()

    class Pipe(io.BytesIO):
        def seekable(self) -> bool:
            return False

    pieces = list(split_mbox(Pipe(box)))
    assert _Peak.peak <= small_window
    # Not trusted: the counted message splits at the From_ lines of the box in its body.
    assert len(pieces) == 3 + 1 + 3000 + 1
    assert contents(pieces[0])[2] == hashlib.sha256(messages[0]).hexdigest()


def test_long_lines_are_no_envelopes(tmp_path: Path, small_window: int) -> None:
    first = b"From a@b Mon Jan  1 00:00:00 2001 " + b"y" * 200_000 + b"\n"
    long_from = b"From a@b Mon Jan  1 00:00:00 2001 " + b"z" * (2 * mbox_module.MAX_LINE)
    path = tmp_path / "box"
    path.write_bytes(first + msg(1, long_from) + b"\n" + ENVELOPE + msg(2))
    entries = listed(path)
    assert _Peak.peak <= small_window
    assert [e.data for e in entries] == [msg(1, long_from), msg(2)]
    assert entries[0].locator["offset"] == len(first)
    assert entries[0].envelope_date == date(2001, 1, 1)


PIECES = [b">", b">>", b"From ", b"F", b"Fro", b"m ", b"x", b"\r", b"\n", b"\n\n", b">From ",
          b"From a@b Mon Jan  1 00:00:00 2001\n"]


def stored(pieces: list[RawSlice]) -> list[tuple[int, int, bool, str]]:
    return [(p.offset, p.length, *contents(p)[1:3]) for p in pieces]


@settings(max_examples=examples(5), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies=st.lists(st.lists(st.sampled_from(PIECES), max_size=40).map(b"".join), min_size=1, max_size=4),
       counted=st.lists(st.booleans(), min_size=4, max_size=4), held=st.integers(min_value=40, max_value=120),
       chunk=st.sampled_from([3, 16, 64]))
def test_spilled_pieces_match_held_ones(bodies: list[bytes], counted: list[bool], held: int, chunk: int) -> None:
    # Whatever the bytes and wherever a long message is cut, its digest, escaping and extent are
    # what they are when the message is held whole.
    parts = []
    for body, by_length in zip(bodies, counted, strict=False):
        if by_length:  # raw, as a Content-Length writer leaves it
            parts.append(ENVELOPE + b"Content-Length: %d\n\n" % len(body) + body + b"\n")
        else:
            parts.append(ENVELOPE + b"X: y\n\n" + mboxrd_escape(body) + b"\n")
    box = b"".join(parts)
    with mock.patch.object(mbox_module, "CHUNK", chunk), mock.patch.object(mbox_module, "MAX_HEAD", 40):
        whole = list(split_mbox(io.BytesIO(box)))
        with mock.patch.object(mbox_module, "MAX_HELD", held):
            cut = list(split_mbox(io.BytesIO(box)))
    assert stored(cut) == stored(whole)
    for p in whole:
        assert box[p.offset:p.offset + p.length] == p.raw


LINE_PIECES = [b">", b">>>>>>>>", b"From ", b"F", b"Fro", b"m ", b"x", b"\r", b">From ",
               b"From a@b Mon Jan  1 00:00:00 2001"]


@settings(max_examples=examples(7.5), deadline=None)
@given(lines=st.lists(st.lists(st.sampled_from(LINE_PIECES), max_size=30).map(b"".join), min_size=1, max_size=4),
       steps=st.lists(st.integers(min_value=1, max_value=40), max_size=30), body_line=st.integers(0, 3))
def test_cut_pieces_show_the_line_patterns_of_the_whole(lines: list[bytes], steps: list[int],
                                                        body_line: int) -> None:
    # Cut wherever _cut allows as more bytes come, the pieces hash, unescape and show raw
    # From lines as the whole does (a counted body starting at a line start).
    whole = b"\n".join(lines)
    line_starts = [0] + [i + 1 for i, byte in enumerate(whole) if byte == ord("\n")]
    body_at = line_starts[min(body_line, len(line_starts) - 1)]
    spill = mbox_module._Spill(b"", body_at)
    buf, lo, hi = bytearray(whole), 0, 0
    for step in steps:
        hi = min(hi + step, len(buf))
        cut = mbox_module._cut(buf, lo, hi)
        assert lo <= cut <= hi
        spill.feed(bytes(buf[lo:cut]))
        lo = cut
    spill.feed(bytes(buf[lo:]))
    assert spill.raw.hexdigest() == hashlib.sha256(whole).hexdigest()
    assert spill.plain.hexdigest() == hashlib.sha256(unescape(whole)).hexdigest()
    assert spill.escapes == bool(mbox_module._ESCAPED.search(whole))
    assert spill.body_from == bool(mbox_module._RAW_FROM.search(whole, body_at))
