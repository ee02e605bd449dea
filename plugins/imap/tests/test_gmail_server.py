"""The Gmail imitation the IMAP backend is tested against, driven through imapclient as the backend would."""

from __future__ import annotations

import itertools
import re
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gmail_server import (ALL_MAIL, FIRST_MSGID, INBOX, SPAM, STARRED, TRASH, GmailServer, _Parser,
                                format_internaldate, parse_internaldate)

pytest.importorskip("imapclient", reason="the Gmail server tests drive it with imapclient")
from imapclient import IMAPClient  # noqa: E402
from imapclient.exceptions import IMAPClientError, LoginError  # noqa: E402

USER, PASSWORD = "alice@gmail.com", "secret"


def message(subject: str = "hello", body: str = "body text", **headers: str) -> bytes:
    """A small message with CRLF line ends (imaplib rewrites bare LFs on APPEND)."""
    lines = ["From: bob@example.com", f"Subject: {subject}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode()


def connect(gm: GmailServer, user: str = USER, password: str = PASSWORD) -> IMAPClient:
    client = IMAPClient(gm.host, port=gm.port, ssl=False, timeout=5)
    client.login(user, password)
    return client


def close(client: IMAPClient) -> None:
    """Log out, or just close the socket when the server already dropped the connection."""
    try:
        client.logout()
    except (IMAPClientError, OSError):
        try:
            client.shutdown()
        except OSError:
            pass


def copyuid(client: IMAPClient) -> tuple[int, list[int], list[int]]:
    """The last COPYUID response code: imapclient's copy()/move() return None, imaplib keeps it here."""
    validity, src, dst = client._imap.untagged_responses["COPYUID"][-1].split()
    return int(validity), [int(u) for u in src.split(b",")], [int(u) for u in dst.split(b",")]


def appenduid(answer: bytes) -> tuple[int, int]:
    """imapclient's append() returns the tagged OK text, which holds [APPENDUID validity uid]."""
    m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", answer)
    assert m is not None, answer
    return int(m.group(1)), int(m.group(2))


def uid_of(client: IMAPClient, msgid: int) -> int:
    """The UID of X-GM-MSGID `msgid` in the selected folder (via SEARCH X-GM-MSGID)."""
    found = client.search(["X-GM-MSGID", msgid])
    assert len(found) == 1, found
    return found[0]


def folder_msgids(client: IMAPClient, folder: str) -> set[int]:
    client.select_folder(folder)
    uids = client.search("ALL")
    return {d[b"X-GM-MSGID"] for d in client.fetch(uids, ["X-GM-MSGID"]).values()} if uids else set()


@pytest.fixture
def gm() -> Iterator[GmailServer]:
    with GmailServer(users={USER: PASSWORD}) as server:
        yield server
    assert server.errors == []


@pytest.fixture
def client(gm: GmailServer) -> Iterator[IMAPClient]:
    c = connect(gm)
    yield c
    close(c)


def test_login_is_refused_with_gmails_words(gm: GmailServer) -> None:
    c = IMAPClient(gm.host, port=gm.port, ssl=False, timeout=5)
    with pytest.raises(LoginError, match=r"\[AUTHENTICATIONFAILED\] Invalid credentials \(Failure\)"):
        c.login(USER, "wrong")
    with pytest.raises(LoginError, match="AUTHENTICATIONFAILED"):
        c.login("nobody@gmail.com", PASSWORD)
    c.login(USER, PASSWORD)
    c.logout()
    assert gm.commands[:2] == ["CAPABILITY", f'LOGIN {USER} "wrong"']  # imaplib leaves the user unquoted


def test_xoauth2_and_plain_authentication(gm: GmailServer) -> None:
    c = IMAPClient(gm.host, port=gm.port, ssl=False, timeout=5)
    with pytest.raises(LoginError, match="AUTHENTICATIONFAILED"):
        c.oauth2_login(USER, "bad-token")
    c.oauth2_login(USER, PASSWORD)
    assert c.list_folders(pattern=INBOX)[0][2] == INBOX
    c.logout()
    c = IMAPClient(gm.host, port=gm.port, ssl=False, timeout=5)
    c.plain_login(USER, PASSWORD)
    c.logout()
    assert gm.commands.count("AUTHENTICATE XOAUTH2") == 2 and "AUTHENTICATE PLAIN" in gm.commands


def test_capabilities_before_and_after_login() -> None:
    for condstore in (False, True):
        with GmailServer(users={USER: PASSWORD}, condstore=condstore) as gm:
            c = IMAPClient(gm.host, port=gm.port, ssl=False, timeout=5)
            before = set(c.capabilities())
            assert {b"IMAP4REV1", b"X-GM-EXT-1", b"AUTH=PLAIN"} <= before
            c.login(USER, PASSWORD)
            after = set(c.capabilities())
            assert {b"IMAP4REV1", b"UIDPLUS", b"MOVE", b"SPECIAL-USE", b"X-GM-EXT-1", b"ID", b"NAMESPACE"} <= after
            assert not any(cap.startswith(b"AUTH=") for cap in after)
            assert (b"CONDSTORE" in after) == condstore
            assert c.id_()[0][:2] == (b"name", b"GImap")
            assert c.namespace().personal == (("", "/"),)
            c.logout()


def test_list_shows_gmail_folders_with_special_use(client: IMAPClient) -> None:
    listing = {name: set(flags) for flags, delim, name in client.list_folders()}
    assert listing == {
        "INBOX": {b"\\HasNoChildren"},
        "[Gmail]": {b"\\HasChildren", b"\\Noselect"},
        "[Gmail]/All Mail": {b"\\HasNoChildren", b"\\All"},
        "[Gmail]/Drafts": {b"\\HasNoChildren", b"\\Drafts"},
        "[Gmail]/Important": {b"\\HasNoChildren", b"\\Important"},
        "[Gmail]/Sent Mail": {b"\\HasNoChildren", b"\\Sent"},
        "[Gmail]/Spam": {b"\\HasNoChildren", b"\\Junk"},
        "[Gmail]/Starred": {b"\\HasNoChildren", b"\\Flagged"},
        "[Gmail]/Trash": {b"\\HasNoChildren", b"\\Trash"},
    }
    assert {d for _, d, _ in client.list_folders()} == {b"/"}
    assert [name for _, _, name in client.list_folders(pattern="%")] == ["INBOX", "[Gmail]"]
    assert len(client.list_folders(pattern="[Gmail]/%")) == 7
    assert client.list_folders(pattern="inbox")[0][2] == "INBOX"
    assert client.find_special_folder(b"\\Trash") == TRASH
    assert client.find_special_folder(b"\\Sent") == "[Gmail]/Sent Mail"
    assert [name for _, _, name in client.list_sub_folders(pattern="[Gmail]/S*")] == ["[Gmail]/Sent Mail",
                                                                                      "[Gmail]/Spam",
                                                                                      "[Gmail]/Starred"]


def test_append_then_fetch_is_byte_exact_with_gmail_attributes(gm: GmailServer, client: IMAPClient) -> None:
    data = message("exact bytes", body="line one\r\nline two\r\n\r\n")
    when = datetime(2024, 3, 9, 8, 7, 6, tzinfo=timezone(timedelta(hours=-5)))
    validity, uid = appenduid(client.append(INBOX, data, flags=[b"\\Seen"], msg_time=when))
    assert gm.commands[-1] == f'APPEND "INBOX" (\\Seen) "09-Mar-2024 08:07:06 -0500" {{{len(data)}}}'
    [stored] = gm.messages(USER)
    assert stored.data == data and stored.labels == {INBOX} and stored.flags == {"\\Seen"}
    assert stored.msgid >= FIRST_MSGID and stored.thrid == stored.msgid and stored.internaldate == when
    assert client.select_folder(INBOX)[b"UIDVALIDITY"] == validity
    fetched = client.fetch([uid], ["BODY.PEEK[]", "X-GM-MSGID", "X-GM-THRID", "X-GM-LABELS", "FLAGS",
                                   "RFC822.SIZE", "INTERNALDATE", "BODY.PEEK[HEADER]"])[uid]
    assert fetched[b"BODY[]"] == data
    assert fetched[b"BODY[HEADER]"] == data[:data.index(b"\r\n\r\n") + 4]
    assert fetched[b"X-GM-MSGID"] == stored.msgid and fetched[b"X-GM-THRID"] == stored.thrid
    assert fetched[b"X-GM-LABELS"] == (b"\\Inbox",)
    assert fetched[b"FLAGS"] == (b"\\Seen",) and fetched[b"RFC822.SIZE"] == len(data)
    client.normalise_times = False
    assert client.fetch([uid], ["INTERNALDATE"])[uid][b"INTERNALDATE"] == when
    assert gm.commands[-2] == (f"UID FETCH {uid} (BODY.PEEK[] X-GM-MSGID X-GM-THRID X-GM-LABELS FLAGS "
                               "RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER])")


def test_imaplib_rewrites_bare_newlines_on_append(gm: GmailServer, client: IMAPClient) -> None:
    client.append(INBOX, b"Subject: lf\n\nbody\n")
    assert gm.messages(USER)[0].data == b"Subject: lf\r\n\r\nbody\r\n"  # the server stores what it was sent


def test_body_fetch_without_peek_sets_seen_but_not_when_examined(gm: GmailServer, client: IMAPClient) -> None:
    gm.add_message(USER, message(), labels=[INBOX])
    client.select_folder(INBOX, readonly=True)
    assert client.fetch([1], ["BODY[]"])[1][b"BODY[]"] == message()
    assert gm.messages(USER)[0].flags == set()
    client.select_folder(INBOX)
    answer = client.fetch([1], ["BODY[TEXT]", "RFC822.HEADER", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]",
                                "BODY.PEEK[]<0.4>"])[1]
    assert answer[b"BODY[TEXT]"] == b"body text\r\n" and answer[b"FLAGS"] == (b"\\Seen",)
    assert answer[b"RFC822.HEADER"].startswith(b"From: bob@example.com\r\n")
    assert answer[b"BODY[HEADER.FIELDS (SUBJECT)]"] == b"Subject: hello\r\n\r\n"
    assert answer[b"BODY[]<0>"] == b"From"
    assert gm.messages(USER)[0].flags == {"\\Seen"}


def test_copy_to_a_label_adds_the_label_to_the_same_message(gm: GmailServer, client: IMAPClient) -> None:
    msgid = gm.add_message(USER, message(), labels=[INBOX])
    client.create_folder("Work")
    client.select_folder(INBOX)
    assert client.copy([1], "Work") is None
    assert gm.commands[-1] == 'UID COPY 1 "Work"'
    validity, src, dst = copyuid(client)
    assert (validity, src) == (gm.uidvalidity(USER, "Work"), [1]) and gm.uids(USER, "Work") == {dst[0]: msgid}
    [stored] = gm.messages(USER)
    assert stored.labels == {INBOX, "Work"}
    assert client.get_gmail_labels([1]) == {1: ["\\Inbox", "Work"]}
    client.select_folder("Work")
    assert client.fetch(dst, ["X-GM-MSGID"])[dst[0]][b"X-GM-MSGID"] == msgid
    client.copy(dst, "Work")  # already there: same UID, still one message
    assert copyuid(client)[2] == dst and len(gm.messages(USER)) == 1
    client.copy(dst, ALL_MAIL)  # nothing to do, but it succeeds
    assert gm.messages(USER)[0].labels == {INBOX, "Work"}
    with pytest.raises(IMAPClientError, match=r"\[TRYCREATE\]"):
        client.copy(dst, "Nowhere")


def test_deleted_then_uid_expunge_in_a_label_keeps_the_message_in_all_mail(gm: GmailServer,
                                                                          client: IMAPClient) -> None:
    msgid = gm.add_message(USER, message(), labels=[INBOX, "Work"])
    other = gm.add_message(USER, message("other"), labels=["Work"])
    client.select_folder("Work")
    assert client.delete_messages([1, 2]) == {1: (b"\\Deleted",), 2: (b"\\Deleted",)}
    assert client.uid_expunge([1]) == [None]
    assert gm.commands[-1] == "UID EXPUNGE 1"
    assert {m.msgid: m.labels for m in gm.messages(USER)} == {msgid: {INBOX}, other: {"Work"}}
    assert client.search("ALL") == [2]  # UID EXPUNGE left the other \Deleted message alone
    assert folder_msgids(client, ALL_MAIL) == {msgid, other}
    client.select_folder(INBOX)
    assert client.get_flags([1]) == {1: ()}  # \Deleted was a mark on the Work view only


def test_expunge_answers_sequence_numbers_highest_first(gm: GmailServer, client: IMAPClient) -> None:
    for i in range(4):
        gm.add_message(USER, message(f"m{i}"), labels=["Work"])
    client.select_folder("Work")
    client.add_flags([2, 4], [b"\\Deleted"], silent=True)
    text, responses = client.expunge()
    assert responses == [(4, b"EXPUNGE"), (2, b"EXPUNGE")]
    assert gm.commands[-1] == "EXPUNGE"
    assert client.search("ALL") == [1, 3]


def test_copy_to_trash_moves_it_there_and_expunge_in_trash_deletes_for_ever(gm: GmailServer,
                                                                           client: IMAPClient) -> None:
    msgid = gm.add_message(USER, message(), labels=[INBOX, "Work"], flags=["\\Flagged"])
    client.select_folder(INBOX)
    client.copy([1], TRASH)
    assert gm.messages(USER)[0].labels == {TRASH}
    assert client.search("ALL") == []
    assert client.folder_status(ALL_MAIL)[b"MESSAGES"] == 0
    assert client.folder_status(STARRED)[b"MESSAGES"] == 0
    assert client.folder_status("Work")[b"MESSAGES"] == 0
    client.select_folder(TRASH)
    assert client.get_gmail_labels([1]) == {1: ["\\Trash"]}
    uid = uid_of(client, msgid)
    client.delete_messages([uid], silent=True)
    assert client.expunge()[1] == [(1, b"EXPUNGE")]
    assert gm.messages(USER) == []


def test_expunge_in_all_mail_moves_to_trash_and_spam_deletes(gm: GmailServer, client: IMAPClient) -> None:
    msgid = gm.add_message(USER, message(), labels=[INBOX])
    spam = gm.add_message(USER, message("spam"), labels=[SPAM])
    client.select_folder(ALL_MAIL)
    assert client.search("ALL") == [1]
    client.delete_messages([1])
    client.expunge()
    assert {m.msgid: m.labels for m in gm.messages(USER)} == {msgid: {TRASH}, spam: {SPAM}}
    client.select_folder(SPAM)
    client.delete_messages([1])
    client.close_folder()  # CLOSE expunges too
    assert [m.msgid for m in gm.messages(USER)] == [msgid]


def test_flags_are_shared_across_folders(gm: GmailServer, client: IMAPClient) -> None:
    msgid = gm.add_message(USER, message(), labels=[INBOX, "Work"])
    client.select_folder(INBOX)
    assert client.add_flags([1], [b"\\Seen", b"\\Flagged", b"$Custom"]) == {
        1: (b"$Custom", b"\\Flagged", b"\\Seen")}
    assert gm.commands[-1] == "UID STORE 1 +FLAGS (\\Seen \\Flagged $Custom)"
    client.select_folder("Work")
    assert set(client.get_flags([1])[1]) == {b"\\Seen", b"\\Flagged", b"$Custom"}
    assert folder_msgids(client, STARRED) == {msgid}
    assert "\\Starred" in client.get_gmail_labels([1])[1]
    client.remove_flags([1], [b"\\Flagged"])  # unstarring in Starred takes it out of Starred
    assert client.noop()[1] == [(1, b"EXPUNGE")]
    client.select_folder(INBOX)
    client.set_flags([1], [b"\\Answered"])
    assert gm.messages(USER)[0].flags == {"\\Answered"}


def test_store_gmail_labels(gm: GmailServer, client: IMAPClient) -> None:
    msgid = gm.add_message(USER, message(), labels=[INBOX])
    client.select_folder(INBOX)
    added = client.add_gmail_labels([1], ["Project X", "\\Important", "Ünïcode"])
    assert sorted(added[1]) == ["Project X", "\\Important", "\\Inbox", "Ünïcode"]
    assert gm.commands[-1] == 'UID STORE 1 +X-GM-LABELS ("Project X" "\\\\Important" "&ANw-n&AO8-code")'
    assert gm.messages(USER)[0].labels == {INBOX, "Project X", "[Gmail]/Important", "&ANw-n&AO8-code"}
    assert "Ünïcode" in [name for _, _, name in client.list_folders()]
    assert folder_msgids(client, "Project X") == {msgid}
    client.select_folder(INBOX)
    client.remove_gmail_labels([1], ["\\Inbox"], silent=True)  # archive
    assert client.noop()[1] == [(1, b"EXPUNGE")]
    client.select_folder("Project X")
    client.set_gmail_labels([1], ["Work", "\\Starred"])
    stored = gm.messages(USER)[0]
    assert stored.labels == {"Work"} and stored.flags == {"\\Flagged"}
    client.add_gmail_labels([1], ["\\Trash"])  # the UID still works: no EXPUNGE was sent yet
    assert gm.messages(USER)[0].labels == {TRASH}
    assert client.noop()[1] == [(1, b"EXPUNGE")] and client.search("ALL") == []


def test_move_reports_copyuid_and_expunges(gm: GmailServer, client: IMAPClient) -> None:
    first = gm.add_message(USER, message("1"), labels=[INBOX])
    second = gm.add_message(USER, message("2"), labels=[INBOX])
    client.select_folder(INBOX)
    client.create_folder("Work")
    assert client.move([2], "Work") is None
    assert gm.commands[-1] == 'UID MOVE 2 "Work"'
    assert copyuid(client) == (gm.uidvalidity(USER, "Work"), [2], [1])
    assert client.search("ALL") == [1]
    assert {m.msgid: m.labels for m in gm.messages(USER)} == {first: {INBOX}, second: {"Work"}}
    client.select_folder("Work")
    client.move([1], ALL_MAIL)  # out of Work, still in All Mail: archived
    assert gm.messages(USER)[1].labels == set() and folder_msgids(client, ALL_MAIL) == {first, second}


def test_uids_grow_per_folder_and_are_never_reused(gm: GmailServer, client: IMAPClient) -> None:
    msgid = gm.add_message(USER, message(), labels=[INBOX])
    before = client.folder_status(INBOX)
    assert (before[b"MESSAGES"], before[b"UIDNEXT"], before[b"UNSEEN"], before[b"RECENT"]) == (1, 2, 1, 0)
    validities = {client.folder_status(n)[b"UIDVALIDITY"] for n in (INBOX, ALL_MAIL, TRASH, "[Gmail]/Drafts")}
    assert len(validities) == 4
    client.select_folder(ALL_MAIL)
    client.remove_gmail_labels([1], ["\\Inbox"])
    client.add_gmail_labels([1], ["\\Inbox"])
    assert gm.uids(USER, INBOX) == {2: msgid} and gm.uids(USER, ALL_MAIL) == {1: msgid}
    assert client.folder_status(INBOX)[b"UIDNEXT"] == 3


def test_append_to_an_unknown_folder_answers_trycreate(client: IMAPClient) -> None:
    with pytest.raises(IMAPClientError, match=r"\[TRYCREATE\] Folder doesn't exist"):
        client.append("Nowhere", message())
    with pytest.raises(IMAPClientError, match=r"\[NONEXISTENT\] Unknown Mailbox"):
        client.select_folder("Nowhere")
    with pytest.raises(IMAPClientError, match=r"\[NONEXISTENT\]"):
        client.select_folder("[Gmail]")  # \Noselect
    client.create_folder("Nowhere")
    appenduid(client.append("Nowhere", message()))


def test_append_to_system_folders(gm: GmailServer, client: IMAPClient) -> None:
    client.append(ALL_MAIL, message("archived"))
    client.append(STARRED, message("starred"))
    client.append("[Gmail]/Sent Mail", message("sent"))
    client.append(TRASH, message("trash"))
    got = [(m.labels, m.flags) for m in gm.messages(USER)]
    assert got == [(set(), set()), (set(), {"\\Flagged"}), ({"[Gmail]/Sent Mail"}, set()), ({TRASH}, set())]
    assert client.folder_status(ALL_MAIL)[b"MESSAGES"] == 3


def test_quota_answers_overquota() -> None:
    with GmailServer(users={USER: PASSWORD}, quota_bytes=200) as gm:
        client = connect(gm)
        with pytest.raises(IMAPClientError, match=r"\[OVERQUOTA\] Account exceeded storage quota"):
            client.append(INBOX, message(body="x" * 300))
        client.append(INBOX, message())
        gm.quota_bytes = 10  # now over it: COPY refuses too
        client.select_folder(INBOX)
        with pytest.raises(IMAPClientError, match=r"\[OVERQUOTA\]"):
            client.copy([1], "[Gmail]/Important")
        client.logout()
        assert len(gm.messages(USER)) == 1 and gm.errors == []


def test_create_delete_rename_and_odd_folder_names(gm: GmailServer, client: IMAPClient) -> None:
    odd = 'Say "hi" \\ there'
    client.create_folder(odd)
    client.create_folder("Café/Menu")
    names = [name for _, _, name in client.list_folders()]
    assert odd in names and "Café" in names and "Café/Menu" in names
    assert gm.commands[-3] == 'CREATE "Say \\"hi\\" \\\\ there"'
    msgid = gm.add_message(USER, message(), labels=[odd])
    client.rename_folder(odd, "Renamed")
    assert gm.messages(USER)[0].labels == {"Renamed"}
    with pytest.raises(IMAPClientError, match="ALREADYEXISTS"):
        client.create_folder("Renamed")
    with pytest.raises(IMAPClientError, match="CANNOT"):
        client.delete_folder(TRASH)
    client.delete_folder("Renamed")
    assert gm.messages(USER)[0].labels == set() and gm.messages(USER)[0].msgid == msgid
    assert "Renamed" not in gm.folders(USER)


def test_search(gm: GmailServer, client: IMAPClient) -> None:
    ids = [gm.add_message(USER, message(f"s{i}", body=f"text {i}"), labels=[INBOX], flags=["\\Seen"] * (i % 2))
           for i in range(6)]
    client.select_folder(INBOX)
    assert client.search("ALL") == [1, 2, 3, 4, 5, 6]
    assert client.search(["UID", "2:4"]) == [2, 3, 4]
    assert client.search(["UNSEEN"]) == [1, 3, 5]
    assert client.search(["NOT", "SEEN", "UID", "3:*"]) == [3, 5]
    assert client.search(["OR", "SUBJECT", "s1", "BODY", "text 4"]) == [2, 5]
    assert client.search(["X-GM-MSGID", ids[5]]) == [6]
    assert client.search(["SUBJECT", "café"], charset="UTF-8") == []  # sent as a literal mid-command
    assert gm.commands[-1] == "UID SEARCH CHARSET UTF-8 SUBJECT {5}"
    client.use_uid = False
    assert client.search(["5:*"]) == [5, 6]


def test_sequence_sets_in_plain_fetch(gm: GmailServer, client: IMAPClient) -> None:
    for i in range(10):
        gm.add_message(USER, message(f"n{i}"), labels=["Work"])
    client.select_folder("Work")
    typ, data = client._imap.fetch("5,7:9", "(UID)")  # imapclient's fetch() only takes lists of numbers
    assert typ == "OK" and [int(d.split()[0]) for d in data] == [5, 7, 8, 9]
    typ, data = client._imap.fetch("9:*", "(UID)")
    assert [int(d.split()[0]) for d in data] == [9, 10]
    with pytest.raises(IMAPClientError, match="BAD"):
        client._imap.fetch("11", "(UID)")
    assert client.fetch([42], ["UID"]) == {}  # unknown UIDs are just left out


def test_threads_follow_references(gm: GmailServer, client: IMAPClient) -> None:
    root = gm.add_message(USER, message("topic", Message_ID="<root@x>"))
    other = gm.add_message(USER, message("other"), thread_id=root)
    client.append(INBOX, message("Re: topic", In_Reply_To="<root@x>"))
    client.append(INBOX, message("unrelated", References="<nobody@x>"))
    assert [m.thrid for m in gm.messages(USER)] == [root, root, root, gm.messages(USER)[3].msgid]
    assert other != root


def test_condstore() -> None:
    with GmailServer(users={USER: PASSWORD}, condstore=True) as gm:
        for i in range(3):
            gm.add_message(USER, message(f"c{i}"), labels=[INBOX])
        client = connect(gm)
        selected = client.select_folder(INBOX)
        highest = selected[b"HIGHESTMODSEQ"]
        assert client.folder_status(INBOX, ["HIGHESTMODSEQ"])[b"HIGHESTMODSEQ"] == highest
        client.add_flags([2], [b"\\Seen"])
        changed = client.fetch([1, 2, 3], ["FLAGS"], modifiers=[f"CHANGEDSINCE {highest}"])
        assert list(changed) == [2] and changed[2][b"MODSEQ"][0] > highest
        assert gm.commands[-1] == f"UID FETCH 1,2,3 (FLAGS) (CHANGEDSINCE {highest})"
        assert client.fetch([3], ["MODSEQ"])[3][b"MODSEQ"][0] <= highest
        assert client.folder_status(INBOX, ["HIGHESTMODSEQ"])[b"HIGHESTMODSEQ"] > highest
        client.logout()
    with GmailServer(users={USER: PASSWORD}) as gm:
        client = connect(gm)
        with pytest.raises(IMAPClientError):
            client.folder_status(INBOX, ["HIGHESTMODSEQ"])
        client.logout()


def test_another_session_learns_of_changes_on_noop(gm: GmailServer, client: IMAPClient) -> None:
    gm.add_message(USER, message("one"), labels=[INBOX])
    other = connect(gm)
    other.select_folder(INBOX)
    client.select_folder(INBOX)
    client.append(INBOX, message("two"))
    gm.add_message(USER, message("three"), labels=[INBOX])
    assert other.noop()[1] == [(3, b"EXISTS")]
    client.delete_messages([1])
    client.expunge()
    assert other.noop()[1] == [(1, b"EXPUNGE")]
    assert other.search("ALL") == [2, 3]
    other.logout()


def test_reset_uidvalidity(gm: GmailServer, client: IMAPClient) -> None:
    gm.add_message(USER, message("a"), labels=["Work"])
    gm.add_message(USER, message("b"), labels=["Work"])
    client.select_folder("Work")
    client.delete_messages([1])
    client.expunge()
    old = client.folder_status("Work")[b"UIDVALIDITY"]
    new = gm.reset_uidvalidity(USER, "Work")
    assert new != old
    answer = client.select_folder("Work")
    assert answer[b"UIDVALIDITY"] == new and client.search("ALL") == [1]


def test_unknown_and_malformed_commands_and_literals(gm: GmailServer) -> None:
    sock = socket.create_connection((gm.host, gm.port), timeout=5)
    reader = sock.makefile("rb")
    assert reader.readline().startswith(b"* OK Gimap ready")
    for line, answer in [(b"a1 XYZZY\r\n", b"a1 BAD Unknown command\r\n"),
                         (b"a2 FETCH 1 (UID)\r\n", b"a2 BAD Command not valid in this state\r\n"),
                         (b'a3 LOGIN "unterminated\r\n', b"a3 BAD Unterminated quoted string\r\n"),
                         (b"a4 NOOP\r\n", b"a4 OK Success\r\n")]:
        sock.sendall(line)
        assert reader.readline() == answer
    sock.sendall(b"a5 LOGIN {15}\r\n")
    assert reader.readline() == b"+ Ready for literal data\r\n"
    sock.sendall(USER.encode() + b" {6+}\r\nsecret\r\n")  # a LITERAL+ literal needs no continuation
    assert reader.readline().startswith(b"* CAPABILITY")
    assert reader.readline() == b"a5 OK alice@gmail.com authenticated (Success)\r\n"
    reader.close()
    sock.close()
    assert "LOGIN {15} {6+}" in gm.commands  # literal data is left out of the log


def test_drop_connections_makes_the_next_command_fail(gm: GmailServer, client: IMAPClient) -> None:
    client.select_folder(INBOX)
    gm.drop_connections()
    with pytest.raises((IMAPClient.AbortError, OSError)):
        client.noop()
    again = connect(gm)  # still listening
    assert again.select_folder(INBOX)[b"EXISTS"] == 0
    again.logout()


def test_stop_leaves_no_listening_socket_and_no_threads() -> None:
    gm = GmailServer(users={USER: PASSWORD})
    gm.start()
    client = connect(gm)
    client.select_folder(INBOX)
    gm.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("gmail-imap")]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((gm.host, gm.port), timeout=2).close()
    with pytest.raises((IMAPClient.AbortError, OSError)):
        client.noop()
    close(client)
    gm.stop()  # twice is fine


def test_parser_and_dates() -> None:
    tokens = _Parser(b'a1 APPEND "x \\"y\\" \\\\" (\\Seen) {3}\r\nabc BODY.PEEK[HEADER.FIELDS (A B)]<0.5> NIL').parse()
    assert tokens == ["a1", "APPEND", b'x "y" \\', ["\\Seen"], b"abc", "BODY.PEEK[HEADER.FIELDS (A B)]<0.5>", "NIL"]
    when = parse_internaldate(" 1-Feb-2024 03:04:05 +0130")
    assert when == datetime(2024, 2, 1, 3, 4, 5, tzinfo=timezone(timedelta(hours=1, minutes=30)))
    assert format_internaldate(when) == "01-Feb-2024 03:04:05 +0130"


# -- property: folder listings follow a model of labels per message -----------------------------------

LABELS = [INBOX, "Work", "Later"]
FOLDERS = [*LABELS, ALL_MAIL, TRASH]
_users = itertools.count()

operations = st.lists(st.tuples(st.sampled_from(["copy", "add", "remove", "expunge"]), st.integers(0, 2),
                                st.sampled_from([*LABELS, ALL_MAIL, TRASH])), max_size=10)


def _model_members(model: dict[int, set[str] | None], folder: str) -> set[int]:
    """Which messages a folder shows, by the model: labels per message, None when deleted."""
    def shows(labels: set[str]) -> bool:
        if folder == ALL_MAIL:
            return TRASH not in labels
        return folder in labels
    return {mid for mid, labels in model.items() if labels is not None and shows(labels)}


@pytest.fixture(scope="module")
def shared_gm() -> Iterator[GmailServer]:
    with GmailServer(users={}) as server:
        yield server
    assert server.errors == []


@given(initial=st.lists(st.sets(st.sampled_from(LABELS)), min_size=3, max_size=3), ops=operations)
def test_folder_listings_follow_the_label_model(shared_gm: GmailServer, initial: list[set[str]],
                                               ops: list[tuple[str, int, str]]) -> None:
    gm, user = shared_gm, f"u{next(_users)}@gmail.com"
    gm.add_user(user, "pw")
    ids = [gm.add_message(user, message(f"p{i}"), labels=sorted(labels)) for i, labels in enumerate(initial)]
    model: dict[int, set[str] | None] = {mid: set(labels) for mid, labels in zip(ids, initial)}
    client = connect(gm, user, "pw")
    try:
        for label in ("Work", "Later"):
            if label not in gm.folders(user):
                client.create_folder(label)
        for op, index, folder in ops:
            mid = ids[index]
            labels = model[mid]
            if labels is None:
                continue
            home = TRASH if TRASH in labels else ALL_MAIL
            if op == "expunge":
                if mid not in _model_members(model, folder):
                    continue
                client.select_folder(folder)
                uid = uid_of(client, mid)
                client.add_flags([uid], [b"\\Deleted"], silent=True)
                client.uid_expunge([uid])
                model[mid] = None if folder == TRASH else {TRASH} if folder == ALL_MAIL else labels - {folder}
                continue
            client.select_folder(home)
            uid = uid_of(client, mid)
            if op == "copy":
                client.copy([uid], folder)
                model[mid] = labels if folder == ALL_MAIL else {TRASH} if folder == TRASH else (
                    labels - {TRASH}) | {folder}
            elif op == "add" and folder != ALL_MAIL:
                client.add_gmail_labels([uid], ["\\Inbox" if folder == INBOX else
                                                "\\Trash" if folder == TRASH else folder], silent=True)
                model[mid] = {TRASH} if folder == TRASH else (labels - {TRASH}) | {folder}
            elif op == "remove" and folder != ALL_MAIL:
                client.remove_gmail_labels([uid], [folder], silent=True)
                model[mid] = labels - {folder}
        for folder in FOLDERS:
            assert folder_msgids(client, folder) == _model_members(model, folder), folder
            uids = gm.uids(user, folder)
            assert sorted(uids.values()) == sorted(_model_members(model, folder))
        assert {m.msgid: m.labels for m in gm.messages(user)} == {k: v for k, v in model.items() if v is not None}
    finally:
        client.logout()
