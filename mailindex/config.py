"""The command line's configuration file: defaults kept instead of repeated as flags.

It is `$MAILINDEX_CONFIG`, else `$XDG_CONFIG_HOME/mailindex/config.toml`, else
`~/.config/mailindex/config.toml`; a missing file is no configuration:

    index = "~/mail/index"       # the index when neither --index nor $MAILINDEX_HOME names one
    owner = ["me@example.com"]   # the owner addresses `index` records for an account that has none
    format = "json"              # text | json | jsonl: how commands print when no flag says

Precedence: flags, then the environment ($MAILINDEX_HOME, $MAILINDEX_FORMAT), then the file, then
the defaults. A file that cannot be read or parsed, an unknown key or a value of the wrong kind is
one QueryError naming the file and the key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mailindex.errors import QueryError

FORMATS = ("text", "json", "jsonl")


class Config:
    """What the file says, or the defaults (a plain class: a dataclass would cost every command ~6 ms
    of imports, and a NamedTuple field may not be called `index`)."""

    __slots__ = ("index", "owner", "format")

    def __init__(self, index: Path | None = None, owner: tuple[str, ...] = (), format: str = "text") -> None:
        self.index, self.owner, self.format = index, owner, format


def default_index_dir() -> Path:
    """$MAILINDEX_HOME, else $XDG_DATA_HOME/mailindex, else ~/.local/share/mailindex."""
    if os.environ.get("MAILINDEX_HOME"):
        return Path(os.environ["MAILINDEX_HOME"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "mailindex"


def config_path() -> Path:
    """Where the configuration file is looked for."""
    if os.environ.get("MAILINDEX_CONFIG"):
        return Path(os.environ["MAILINDEX_CONFIG"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "mailindex" / "config.toml"


def load() -> Config:
    """The configuration file's values, with $MAILINDEX_FORMAT over its `format`."""
    path = config_path()
    try:
        present = path.is_file()
    except OSError as exc:  # a directory on the way we may not search
        raise QueryError("config", str(path), f"cannot be read: {exc.strerror or exc}") from None
    values = _read(path) if present else {}
    index, owner, fmt = values.pop("index", None), values.pop("owner", []), values.pop("format", "text")
    if values:
        raise QueryError(next(iter(values)), str(path), "unknown key in the configuration file; known: index, owner, format")
    if index is not None and (not isinstance(index, str) or not index.strip()):
        raise QueryError("index", str(path), "must be a directory path (a string) in the configuration file")
    if isinstance(owner, str):
        owner = [owner]
    if not isinstance(owner, list) or not all(isinstance(o, str) and "@" in o for o in owner):
        raise QueryError("owner", str(path), "must be an address or a list of addresses in the configuration file")
    fmt = os.environ.get("MAILINDEX_FORMAT") or fmt
    if fmt not in FORMATS:
        raise QueryError("format", fmt, f"must be one of {', '.join(FORMATS)} (from {path} or $MAILINDEX_FORMAT)")
    return Config(Path(index).expanduser() if index else None, tuple(owner), fmt)


def _read(path: Path) -> dict[str, Any]:
    import tomllib  # only when there is a file to read

    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise QueryError("config", str(path), f"cannot be read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise QueryError("config", str(path), f"is not valid TOML: {exc}") from None
