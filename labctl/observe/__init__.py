"""Read-only views of a running lab, built through the runtime (``docker exec`` of cl_status,
ResourceManager and smbclient) into plain dataclasses that the CLI prints as a table or JSON.

Names are loaded on first use (PEP 562): the runtime imports ``observe.share`` for its data
class, and ``observe.status`` imports the runtime, so an eager import here would be a cycle.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "LOG_SOURCES": "logs",
    "log_paths": "logs",
    "LabStatus": "status",
    "LinkView": "status",
    "NodeView": "status",
    "ResourceView": "status",
    "ShareView": "status",
    "collect": "status",
    "wait_until": "status",
    "ShareProbe": "share",
    "wait_serving": "boot",
    "lab_summaries": "labs",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"labctl.observe.{_WHERE[name]}"), name)
