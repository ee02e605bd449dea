"""Example counts that follow the loaded hypothesis profile (README "Tests": dev 40, CI 200)."""

from __future__ import annotations

from hypothesis import settings


def examples(share: float) -> int:
    """`share` of the profile's examples per property, at least 5.

    For properties whose examples cost more (a whole mailbox indexed) or less
    (one small parse) than the usual one; read when the test module is
    imported, after tests/conftest.py has loaded the profile."""
    return max(5, round(settings().max_examples * share))
