"""The user's terminal: raw mode while a remote command owns it, its size, and restoring it.

Kept apart from the runtime (which only moves bytes between the engine and file descriptors) so
that everything that changes the user's terminal is in one place and is always undone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator


def size() -> tuple[int, int] | None:
    """(rows, columns) of stdout's terminal, or None."""
    try:
        cols, rows = os.get_terminal_size(sys.stdout.fileno())
    except OSError:
        return None
    return rows, cols


@contextlib.contextmanager
def raw_mode(on_resize: Callable[[int, int], None] | None = None) -> Iterator[None]:
    """stdin in raw mode (keys go to the remote side as typed), restored on the way out; calls
    ``on_resize(rows, cols)`` now and whenever the window changes. Does nothing without a tty."""
    if not sys.stdin.isatty():
        yield
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    old_winch = None

    def resize(*_: object) -> None:
        now = size()
        if on_resize is not None and now is not None:
            with contextlib.suppress(Exception):
                on_resize(*now)

    tty.setraw(fd)
    try:
        resize()
        with contextlib.suppress(ValueError):  # not the main thread: no resize events
            old_winch = signal.signal(signal.SIGWINCH, resize)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        if old_winch is not None:
            signal.signal(signal.SIGWINCH, old_winch)
