"""Fault records, kept with the lab: files in its claim container (``labctl-<lab>.lab``).

The claim is a container that never runs (runtime/apply.py), and ``docker cp`` reads and writes a
created container's filesystem all the same. So the records need no volume, no host directory and
no running process: every labctl process on any directory sees the same ones, they survive a node's
restart, and ``down`` removes them with the claim, which it removes last. One file per record
(``/labctl/faults/<id>.json``): two processes that apply faults at once write different files, and
the only rewrite of a file (its heal) is done by whoever heals it.
"""

from __future__ import annotations

import io
import tarfile

import docker
import docker.errors
from docker.models.containers import Container

from labctl.errors import LabStateError
from labctl.plan.names import claim_name
from labctl.runtime.engine import EngineError, put_files

DIR = "/labctl/faults"


class RecordStore:
    """Raw record files of one lab, by id; what a record means is labctl/faults/record.py's."""

    def __init__(self, client: docker.DockerClient, lab: str) -> None:
        self.client = client
        self.lab = lab

    def _claim(self) -> Container:
        try:
            return self.client.containers.get(claim_name(self.lab))
        except docker.errors.NotFound:
            raise LabStateError(f"lab {self.lab} has no claim ({claim_name(self.lab)}): it is being "
                                "taken down, or was made by an older labctl") from None

    def put(self, record_id: str, data: bytes) -> None:
        try:
            put_files(self._claim(), {f"{DIR}/{record_id}.json": (data, 0o644)})
        except docker.errors.APIError as exc:
            raise EngineError(f"lab {self.lab}: cannot write fault record {record_id}: "
                              f"{exc.explanation or exc}") from None

    def all(self) -> dict[str, bytes]:
        try:
            stream, _ = self._claim().get_archive(DIR)
        except docker.errors.NotFound:
            return {}  # no fault was ever applied
        except docker.errors.APIError as exc:
            raise EngineError(f"lab {self.lab}: cannot read its fault records: "
                              f"{exc.explanation or exc}") from None
        out: dict[str, bytes] = {}
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            for member in tar:
                name = member.name.rsplit("/", 1)[-1]
                if member.isfile() and name.endswith(".json"):
                    fh = tar.extractfile(member)
                    if fh is not None:
                        out[name[: -len(".json")]] = fh.read()
        return out
