"""Read-only views of a running lab, built through the runtime (``docker exec`` of cl_status,
ResourceManager and smbclient) into plain dataclasses that the CLI prints as a table or JSON."""

from labctl.observe.logs import LOG_SOURCES, log_paths
from labctl.observe.status import (
    LabStatus,
    LinkView,
    NodeView,
    ResourceView,
    ShareView,
    collect,
    wait_until,
)

__all__ = [
    "LOG_SOURCES",
    "LabStatus",
    "LinkView",
    "NodeView",
    "ResourceView",
    "ShareView",
    "collect",
    "log_paths",
    "wait_until",
]
