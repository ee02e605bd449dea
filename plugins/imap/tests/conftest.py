"""The IMAP plugin's tests: the project's fixtures (a real Dovecot, indexes), hypothesis profiles and
CI skip policy apply here as in tests/."""

from tests.conftest import *  # noqa: F401,F403 - fixtures and hooks are found by name
