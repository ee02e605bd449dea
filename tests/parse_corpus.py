"""A generated list-like corpus (plain text, some HTML, few attachments) for parse benchmarks.

    /work/main/.venv/bin/python -m tests.parse_corpus [N]      # msgs/s of parse() on N generated + shared corpora

Deterministic (seeded). Shapes follow a mailing-list archive: Received chains,
DKIM, List-* headers, threads with References, mostly plain text (7bit or
quoted-printable), ~20% multipart/alternative with HTML, ~7% with an attachment,
a few encoded-word subjects and names.
"""

from __future__ import annotations

import email.utils
import mailbox
import random
import sys
import time
from email.message import EmailMessage
from pathlib import Path

WORDS = ("the of and to in is that for it with as was on be by this patch kernel driver fix bug "
         "memory device error return value struct function call test build commit review thanks "
         "please see below above question answer list issue version update release problem").split()
NAMES = ["Alice Smith", "Bob Jones", "Carol Nguyen", "Dave O'Brien", "Jörg Müller", "Zoë Durand", "李雷",
         "Eve Example", "Frank Miller", "Grace Hopper"]


def _para(rng: random.Random, n: int) -> str:
    lines = []
    for _ in range(n):
        lines.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))))
    return "\n".join(lines)


def list_message(rng: random.Random, i: int) -> bytes:
    m = EmailMessage()
    date = 1_500_000_000 + i * 600 + rng.randint(0, 500)
    for hop in range(rng.randint(3, 6)):
        m["Received"] = (f"from mx{hop}.example.net (mx{hop}.example.net [192.0.2.{hop}]) by relay{hop}.example.org "
                         f"with ESMTPS id {rng.getrandbits(40):x}; {email.utils.formatdate(date - hop * 3)}")
    m["DKIM-Signature"] = ("v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.net; s=sel; h=from:to:subject:date; "
                           f"bh={rng.getrandbits(128):x}=; b={rng.getrandbits(512):x}")
    name = rng.choice(NAMES)
    local = name.split()[0].lower().replace("ö", "o").replace("ë", "e")
    if not local.isascii():
        local = f"user{i % 97}"
    m["From"] = email.utils.formataddr((name, f"{local}@example.net"))
    m["To"] = "Some List <list@lists.example.org>"
    if rng.random() < 0.5:
        m["Cc"] = ", ".join(email.utils.formataddr((rng.choice(NAMES), f"cc{k}@example.com"))
                            for k in range(rng.randint(1, 4)))
    subj = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9)))
    if rng.random() < 0.05:
        subj += " — café 日本"
    thread = i // 5
    m["Subject"] = ("Re: " if i % 5 else "") + f"[PATCH {thread}] " + subj
    m["Date"] = email.utils.formatdate(date, localtime=False)
    m["Message-ID"] = f"<{i}.{rng.getrandbits(32):x}@example.net>"
    if i % 5:
        refs = [f"<{thread * 5 + k}.ref@example.net>" for k in range(i % 5)]
        m["In-Reply-To"] = refs[-1]
        m["References"] = " ".join(refs)
    m["List-Id"] = "Some List <list.lists.example.org>"
    m["List-Unsubscribe"] = "<mailto:list-unsubscribe@lists.example.org>"
    m["List-Help"] = "<mailto:list-help@lists.example.org>"
    m["Precedence"] = "bulk"
    body = _para(rng, rng.randint(5, 60))
    if i % 5:
        body = "On some day someone wrote:\n" + "\n".join("> " + l for l in _para(rng, rng.randint(3, 30)).split("\n")) + "\n\n" + body
    if rng.random() < 0.1:
        body += "\nMerci beaucoup, déjà vu — ça marche.\n"
    m.set_content(body + "\n")
    r = rng.random()
    if r < 0.2:
        html = "<html><head><style>p{color:red}</style></head><body>" + "".join(
            f"<p>{l}</p>" for l in body.split("\n")) + "<script>var x=1;</script></body></html>"
        m.add_alternative(html, subtype="html")
    elif r < 0.27:
        if rng.random() < 0.5:
            m.add_attachment(_para(rng, 40), filename=f"{i:04d}-fix.patch")
        else:
            m.add_attachment(b"%PDF-1.4\n" + rng.randbytes(rng.randint(2_000, 40_000)), maintype="application", subtype="pdf",
                             filename=f"report-{i}.pdf")
    return bytes(m)


def generated(n: int = 5000, seed: int = 1234) -> list[bytes]:
    rng = random.Random(seed)
    return [list_message(rng, i) for i in range(n)]


def shared_corpora(root: Path) -> list[bytes]:
    out: list[bytes] = []
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.name == "README.md" or p.name == "mail_outlook_1":
            continue
        if p.suffix == ".mbox":
            box = mailbox.mbox(p, create=False)
            out.extend(box.get_bytes(k) for k in box.keys())
            box.close()
        else:
            out.append(p.read_bytes())
    return out


def _rate(msgs: list[bytes], repeat: int = 3) -> float:
    from mailindex.parse import parse
    from mailindex.sources.base import RawMessage

    raws = [RawMessage(d) for d in msgs]
    best = 0.0
    for _ in range(repeat):
        t = time.perf_counter()
        for r in raws:
            parse(r)
        best = max(best, len(raws) / (time.perf_counter() - t))
    return best


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    gen = generated(n)
    print(f"generated list-like: {n} msgs, {sum(map(len, gen)) / n / 1024:.1f} KiB avg: {_rate(gen):,.0f} msgs/s")
    root = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
    if root.is_dir():
        corp = shared_corpora(root)
        print(f"shared corpora: {len(corp)} msgs, {sum(map(len, corp)) / len(corp) / 1024:.1f} KiB avg: "
              f"{_rate(corp):,.0f} msgs/s")


if __name__ == "__main__":
    main()
