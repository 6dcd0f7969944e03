"""``/etc/ha.d/authkeys``: sha1 with a random secret per lab, mode 0600 (heartbeat refuses others)."""

from __future__ import annotations

import re
import secrets

PATH = "/etc/ha.d/authkeys"
MODE = 0o600

_SECRET_RE = re.compile(r"[!-~]{8,200}\Z")  # printable, no spaces: the rest of the line is the key


def new_secret() -> str:
    """A fresh random secret for one lab."""
    return secrets.token_hex(20)


def render_authkeys(secret: str) -> str:
    if not _SECRET_RE.match(secret):
        raise ValueError("an authkeys secret is 8 to 200 printable characters without spaces")
    header = "# heartbeat authentication for this lab, rendered by labctl. Must stay mode 0600."
    return f"{header}\nauth 1\n1 sha1 {secret}\n"
