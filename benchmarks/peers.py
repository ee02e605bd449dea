"""The tools `benchmarks.compare` runs: mailindex and its peers, each asked in its own language.

Every tool gets its own configuration and database under a temporary
directory (environment variables point it there), so nothing reads or
writes the user's configuration, and none of them may modify the mail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

DEBIAN_PACKAGES = {"notmuch": "notmuch", "mu": "maildir-utils", "mairix": "mairix"}


@dataclass(frozen=True)
class Questions:
    """The same questions for every tool, chosen from the corpus (see compare.choose_questions)."""

    sender: str
    word: str
    month: tuple[int, int]  # [start, end) Unix seconds, a calendar month in UTC
    year: tuple[int, int]  # [start, end), the calendar year of that month
    extension: str  # attachment names ending in "." + this
    body_word: str  # a word of the messages' text
    phrase: tuple[str, str]  # two words that follow each other there

    def describe(self) -> dict[str, str]:
        day = lambda t: time.strftime("%Y-%m-%d", time.gmtime(t))  # noqa: E731
        return {
            "sender": f"from {self.sender}",
            "subject_word": f"subject has '{self.word}'",
            "month": f"date in [{day(self.month[0])}, {day(self.month[1])})",
            "attachment": f"an attachment named *.{self.extension}",
            "sender_and_dates": f"from {self.sender}, date in {day(self.year[0])[:4]}",
            "subject_regex": "subject matches /^Re: /",
            "body_word": f"text has the word '{self.body_word}'",
            "phrase": f"text has the phrase '{' '.join(self.phrase)}'",
        }


QUESTION_KEYS = ("sender", "subject_word", "month", "attachment", "sender_and_dates", "subject_regex", "body_word",
                 "phrase")


class Tool:
    """One indexer. Subclasses say how to install, index, re-index and ask each question."""

    name = ""
    notes: dict[str, str] = {}  # question key -> how this tool's answer differs in meaning

    def __init__(self, home: Path, maildir: Path) -> None:
        self.home, self.maildir = home, maildir

    def available(self) -> bool:
        return shutil.which(self.name) is not None

    def version(self) -> str:
        return _version([self.name, "--version"])

    def env(self) -> dict[str, str]:
        return {**os.environ, "TZ": "UTC", "HOME": str(self.home)}

    def prepare(self) -> None:
        """Write the configuration; called on an empty `home` before each full ingest."""

    def ingest(self) -> list[str]:
        raise NotImplementedError

    def resync(self) -> list[str]:
        return self.ingest()

    def query(self, key: str, q: Questions) -> list[str] | None:
        """The command that answers question `key`, or None when the tool cannot ask it."""
        raise NotImplementedError

    def count(self, stdout: str) -> int:
        """Matches in the query command's output (one path per line by default)."""
        return sum(1 for line in stdout.splitlines() if line.strip())

    def ok_codes(self) -> tuple[int, ...]:
        return (0,)


class Mailindex(Tool):
    name = "mailindex"
    notes = {"subject_word": "substring, case-insensitive",
             "month": "exclusive bounds on the Date header, in seconds",
             "body_word": "whole words of subject, text parts and attachments, unstemmed",
             "phrase": "the words in order, in the subject, the text parts or an attachment"}

    def _cli(self, *args: str) -> list[str]:
        # The installed command, as a script runs it (`python -m` adds runpy's imports, ~3 ms).
        script = Path(sys.executable).with_name("mailindex")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "mailindex"]
        return [*command, "--index", str(self.home / "index"), *args]

    def available(self) -> bool:
        return True

    def env(self) -> dict[str, str]:
        # Bytecode is cached as after any install; without it every run would compile mailindex again.
        return {k: v for k, v in super().env().items() if k != "PYTHONDONTWRITEBYTECODE"}

    def version(self) -> str:
        from mailindex import __version__

        return __version__

    def ingest(self) -> list[str]:
        # Every folder and the flags, as the peers index them (a default source leaves out trash and drafts).
        return self._cli("index", str(self.maildir), "--source", "bench", "--sync-all-folders", "1",
                         "--sync-flags", "1", "--json")

    def resync(self) -> list[str]:
        return self._cli("sync", "bench", "--json")

    def query(self, key: str, q: Questions) -> list[str] | None:
        return self._cli("search", "--count", *mailindex_filters_argv(key, q))

    def count(self, stdout: str) -> int:
        return int(stdout.strip())


def mailindex_filters(key: str, q: Questions) -> dict[str, object]:
    """The question as Context.IO filters (exclusive date bounds)."""
    return {
        "sender": {"from": q.sender},
        "subject_word": {"subject": q.word},
        "month": {"date_after": q.month[0] - 1, "date_before": q.month[1]},
        "attachment": {"file_name": f"*.{q.extension}"},
        "sender_and_dates": {"from": q.sender, "date_after": q.year[0] - 1, "date_before": q.year[1]},
        "subject_regex": {"subject": "/^Re: /"},
        "body_word": {"q": q.body_word},
        "phrase": {"q": '"{}"'.format(" ".join(q.phrase))},
    }[key]


def mailindex_filters_argv(key: str, q: Questions) -> list[str]:
    out: list[str] = []
    for name, value in mailindex_filters(key, q).items():
        out += ["--", str(value)] if name == "q" else [f"--{name.replace('_', '-')}", str(value)]
    return out


class Notmuch(Tool):
    name = "notmuch"
    notes = {"sender": "counts messages once per Message-ID (duplicates folded)",
             "subject_word": "whole words, stemmed",
             "attachment": "attachment:EXT matches the word in any attachment name",
             "subject_regex": "regex on the subject (Xapian value), case-sensitive",
             "body_word": "stemmed; bare words also match the address headers",
             "phrase": "stemmed words"}

    def env(self) -> dict[str, str]:
        return {**super().env(), "NOTMUCH_CONFIG": str(self.home / "config")}

    def prepare(self) -> None:
        (self.home / "db").mkdir(parents=True, exist_ok=True)
        (self.home / "config").write_text(
            f"[database]\npath={self.home / 'db'}\nmail_root={self.maildir}\n"
            "[new]\ntags=\n[maildir]\nsynchronize_flags=false\n")

    def ingest(self) -> list[str]:
        return ["notmuch", "new", "--quiet"]

    def query(self, key: str, q: Questions) -> list[str] | None:
        terms = {
            "sender": f"from:{q.sender}",
            "subject_word": f"subject:{q.word}",
            "month": f"date:@{q.month[0]}..@{q.month[1] - 1}",
            "attachment": f"attachment:{q.extension}",
            "sender_and_dates": f"from:{q.sender} and date:@{q.year[0]}..@{q.year[1] - 1}",
            "subject_regex": 'subject:"/^Re: /"',
            "body_word": q.body_word,
            "phrase": '"{}"'.format(" ".join(q.phrase)),
        }[key]
        return ["notmuch", "count", terms]

    def count(self, stdout: str) -> int:
        return int(stdout.strip())


class Mu(Tool):
    name = "mu"
    notes = {"sender": "every copy counts (no --skip-dups)",
             "subject_word": "whole words",
             "subject_regex": "mu matches a regex against single lowercased words: /^re$/",
             "body_word": "the body only", "phrase": "the body only",
             "month": "dates in UTC (TZ=UTC)"}

    def prepare(self) -> None:
        subprocess.run(["mu", "init", f"--muhome={self.home}", f"--maildir={self.maildir}"], env=self.env(),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def ingest(self) -> list[str]:
        return ["mu", "index", f"--muhome={self.home}", "--quiet"]

    def query(self, key: str, q: Questions) -> list[str] | None:
        stamp = lambda t: time.strftime("%Y%m%d%H%M%S", time.gmtime(t))  # noqa: E731
        terms = {
            "sender": [f"from:{q.sender}"],
            "subject_word": [f"subject:{q.word}"],
            "month": [f"date:{stamp(q.month[0])}..{stamp(q.month[1] - 1)}"],
            "attachment": [f"file:/\\.{re.escape(q.extension)}$/"],
            "sender_and_dates": [f"from:{q.sender}", f"date:{stamp(q.year[0])}..{stamp(q.year[1] - 1)}"],
            "subject_regex": ["subject:/^re$/"],
            "body_word": [f"body:{q.body_word}"],
            "phrase": ['body:"{}"'.format(" ".join(q.phrase))],
        }[key]
        return ["mu", "find", f"--muhome={self.home}", "--fields=l", *terms]

    def ok_codes(self) -> tuple[int, ...]:
        return (0, 4)  # 4: no matches


class Mairix(Tool):
    name = "mairix"
    notes = {"attachment": "n:EXT= is a substring of the attachment name",
             "month": "whole days, inclusive", "sender_and_dates": "whole days, inclusive",
             "subject_regex": "no regular expressions"}

    def version(self) -> str:  # `mairix -V` says "DEVELOPMENT" on Debian; the package knows
        packaged = _version(["dpkg-query", "-W", "-f", "${Version}", "mairix"])
        return packaged if packaged[:1].isdigit() else _version(["mairix", "-V"])

    def prepare(self) -> None:
        (self.home / "mairixrc").write_text(
            f"base={self.maildir.parent}\nmaildir={self.maildir.name}...\ndatabase={self.home / 'db'}\n"
            f"mfolder={self.home / 'results'}\nmformat=maildir\n")

    def ingest(self) -> list[str]:
        return ["mairix", "-f", str(self.home / "mairixrc")]

    def query(self, key: str, q: Questions) -> list[str] | None:
        day = lambda t: time.strftime("%Y%m%d", time.gmtime(t))  # noqa: E731
        terms = {
            "sender": [f"f:{q.sender}"],
            "subject_word": [f"s:{q.word}"],
            "month": [f"d:{day(q.month[0])}-{day(q.month[1] - 1)}"],
            "attachment": [f"n:{q.extension}="],
            "sender_and_dates": [f"f:{q.sender}", f"d:{day(q.year[0])}-{day(q.year[1] - 1)}"],
            "subject_regex": None,
            "body_word": [f"b:{q.body_word}"],
            "phrase": None,
        }[key]
        return None if terms is None else ["mairix", "-f", str(self.home / "mairixrc"), "-r", *terms]

    def ok_codes(self) -> tuple[int, ...]:
        return (0, 1)  # 1: no matches


PEERS: tuple[type[Tool], ...] = (Notmuch, Mu, Mairix)


def install_missing(log: TextIO = sys.stderr) -> list[str]:
    """apt-get install the peers that are missing, when root; returns the names still missing."""
    missing = [name for name in DEBIAN_PACKAGES if shutil.which(name) is None]
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        packages = [DEBIAN_PACKAGES[m] for m in missing]
        print(f"installing {', '.join(packages)} with apt-get ...", file=log, flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-qq", *packages]
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:  # stale package lists?
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
            subprocess.run(install, env=env, capture_output=True)
    return [name for name in DEBIAN_PACKAGES if shutil.which(name) is None]


def _version(argv: list[str]) -> str:
    """The first version number a command prints (its last word when it has none)."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    first = ((out.stdout or out.stderr).strip().splitlines() or ["?"])[0]
    number = re.search(r"\d+(\.\d+)+", first)
    return number.group(0) if number else first.split()[-1]
