"""Ctrl-C during a native solve: stop the solver and raise KeyboardInterrupt.

CP-SAT and HiGHS run in native code. Left to themselves, CP-SAT catches
SIGINT, ends its search early and returns as after a time-out (the command
then goes on to the next layer and may even save a result), and it resets
the process's SIGINT action to the default when it is done, so that the next
Ctrl-C kills the process without a word; HiGHS ignores it until its time
limit. Here the solve runs in a helper thread (both release the GIL) while
the main thread waits, where Python raises KeyboardInterrupt at once; the
solver is told to stop, and the interrupt goes on up to the command, which
says so.
"""

from __future__ import annotations

import threading
from typing import Callable, TypeVar

T = TypeVar("T")

POLL_SECONDS = 0.2
"""How often the waiting main thread lets Python deliver a signal."""


def interruptible(run: Callable[[], T], stop: Callable[[], object]) -> T:
    """``run()``, stopped by ``stop()`` when Ctrl-C (or SIGTERM turned into
    KeyboardInterrupt) arrives meanwhile; then the interrupt is raised again.

    Outside the main thread (a solve inside a worker thread) Python delivers
    no signal there, so ``run`` runs directly.
    """
    if threading.current_thread() is not threading.main_thread():
        return run()
    box: dict = {}
    done = threading.Event()

    def work() -> None:
        try:
            box["value"] = run()
        except BaseException as exc:  # handed to the main thread
            box["error"] = exc
        finally:
            done.set()

    # an Event, not Thread.join: a join that Ctrl-C interrupts marks the thread stopped while it still runs
    # (CPython before 3.13), and the interpreter would then exit under a running solver
    threading.Thread(target=work, name="native-solve", daemon=True).start()
    try:
        while not done.wait(POLL_SECONDS):
            pass
    except KeyboardInterrupt:
        stop()
        while not done.wait(POLL_SECONDS):
            stop()  # again: a solver still translating its model when first told may start after it
        raise
    if "error" in box:
        raise box["error"]
    return box["value"]
