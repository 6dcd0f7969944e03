"""The ``nodes`` section: the two heartbeat nodes, their addresses, OpenGFS CIDs, the preferred one."""

from __future__ import annotations

from typing import Any

from labctl.topology.model import Node
from labctl.topology.problems import Checker, Invalid, key_path

NODE_KEYS = ("name", "ip", "cid", "preferred")


def read_nodes(c: Checker, data: Any) -> tuple[Node, ...] | None:
    """Exactly two nodes, unique names and CIDs 0..n-1 (CID defaults to the position); the first is preferred
    unless another says so."""
    try:
        items = c.sequence(data, "nodes")
    except Invalid:
        return None
    nodes: list[Node | None] = []
    preferred_given: list[tuple[int, bool]] = []
    for i, item in enumerate(items):
        k = key_path("nodes", i)
        try:
            d = c.mapping(item, k, NODE_KEYS, required=("name", "ip"))
        except Invalid:
            nodes.append(None)
            continue
        name = c.get(d, k, "name", c.hostname)
        ip = c.get(d, k, "ip", c.ip)
        cid = c.get(d, k, "cid", lambda p, v: c.integer(p, v, 0, 255), i)
        preferred = c.get(d, k, "preferred", c.boolean, None)
        if preferred is not None:
            preferred_given.append((i, preferred))
        if name is None or ip is None or cid is None:
            nodes.append(None)
            continue
        nodes.append(Node(name, ip, cid, False))
    if len(items) != 2:
        # mach_down, which takes a dead node's groups over, "will only work for a two machine setup".
        c.error(
            "nodes",
            "heartbeat in haresources mode manages exactly 2 nodes "
            f"(mach_down only works for a two-machine setup), this has {len(items)}",
            [n.get("name") if isinstance(n, dict) else n for n in items],
        )
    if any(n is None for n in nodes) or not nodes:
        return None
    good = [n for n in nodes if n is not None]
    ok = True
    # Unique names and CIDs; CIDs are 0..n-1 (they index OpenGFS journals and heartbeat slots).
    seen_names: dict[str, int] = {}
    seen_cids: dict[int, int] = {}
    for i, node in enumerate(good):
        if node.name in seen_names:
            c.error(
                f"nodes[{i}].name",
                f"duplicate node name (also nodes[{seen_names[node.name]}])",
                node.name,
            )
            ok = False
        seen_names.setdefault(node.name, i)
        if node.cid in seen_cids:
            c.error(f"nodes[{i}].cid", f"duplicate CID (also nodes[{seen_cids[node.cid]}])", node.cid)
            ok = False
        seen_cids.setdefault(node.cid, i)
    if ok:
        for i, node in enumerate(good):
            if node.cid >= len(good):
                missing = min(set(range(len(good))) - set(seen_cids))
                c.error(
                    f"nodes[{i}].cid",
                    f"CIDs must be 0..{len(good) - 1} (sequential from 0), {missing} is missing",
                    node.cid,
                )
                ok = False
                break
    # Exactly one preferred node; the first one when none says so.
    chosen = [i for i, p in preferred_given if p]
    if len(chosen) > 1:
        c.error(
            f"nodes[{chosen[1]}].preferred",
            f"only one node can be preferred (nodes[{chosen[0]}] already is)",
            True,
        )
        ok = False
    if not ok:
        return None
    first = chosen[0] if chosen else 0
    return tuple(Node(n.name, n.ip, n.cid, i == first) for i, n in enumerate(good))


# -- client
