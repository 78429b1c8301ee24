"""Signal dispositions for child processes the tests send signals to.

A child inherits ignored signals: `nohup` ignores SIGHUP, and a non-interactive shell starts background
jobs with SIGINT ignored. The code under test rightly leaves an ignored signal ignored (`nohup` means
"do not stop on hangup"), so a test that sends it one must start the child with the defaults, or its
verdict depends on how the test run itself was launched.
"""

from __future__ import annotations

import signal

SENT_BY_TESTS = (signal.SIGHUP, signal.SIGINT, signal.SIGTERM)


def reset_to_defaults() -> None:
    """A `preexec_fn`: the signals the tests send get their default disposition in the child."""
    for signum in SENT_BY_TESTS:
        signal.signal(signum, signal.SIG_DFL)
