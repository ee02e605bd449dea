"""IMAP sync against a local Dovecot: initial sync, a re-sync with nothing changed, 1,000 flag changes.

    python -m benchmarks.imap_sync [--count 20000] [--flags 1000]

The generated corpus (benchmarks.corpus, cached) is loaded into a throw-away
Dovecot on 127.0.0.1 (as the tests start it; root and dovecot-imapd needed),
then indexed over IMAP by the mailindex-imap plugin. Prints:

* initial sync: messages/s (LIST, STATUS, UID FETCH FLAGS, batched BODY.PEEK[]);
* re-sync with nothing changed (median of 5): target <= 1 s for 20,000 messages;
* 1,000 flag changes through mailindex (STORE, read back, index follows), per change;
* 1,000 flags changed by another client, then one re-sync that picks them all up.

Figures and the corpus go to stdout and benchmarks/results/imap_sync.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.corpus import corpus_info, default_corpus
from mailindex import MailIndex

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.imap_sync", description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=20_000, help="messages in the IMAP account (default 20000)")
    ap.add_argument("--flags", type=int, default=1_000, help="flag changes to time (default 1000)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.imap_server import DovecotServer, why_unavailable

    reason = why_unavailable()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    corpus = default_corpus(count=args.count)
    info = corpus_info(corpus)
    print(f"corpus: {corpus} ({args.count:,} generated messages, "
          f"{(info.bytes if info else 0) / 1e6:,.0f} MB, Maildir++ folders)")
    out: dict[str, object] = {"corpus": str(corpus), "messages": args.count}
    with DovecotServer({"alice": "secret"}) as server, tempfile.TemporaryDirectory() as tmp:
        shutil.rmtree(server.maildir("alice"))
        shutil.copytree(corpus, server.maildir("alice"), ignore=shutil.ignore_patterns("*.json"))
        subprocess.run(["chown", "-R", "dovecot:dovecot", str(server.root / "mail")], check=True)
        url = f"imap://alice@127.0.0.1:{server.port}"
        mx = MailIndex(Path(tmp) / "idx")
        mx.add_source("imap", url, password="secret", tls="none", sync_all_folders=1, sync_flags=1)
        started = time.perf_counter()
        report = mx.sync("imap")
        seconds = time.perf_counter() - started
        out["initial_sync"] = {"seconds": round(seconds, 2), "added": report.added,
                               "msgs_per_s": round(report.added / seconds)}
        print(f"initial sync: {report.added:,} messages in {seconds:.1f} s = {report.added / seconds:,.0f} msgs/s "
              f"({report.failed} failed)")
        again = []
        for _ in range(5):
            t = time.perf_counter()
            r = mx.sync("imap")
            again.append(time.perf_counter() - t)
            assert r.added == r.updated == r.removed == 0, r.to_dict()
        out["resync_no_change_s"] = round(statistics.median(again), 3)
        print(f"re-sync, nothing changed: median {statistics.median(again):.3f} s (target <= 1 s)")
        ids = [m["message_id"] for _, m in zip(range(args.flags), mx.messages.iter(folder="INBOX"))]
        t = time.perf_counter()
        for i, mid in enumerate(ids):
            answer = mx.messages.set_flags(mid, flagged=i % 2 == 0, seen=1)
            assert answer["success"], answer
        per = (time.perf_counter() - t) / max(len(ids), 1)
        out["flag_changes"] = {"count": len(ids), "ms_each": round(per * 1000, 1)}
        print(f"{len(ids):,} flag changes through mailindex: {per * 1000:.1f} ms each "
              f"(STORE, read back, index follows), {per * len(ids):.1f} s in all")
        import imapclient

        c = imapclient.IMAPClient("127.0.0.1", port=server.port, ssl=False)
        c.login("alice", "secret")
        c.select_folder("INBOX")
        uids = sorted(c.search())[: args.flags]
        c.add_flags(uids, [b"\\Answered"], silent=True)
        c.logout()
        t = time.perf_counter()
        r = mx.sync("imap")
        elsewhere = time.perf_counter() - t
        out["resync_after_flags_elsewhere"] = {"seconds": round(elsewhere, 3), "updated": r.updated,
                                               "unchanged": r.unchanged}
        print(f"{len(uids):,} flags changed by another client, one re-sync: {elsewhere:.3f} s")
        mx.close()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "imap_sync.json").write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
