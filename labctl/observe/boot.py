"""Waiting for a lab that boots: until the client can write to the share, or a reason it never will.

``up`` returns only when ``\\\\fscluster\\ogfs`` serves. It fails at once, quoting the log lines, when a
node dies while booting, or when heartbeat logs that it gives the group up because a resource
failed to start (ha-stack G19: it would hand the group back and forth forever).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from labctl.errors import LabctlError
from labctl.observe.share import ShareProbe
from labctl.runtime.engine import EngineError
from labctl.runtime.lab import Lab

GROUP_FAILURE = "Giving up resources due to failure of"


def wait_serving(lab: Lab, timeout: float, waiting: Callable[[str], None] | None = None) -> ShareProbe:
    """Poll until the client lists the share and can write to it; EngineError with the nodes' last
    log lines when ``timeout`` passes or a host dies first."""
    deadline = time.monotonic() + timeout
    t = lab.topology
    while True:
        for host in lab.host_names:
            st = lab.state(host)
            if st.status not in ("running", "created"):
                raise EngineError(f"{host} stopped while the lab booted (status {st.status}, exit code "
                                  f"{st.exit_code}):\n{last_lines(lab, host)}")
        last = lab.probe_share()
        if last.serving:
            return last
        for node in t.node_names:
            failure = group_failure(lab, node)
            if failure:
                raise EngineError(f"{node} could not start the resource group, so {last.unc} will not "
                                  f"serve (heartbeat gives it up and hands it around, G19):\n{failure}")
        phase = boot_phase(lab)
        if waiting:
            waiting(f"waiting for {last.unc}: {phase}")
        if time.monotonic() >= deadline:
            logs = "\n".join(last_lines(lab, n) for n in t.node_names)
            raise EngineError(f"the share {last.unc} did not serve within {timeout:.0f} s ({last.detail}); "
                              f"{phase}\n{logs}")
        time.sleep(1.0)


def group_failure(lab: Lab, node: str) -> str:
    """The log lines around heartbeat giving up the group on ``node`` (a resource failed to start)."""
    try:
        text = b"".join(lab.docker_logs(node, tail=400)).decode("utf-8", "replace")
    except LabctlError:
        return ""
    return group_failure_in(text)


def group_failure_in(text: str) -> str:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if GROUP_FAILURE in line:
            context = [x for x in lines[max(0, i - 12) : i + 1] if "ResourceManager" in x or "ERROR" in x
                       or "CRIT" in x or ": " in x.split(" ", 1)[0]]
            return "\n".join("  " + x for x in context[-12:])
    return ""


def boot_phase(lab: Lab) -> str:
    parts = []
    for node in lab.node_names:
        p = lab.probe_node(node)
        if not p:
            parts.append(f"{node} down")
            continue
        if "error" in p:
            parts.append(f"{node}: {p['error'][:80]}")
            continue
        held = [r["kind"] for r in p.get("resources", []) if r.get("held")]
        parts.append(f"{node}: heartbeat {p.get('heartbeat')}, holds {', '.join(held) or 'nothing'}")
    return "; ".join(parts)


def last_lines(lab: Lab, host: str, n: int = 20) -> str:
    try:
        data = b"".join(lab.docker_logs(host, tail=n)).decode("utf-8", "replace")
    except LabctlError:
        return f"--- {host}: no container"
    return f"--- last lines of {host}:\n" + "\n".join("  " + line for line in data.splitlines())
