"""The public surface is exactly __all__, and every error is one of ours."""

from __future__ import annotations

import importlib
import inspect

import mailindex
from mailindex import errors


def test_all_lists_exactly_the_public_names() -> None:
    # The names load on first use (PEP 562): each of __all__ resolves, and after that vars() holds exactly them.
    assert sorted(mailindex._WHERE) == sorted(mailindex.__all__)
    for name in mailindex.__all__:
        assert getattr(mailindex, name) is getattr(importlib.import_module(mailindex._WHERE[name]), name), name
    public = {n for n in vars(mailindex) if not n.startswith("_") and not inspect.ismodule(getattr(mailindex, n))}
    assert public - {"annotations", "importlib", "Any", "TYPE_CHECKING"} == set(mailindex.__all__)
    assert sorted(dir(mailindex)) == sorted([*mailindex.__all__, "__version__"])


def test_every_error_derives_from_the_root() -> None:
    for name, obj in vars(errors).items():
        if inspect.isclass(obj) and issubclass(obj, Exception) and obj.__module__ == errors.__name__:
            assert issubclass(obj, errors.MailindexError), name


def test_public_callables_have_docstrings() -> None:
    for name in mailindex.__all__:
        obj = getattr(mailindex, name)
        if callable(obj):
            assert inspect.getdoc(obj), name
    for name, member in inspect.getmembers(mailindex.MailIndex, inspect.isfunction):
        if not name.startswith("_"):
            assert inspect.getdoc(member), f"MailIndex.{name}"
    for name, member in inspect.getmembers(mailindex.Messages, inspect.isfunction):
        if not name.startswith("_"):
            assert inspect.getdoc(member), f"Messages.{name}"
