"""Exports: a lab plan written for other tools. ``compose``: a docker-compose project
(``labctl export compose``; ``compose/two-node/`` is one, checked in)."""

from labctl.export.compose import (
    COMPOSE_FILE,
    DEFAULT_SUBNET,
    PLACEHOLDER_SECRET,
    ExportFile,
    compose_project,
    differences,
    export_compose,
    write_export,
)

__all__ = [
    "COMPOSE_FILE",
    "DEFAULT_SUBNET",
    "PLACEHOLDER_SECRET",
    "ExportFile",
    "compose_project",
    "differences",
    "export_compose",
    "write_export",
]
