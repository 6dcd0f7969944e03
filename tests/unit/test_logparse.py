"""The parsers of `labctl events` fed lines captured from real labs (two-node and trio, 2026-12-02:
up, fail, recover, shutdown, a partition with the serial cable cut, standby, takeover, serial
noise), and the pieces of the stream that need no engine: offsets, the node-side follower, faults.
"""

from __future__ import annotations

import calendar
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from labctl.faults.record import FaultRecord
from labctl.observe import logparse as lp
from labctl.observe.events import (
    FOLLOWER,
    Event,
    FileLog,
    NodeLogs,
    by_time,
    copy_roots,
    fault_events,
    keep,
    parse_since,
    source_of,
)

REF = calendar.timegm((2026, 12, 2, 15, 0, 0, 0, 0, 0))  # "now" for the yearless heartbeat stamps


def at(text: str) -> float:
    """``2026-12-02 14:28:45.5`` (UTC) in unix seconds."""
    day, clock = text.split()
    y, mo, d = map(int, day.split("-"))
    h, mi, s = clock.split(":")
    return calendar.timegm((y, mo, d, int(h), int(mi), 0, 0, 0, 0)) + float(s)


def parse(parser: lp.Parser, line: str, host: str = "barney") -> Event | None:
    return parser(line, lp.Context(host, ref=REF))


# (parser, kind, fields that must be there, its time (UTC), the real line)
CASES: list[tuple[lp.Parser, str, dict[str, Any], str, str]] = [
    # heartbeat itself, /var/log/ha-log
    (lp.parse_heartbeat, "link-dead", {"peer": "fred", "medium": "/dev/ttyS0"}, "2026-12-02 14:28:45",
     "Dec 02 14:28:45 barney heartbeat: [82]: info: Link fred:/dev/ttyS0 dead."),
    (lp.parse_heartbeat, "link-up", {"peer": "barney", "medium": "eth0"}, "2026-12-02 14:26:38",
     "Dec 02 14:26:38 fred heartbeat: [83]: info: Link barney:eth0 up."),
    (lp.parse_heartbeat, "node-dead", {"node": "fred"}, "2026-12-02 14:28:45",
     "Dec 02 14:28:45 barney heartbeat: [82]: WARN: node fred: is dead"),
    (lp.parse_heartbeat, "node-active", {"node": "fred"}, "2026-12-02 14:26:39",
     "Dec 02 14:26:39 barney heartbeat: [82]: info: Status update for node fred: status active"),
    (lp.parse_heartbeat, "local-active", {}, "2026-12-02 14:26:38",
     "Dec 02 14:26:38 fred heartbeat: [83]: info: Local status now set to: 'active'"),
    (lp.parse_heartbeat, "takeover", {"node": "fred"}, "2026-12-02 14:28:45",
     "Dec 02 14:28:45 barney heartbeat: [82]: info: Resources being acquired from fred."),
    (lp.parse_heartbeat, "acquired", {"how": "req_our_resources"}, "2026-12-02 14:26:39",
     "Dec 02 14:26:39 fred heartbeat: [83]: info: Initial resource acquisition complete "
     "(req_our_resources)"),
    (lp.parse_heartbeat, "acquired", {}, "2026-12-02 14:26:39",
     "Dec 02 14:26:39 fred heartbeat: [107]: info: Local Resource acquisition completed."),
    (lp.parse_heartbeat, "release-all", {}, "2026-12-02 14:29:35",
     "Dec 02 14:29:35 fred heartbeat: [1230]: info: Giving up all HA resources."),
    (lp.parse_heartbeat, "released", {}, "2026-12-02 14:29:35",
     "Dec 02 14:29:35 fred heartbeat: [1230]: info: All HA resources relinquished."),
    (lp.parse_heartbeat, "partition-return", {"node": "fred"}, "2026-12-02 14:30:48",
     "Dec 02 14:30:48 barney heartbeat: [82]: CRIT: Cluster node fred returning after partition."),
    (lp.parse_heartbeat, "late-heartbeat", {"node": "barney", "interval_ms": 47560}, "2026-12-02 14:30:48",
     "Dec 02 14:30:48 fred heartbeat: [232]: CRIT: Late heartbeat: Node barney: interval 47560 ms (> "
     "deadtime)"),
    (lp.parse_heartbeat, "node-restart", {"node": "fred"}, "2026-12-02 14:29:14",
     "Dec 02 14:29:14 barney heartbeat: [82]: info: Heartbeat restart on node fred"),
    (lp.parse_heartbeat, "restart", {}, "2026-12-02 14:30:53",
     "Dec 02 14:30:53 fred heartbeat: [232]: info: Heartbeat restart triggered."),
    (lp.parse_heartbeat, "peer-shutdown", {"node": "fred"}, "2026-12-02 14:29:35",
     "Dec 02 14:29:35 barney heartbeat: [82]: info: Received shutdown notice from 'fred'."),
    (lp.parse_heartbeat, "shutdown", {}, "2026-12-02 14:29:35",
     "Dec 02 14:29:35 fred heartbeat: [177]: info: Heartbeat shutdown in progress. (177)"),
    (lp.parse_heartbeat, "shutdown-done", {"node": "fred"}, "2026-12-02 14:29:37",
     "Dec 02 14:29:37 fred heartbeat: [177]: info: fred Heartbeat shutdown complete."),
    (lp.parse_heartbeat, "started", {"version": "3.0.6"}, "2026-12-02 14:26:37",
     "Dec 02 14:26:37 fred heartbeat: [83]: info: Configuration validated. Starting heartbeat 3.0.6"),
    (lp.parse_heartbeat, "standby-refused", {}, "2026-12-02 14:31:14",
     "Dec 02 14:31:14 fred heartbeat: [2150]: info: Standby mode only implemented when nice_failback "
     "on"),
    (lp.parse_heartbeat, "standby", {"node": "pollux", "which": "all"}, "2026-12-02 14:43:17",
     "Dec 02 14:43:17 castor heartbeat: [83]: info: pollux wants to go standby [all]"),
    (lp.parse_heartbeat, "standby-done", {"which": "all"}, "2026-12-02 14:43:18",
     "Dec 02 14:43:18 pollux heartbeat: [82]: info: Local standby process completed [all]."),
    (lp.parse_heartbeat, "standby-acquired", {"which": "all"}, "2026-12-02 14:43:19",
     "Dec 02 14:43:19 castor heartbeat: [83]: info: Standby resource acquisition done [all]."),
    (lp.parse_heartbeat, "standby-ignored", {"node": "castor"}, "2026-12-02 14:43:18",
     "Dec 02 14:43:18 castor heartbeat: [83]: WARN: Standby in progress- new request from castor "
     "ignored [3600 seconds left]"),
    (lp.parse_heartbeat, "takeover", {"node": "pollux", "which": "all"}, "2026-12-02 14:43:18",
     "Dec 02 14:43:18 castor heartbeat: [83]: info: standby: acquire [all] resources from pollux"),
    (lp.parse_heartbeat, "release-all", {}, "2026-12-02 14:43:17",
     "Dec 02 14:43:17 pollux heartbeat: [1278]: info: give up all HA resources (standby)."),
    (lp.parse_heartbeat, "lost-packets", {"count": 1, "node": "castor"}, "2026-12-02 14:43:20",
     "Dec 02 14:43:20 pollux heartbeat: [82]: WARN: 1 lost packet(s) for [castor] [35:37]"),
    (lp.parse_heartbeat, "log", {}, "2026-12-02 14:26:37",
     "Dec 02 14:26:37 fred heartbeat: [83]: WARN: Logging daemon is disabled --enabling logging "
     "daemon is recommended"),
    # the scripts heartbeat runs, same file
    (lp.parse_heartbeat, "takeover-group", {"group": "192.168.1.100"}, "2026-12-02 14:28:45",
     "2026/12/02_14:28:45  mach_down(default)[697]:    info: Taking over resource group 192.168.1.100"),
    (lp.parse_heartbeat, "acquire",
     {"owner": "fred", "resources": "192.168.1.100 memexpd Filesystem::/dev/sda3::/ogfs::ogfs::"
                                    "hostdata=192.168.1.2 smb"}, "2026-12-02 14:28:45",
     "2026/12/02_14:28:45  ResourceManager(default)[721]:    info: Acquiring resource group: fred "
     "192.168.1.100 memexpd Filesystem::/dev/sda3::/ogfs::ogfs::hostdata=192.168.1.2 smb"),
    (lp.parse_heartbeat, "release", {"owner": "fred"}, "2026-12-02 14:29:35",
     "2026/12/02_14:29:35  ResourceManager(default)[1244]:    info: Releasing resource group: fred "
     "192.168.1.100 memexpd Filesystem::/dev/sda3::/ogfs::ogfs::hostdata=192.168.1.1 smb"),
    (lp.parse_heartbeat, "giving-up",
     {"resource": "Filesystem::/dev/sda3::/ogfs::ogfs::hostdata=192.168.1.2"}, "2026-12-02 14:30:44",
     "2026/12/02_14:30:44  ResourceManager(default)[4659]:    CRIT: Giving up resources due to "
     "failure of Filesystem::/dev/sda3::/ogfs::ogfs::hostdata=192.168.1.2"),
    (lp.parse_heartbeat, "resource-start",
     {"resource": "IPaddr", "args": "192.168.1.100"}, "2026-12-02 14:28:45",
     "2026/12/02_14:28:45  ResourceManager(default)[721]:    info: Running "
     "/etc/ha.d//resource.d/IPaddr 192.168.1.100 start"),
    (lp.parse_heartbeat, "resource-stop", {"resource": "memexpd"}, "2026-12-02 14:29:35",
     "2026/12/02_14:29:35  ResourceManager(default)[1244]:    info: Running "
     "/etc/ha.d/resource.d/memexpd  stop"),
    (lp.parse_heartbeat, "resource-failed", {"code": 1, "resource": "Filesystem"}, "2026-12-02 14:30:44",
     "2026/12/02_14:30:44  ResourceManager(default)[4659]:    ERROR: Return code 1 from "
     "/etc/ha.d//resource.d/Filesystem"),
    (lp.parse_heartbeat, "error", {}, "2026-12-02 14:30:44",
     "2026/12/02_14:30:44  Filesystem(Filesystem_/dev/sda3)[4978]:    ERROR: Couldn't mount device "
     "[/dev/sda3] as /ogfs"),
    (lp.parse_heartbeat, "takeover-done", {"node": "fred"}, "2026-12-02 14:28:47",
     "2026/12/02_14:28:47  mach_down(default)[697]:    info: mach_down takeover complete for node "
     "fred."),
    (lp.parse_heartbeat, "standby", {"which": "all"}, "2026-12-02 14:43:17",
     "2026/12/02_14:43:17  hb_standby(default)[687]:    Going standby [all]."),
    (lp.parse_heartbeat, "log", {}, "2026-12-02 14:26:39",
     "2026/12/02_14:26:39  ip-request-resp(default)[194]:    received ip-request-resp 192.168.1.100 "
     "OK yes"),
    (lp.parse_heartbeat, "log", {}, "2026-12-02 14:26:39",
     "2026/12/02_14:26:39  /usr/lib/ocf/resource.d//heartbeat/IPaddr(IPaddr_192.168.1.100)[144]:    "
     "INFO:  Resource is stopped"),
    # the form the brief quoted (heartbeat builds that stamp after the program name)
    (lp.parse_heartbeat, "link-dead", {"peer": "fred", "medium": "eth0"}, "2026-12-02 13:55:01",
     "heartbeat[123]: 2026/12/02_13:55:01 info: Link fred:eth0 dead."),
    # memexpd, /var/log/memexpd.log
    (lp.parse_memexpd, "started", {"epoch": 1538727423}, "2026-12-02 14:28:46",
     "2026-12-02 14:28:46 memexpd[938]: memexpd started: epoch 1538727423, listening on "
     "192.168.1.100:15697, timeout 30 s, grace period 30 s; nodes: 192.168.1.1 (cid 0, STOMITH "
     "manual), 192.168.1.2 (cid 1, STOMITH manual)"),
    (lp.parse_memexpd, "login", {"node": "192.168.1.2", "cid": 1}, "2026-12-02 14:28:46",
     "2026-12-02 14:28:46 memexpd[938]: node 192.168.1.2 (cid 1) logged in (incarnation "
     "224046944043625)"),
    (lp.parse_memexpd, "mount", {"node": "192.168.1.2", "jid": 1, "first": True}, "2026-12-02 14:28:46",
     "2026-12-02 14:28:46 memexpd[938]: node 192.168.1.2 (cid 1) mounts journal 1 as first mounter"),
    (lp.parse_memexpd, "others-may-mount", {"cid": 1}, "2026-12-02 14:28:46",
     "2026-12-02 14:28:46 memexpd[938]: first mounter node 192.168.1.2 (cid 1): others may mount"),
    (lp.parse_memexpd, "grace-over", {"why": "every node is logged in"}, "2026-12-02 14:28:46",
     "2026-12-02 14:28:46 memexpd[938]: grace period over (every node is logged in): granting new "
     "requests"),
    (lp.parse_memexpd, "grace", {"reclaimers": "192.168.1.1"}, "2026-12-02 14:30:14",
     "2026-12-02 14:30:14 memexpd[4876]: disk heartbeats: nodes that may reclaim locks: 192.168.1.1"),
    (lp.parse_memexpd, "mount-wait", {"cid": 1}, "2026-12-02 14:30:12",
     "2026-12-02 14:30:12 memexpd[4876]: mount of node 192.168.1.2 (cid 1) waits: grace period (nodes "
     "that were mounted reclaim their locks)"),
    (lp.parse_memexpd, "slot-dead", {"cid": 0, "node": "192.168.1.1"}, "2026-12-02 14:28:46",
     "2026-12-02 14:28:46 memexpd[938]: cid 0 (192.168.1.1): its disk heartbeat slot says mounted but "
     "ogfs_slotwatch has seen it frozen for 10.7 s: dead"),
    (lp.parse_memexpd, "callback-lost", {"cid": 1}, "2026-12-02 14:30:44",
     "2026-12-02 14:30:44 memexpd[4876]: warning: callback connection to node 192.168.1.2 (cid 1) "
     "lost; reconnecting"),
    (lp.parse_memexpd, "callback", {"port": 3001}, "2026-12-02 14:28:46",
     "2026-12-02 14:28:46 memexpd[938]: callback connection to node 192.168.1.2 (cid 1) on port 3001"),
    (lp.parse_memexpd, "disconnect", {"cid": 1}, "2026-12-02 14:30:44",
     "2026-12-02 14:30:44 memexpd[4876]: lock connection of node 192.168.1.2 (cid 1) closed"),
    (lp.parse_memexpd, "unmount", {"node": "192.168.1.2"}, "2026-12-02 14:29:16",
     "2026-12-02 14:29:16 memexpd[938]: node 192.168.1.2 (cid 1) unmounted"),
    (lp.parse_memexpd, "stopping", {"signal": "SIGTERM"}, "2026-12-02 14:29:16",
     "2026-12-02 14:29:16 memexpd[938]: SIGTERM: stopping (epoch 1538727423)"),
    (lp.parse_memexpd, "exited", {"code": 0}, "2026-12-02 14:29:16",
     "2026-12-02 14:29:16 memexpd[938]: memexpd exits (0)"),
    # what no lab reaches (memexpd on the node that mounts, the peer never mounts): the real memexpd
    # of tests/ogfs/test_memexpd.py, scripted nodes on 127.0.0.x
    (lp.parse_memexpd, "expired", {"node": "127.0.0.2", "cid": 0, "seconds": 2}, "2026-12-02 14:45:58",
     "2026-12-02 14:45:58 memexpd[21422]: warning: node 127.0.0.2 (cid 0) expired: no heartbeat for 2 "
     "s"),
    (lp.parse_memexpd, "stomith-wait", {"node": "127.0.0.2"}, "2026-12-02 14:45:58",
     "2026-12-02 14:45:58 memexpd[21422]: warning: STOMITH manual: reset 127.0.0.2, then run: "
     "ogfs_tool stomith-ack 127.0.0.2"),
    (lp.parse_memexpd, "stomith-ack", {"cid": 0}, "2026-12-02 14:45:58",
     "2026-12-02 14:45:58 memexpd[21422]: warning: STOMITH of node 127.0.0.2 (cid 0) acknowledged by "
     "the operator (from 127.0.0.1:55054)"),
    (lp.parse_memexpd, "stomith-ack-refused", {"node": "127.0.0.2"}, "2026-12-02 14:45:59",
     "2026-12-02 14:45:59 memexpd[21422]: warning: STOMITH_ACK for 127.0.0.2 from 127.0.0.1:55084 "
     "refused: node 127.0.0.2 (cid 0) is not waiting for STOMITH (it is gone)"),
    (lp.parse_memexpd, "recovery", {"jid": 0, "by": "127.0.0.3"}, "2026-12-02 14:45:58",
     "2026-12-02 14:45:58 memexpd[21422]: recovery of journal 0 (127.0.0.2) requested from node "
     "127.0.0.3"),
    (lp.parse_memexpd, "recovery-done", {"jid": 0, "by": "127.0.0.3"}, "2026-12-02 14:45:58",
     "2026-12-02 14:45:58 memexpd[21422]: journal 0 (127.0.0.2) recovered by node 127.0.0.3 (cid 1): "
     "1 expired lock(s) released"),
    (lp.parse_memexpd, "mount-wait", {"cid": 1}, "2026-12-02 14:45:56",
     "2026-12-02 14:45:56 memexpd[21422]: mount of node 127.0.0.3 (cid 1) waits: first mounter node "
     "127.0.0.2 (cid 0) is recovering journals"),
    (lp.parse_memexpd, "mount", {"jid": 1, "first": False}, "2026-12-02 14:45:56",
     "2026-12-02 14:45:56 memexpd[21422]: node 127.0.0.3 (cid 1) mounts journal 1"),
    # the ogfs mount daemon, /var/log/ogfs/ogfs.log
    (lp.parse_ogfs, "replayed", {"jid": 0, "transactions": 2}, "2026-12-02 14:28:46.933",
     "2026-12-02 14:28:46,933 ogfsd[1137]: jid=0: Replaying journal... replayed 2 transaction(s); Done"),
    (lp.parse_ogfs, "mounted",
     {"device": "/dev/sda3", "mountpoint": "/ogfs", "jid": 1, "first": True}, "2026-12-02 14:28:46.935",
     "2026-12-02 14:28:46,935 ogfsd[1137]: mounted /dev/sda3 on /ogfs: jid=1, lockproto=memexp, first "
     "mounter"),
    (lp.parse_ogfs, "unmounted", {"jid": 1}, "2026-12-02 14:29:16.363",
     "2026-12-02 14:29:16,363 ogfsd[1137]: unmounted /ogfs: journal 1 clean"),
    (lp.parse_ogfs, "refused", {}, "2026-12-02 14:30:44.036",
     "2026-12-02 14:30:44,036 ogfsd[5062]: mount failed: refusing to mount as first node: 192.168.1.1 "
     "(cid 0) still writes its disk heartbeat on /dev/sda1 (split brain? STOMITH it first)"),
    (lp.parse_ogfs, "slot-dead", {"cid": 0}, "2026-12-02 14:28:46.920",
     "2026-12-02 14:28:46,920 ogfsd[1137]: cid 0 (192.168.1.1): its disk heartbeat slot says mounted "
     "but ogfs_slotwatch has seen it frozen for 11.3 s: dead"),
    (lp.parse_ogfs, "lockserver-lost", {"server": "192.168.1.100:15697"}, "2026-12-02 14:31:19.964",
     "2026-12-02 14:31:19,964 ogfsd[5949]: lost the lock server memexpd at 192.168.1.100:15697 "
     "(connection closed); reconnecting"),
    # a withdraw (tests/ogfs/test_diskfault_mount.py, a write error injected under a real mount)
    (lp.parse_ogfs, "disk-fault", {"device": "/dev/loop3"}, "2026-12-02 14:46:36.987",
     '2026-12-02 14:46:36,987 ogfsd[24119]: disk fault injected on /dev/loop3: {"after": 2, "device": '
     '"/dev/loop3", "errors": "write", "hang": false, "slow_ms": 0}'),
    (lp.parse_ogfs, "withdrawn", {"device": "/dev/loop3"}, "2026-12-02 14:46:36.987",
     "2026-12-02 14:46:36,987 ogfsd[24119]: withdrawn: /dev/loop3: write at block 30 failed: [Errno "
     "5] Input/output error (injected by /tmp/evt_wd/test_a_write_error_withdraws_t1/diskfault.json); "
     "this node writes nothing more to it: writes and fsync fail with EIO until a remount"),
    (lp.parse_ogfs, "log", {}, "2026-12-02 14:46:37.185",
     "2026-12-02 14:46:37,185 ogfsd[24119]: withdrawn: /dev/loop3 unmounted with its journal 0 dirty: "
     "the next mount replays it"),
    (lp.parse_ogfs, "unmounted-dirty", {"jid": 0}, "2026-12-02 14:46:37.186",
     "2026-12-02 14:46:37,186 ogfsd[24119]: unmounted "
     "/tmp/evt_wd/test_a_write_error_withdraws_t1/mnt: withdrawn, journal 0 left dirty"),
    # the slot watcher
    (lp.parse_slotwatch, "slot-mounted", {"cid": 1, "node": "192.168.1.2"}, "2026-12-02 14:28:47",
     "2026-12-02 14:28:47 ogfs_slotwatch[21]: cid 1 (192.168.1.2): mounted"),
    (lp.parse_slotwatch, "slot-unmounted", {"cid": 1}, "2026-12-02 14:31:43",
     "2026-12-02 14:31:43 ogfs_slotwatch[23]: cid 1 (192.168.1.2): unmounted"),
    (lp.parse_slotwatch, "started", {"device": "/dev/sda1"}, "2026-12-02 14:31:43",
     "2026-12-02 14:31:43 ogfs_slotwatch[23]: watching the disk heartbeats of cids 0, 1 on /dev/sda1"),
    # a node's serial end
    (lp.parse_serial_end, "plugged", {"socket": "/var/lib/labctl/cable/0-fred.sock"}, "2026-12-02 14:29:13",
     "2026-12-02 14:29:13 cable connected (/var/lib/labctl/cable/0-fred.sock)"),
    (lp.parse_serial_end, "started", {"device": "/dev/ttyS0"}, "2026-12-02 14:26:37",
     "2026-12-02 14:26:37 /dev/ttyS0 -> /dev/pts/0, cable socket /var/lib/labctl/cable/0-barney.sock"),
    (lp.parse_serial_end, "unplugged", {}, "2026-12-02 14:33:00",
     "2026-12-02 14:33:00 cable lost: the line is silent, retrying"),
    # the relay, docker logs -t: Docker's stamp gives the time
    (lp.parse_relay, "unplugged", {"cable": 0, "node": "fred"}, "2026-12-02 14:28:36.351915",
     "2026-12-02T14:28:36.351915142Z 2026-12-02 14:28:36 labctl-cable: cable 0 (fred <-> barney, "
     "19200 baud): fred unplugged (its node is down or restarting)"),
    (lp.parse_relay, "plugged", {"node": "fred"}, "2026-12-02 14:29:13.898463",
     "2026-12-02T14:29:13.898463469Z 2026-12-02 14:29:13 labctl-cable: cable 0 (fred <-> barney, "
     "19200 baud): fred plugged in"),
    (lp.parse_relay, "cut", {"cable": 0}, "2026-12-02 14:30:00.634394",
     "2026-12-02T14:30:00.634393841Z 2026-12-02 14:30:00 labctl-cable: cable 0 (fred <-> barney, "
     "19200 baud): cut by labctl"),
    (lp.parse_relay, "restored", {}, "2026-12-02 14:30:47.980176",
     "2026-12-02T14:30:47.980176480Z 2026-12-02 14:30:47 labctl-cable: cable 0 (fred <-> barney, "
     "19200 baud): restored"),
    (lp.parse_relay, "noise", {"rate": "0.01"}, "2026-12-02 14:32:15.826082",
     "2026-12-02T14:32:15.826081608Z 2026-12-02 14:32:15 labctl-cable: cable 0 (fred <-> barney, "
     "19200 baud): noise 0.01"),
    (lp.parse_relay, "plugged", {"node": "barney"}, "2026-12-02 14:26:37",
     "2026-12-02 14:26:37 labctl-cable: cable 0 (fred <-> barney, 19200 baud): barney plugged in"),
    # fencing (docs/fencing.md), 2026-12-02 23:08, a frozen fred: the switch lab, then the manual one
    (lp.parse_ogfs, "power-off", {"node": "192.168.1.1", "cid": 0, "plug": 1}, "2026-12-02 23:08:02.300",
     "2026-12-02 23:08:02,300 ogfsd[782]: fence: powering 192.168.1.1 (cid 0) off: power switch "
     "10.213.1.5:7000, plug 1"),
    (lp.parse_ogfs, "fence", {"jid": 0, "by": "192.168.1.2", "how": "powered off by the lab's power switch"},
     "2026-12-02 23:08:02.447",
     "2026-12-02 23:08:02,447 ogfsd[782]: fence: journal 0 taken by 192.168.1.2 (cid 1) at 23:08:02, "
     "powered off by the lab's power switch (plug 1) (192.168.1.1's mount 75a7eedcd0a1b2c3)"),
    (lp.parse_ogfs, "unfenced-replay", {"node": "192.168.1.1", "method": "manual"}, "2026-12-02 23:05:21.015",
     "2026-12-02 23:05:21,015 ogfsd[783]: fence: 192.168.1.1 (cid 0) has STOMITH method 'manual': "
     "nothing powers it off; replaying its journal UNFENCED (if it is only frozen, its disk lease "
     "withdraws it when it wakes)"),
    (lp.parse_ogfs, "fence", {"jid": 0, "how": "UNFENCED"}, "2026-12-02 23:05:21.016",
     "2026-12-02 23:05:21,016 ogfsd[783]: fence: journal 0 taken by 192.168.1.2 (cid 1) at 23:05:21, "
     "UNFENCED: judged dead by its disk heartbeat alone, nobody powered it off (192.168.1.1's mount "
     "4f9d34ee683d1b47)"),
    (lp.parse_ogfs, "withdrawn", {"device": "/dev/sda3"}, "2026-12-02 23:08:39.836",
     "2026-12-02 23:08:39,836 ogfsd[628]: withdrawn: /dev/sda3: fenced: journal 0 taken by 192.168.1.2 "
     "(cid 1) at 23:08:33, UNFENCED: judged dead by its disk heartbeat alone, nobody powered it off; "
     "this node writes nothing more to it: writes and fsync fail with EIO until a remount"),
    (lp.parse_ogfs, "self-fence", {"mountpoint": "/ogfs"}, "2026-12-02 23:08:39.840",
     "2026-12-02 23:08:39,840 ogfs-fenced: /ogfs: journal 0 taken by 192.168.1.2 (cid 1) at 23:08:33, "
     "UNFENCED: judged dead by its disk heartbeat alone, nobody powered it off; rebooting (self-fence)"),
    (lp.parse_switch, "power-off", {"plug": 1, "container": "labctl-fs-fred", "was": "frozen"},
     "2026-12-02 23:08:02.302101",
     "2026-12-02T23:08:02.302101Z 2026-12-02 23:08:02 labctl-switch[1]: plug 1 (labctl-fs-fred): OFF "
     "from 10.213.1.3: powering off (it was frozen)"),
    (lp.parse_switch, "powered-off", {"plug": 1}, "2026-12-02 23:08:02.446",
     "2026-12-02T23:08:02.446000Z 2026-12-02 23:08:02 labctl-switch[1]: plug 1 (labctl-fs-fred): off"),
    (lp.parse_switch, "refused", {"peer": "10.213.1.4"}, "2026-12-02 23:09:00",
     "2026-12-02T23:09:00.000000Z 2026-12-02 23:09:00 labctl-switch[1]: refused a connection from "
     "10.213.1.4: not a node of the lab"),
    (lp.parse_memexpd, "stomith-done", {"node": "192.168.1.1", "cid": 0}, "2026-12-02 23:20:00",
     "2026-12-02 23:20:00 memexpd[583]: warning: STOMITH of node 192.168.1.1 (cid 0) done: the power "
     "switch says 'OK off 1'"),
]


@pytest.mark.parametrize("parser,kind,fields,when,line", CASES,
                         ids=[f"{c[0].__name__}:{c[1]}" for c in CASES])
def test_real_lines(parser: lp.Parser, kind: str, fields: dict[str, Any], when: str, line: str) -> None:
    ev = parse(parser, line)
    assert ev is not None
    assert ev.kind == kind
    assert ev.fields.items() >= fields.items(), ev.fields
    assert ev.time == pytest.approx(at(when), abs=1e-5)
    docker_stamped = parser in (lp.parse_relay, lp.parse_switch) and line[10] == "T"
    assert ev.host == "barney" and ev.text == (line.split(" ", 1)[1] if docker_stamped else line.strip())


def test_sources() -> None:
    assert parse(lp.parse_heartbeat, CASES[0][4]).source == "heartbeat"  # type: ignore[union-attr]
    relay = next(c for c in reversed(CASES) if c[0] is lp.parse_relay)
    assert parse(lp.parse_relay, relay[4]).source == "serial"  # type: ignore[union-attr]


def test_samba_records_take_their_headers_time() -> None:
    """log.nmbd as nmbd wrote it: a header, then the message indented."""
    lines = ["[2026/12/02 14:26:40.759587,  0] ../../source3/nmbd/nmbd.c:901(main)",
             "  nmbd version 4.17.12-Debian started.",
             "  Copyright Andrew Tridgell and the Samba Team 1992-2022",
             "[2026/12/02 14:29:10.233968,  0] "
             "../../source3/nmbd/nmbd_become_lmb.c:398(become_local_master_stage2)",
             "  *****",
             "  ",
             "  Samba name server FSCLUSTER is now a local master browser for workgroup WORKGROUP on subnet "
             "192.168.1.100",
             "[2026/12/02 14:29:16.107475,  0] ../../source3/nmbd/nmbd.c:59(terminate)",
             "  Got SIGTERM: going down..."]
    ctx = lp.Context("barney", "/var/log/samba/log.nmbd")
    events = [ev for ev in (lp.parse_samba(line, ctx) for line in lines) if ev is not None]
    kinds = [(ev.kind, ev.fields.get("daemon")) for ev in events if ev.kind != "log"]
    assert kinds == [("started", "nmbd"), ("master-browser", "nmbd"), ("stopped", "nmbd")]
    assert events[0].time == pytest.approx(at("2026-12-02 14:26:40.759587"))
    assert events[-1].time == pytest.approx(at("2026-12-02 14:29:16.107475"))
    assert events[-1].text == "Got SIGTERM: going down..."
    # rpcd and dcerpcd headers have no fraction; smbd's header names smbd
    ctx = lp.Context("fred", "/var/log/samba/log.smbd")
    header = "[2026/12/02 14:26:43,  0] ../../source3/rpc_server/rpc_worker.c:1125(rpc_worker_main)"
    assert lp.parse_samba(header, ctx) is None
    assert ctx.last == at("2026-12-02 14:26:43")
    lp.parse_samba("[2026/12/02 14:26:40.683852,  0] ../../source3/smbd/server.c:1741(main)", ctx)
    ev = lp.parse_samba("  smbd version 4.17.12-Debian started.", ctx)
    assert ev is not None and ev.kind == "started"
    assert ev.fields == {"daemon": "smbd", "version": "4.17.12-Debian"}


def test_yearless_stamps_take_the_year_before_ref() -> None:
    line = "Dec 31 23:59:59 fred heartbeat: [83]: info: Link barney:eth0 up."
    ev = lp.parse_heartbeat(line, lp.Context("fred", ref=calendar.timegm((2027, 1, 1, 0, 0, 5, 0, 0, 0))))
    assert ev is not None and time.gmtime(ev.time).tm_year == 2026
    ev = lp.parse_heartbeat(line, lp.Context("fred", ref=calendar.timegm((2026, 12, 31, 23, 0, 0, 0, 0, 0))))
    assert ev is not None and time.gmtime(ev.time).tm_year == 2026


HOSTILE = [
    "",
    "   ",
    "\x00\x01\x02 binary \xff",
    "heartbeat: udpport setting must precede media statementsDec 02 14:26:37 fred heartbeat: [83]: info: "
    "Pacemaker support: off",  # real: heartbeat's stderr before it knew its log file, in docker logs
    "Dec 02 14:32:21 fred heartbeat: [2150]: info: Standby mode only implemented when nice_failback onDec 02 "
    "14:32:20 Going standby [all].",  # two writers on one line
    "Feb 30 99:99:99 fred heartbeat: [1]: info: Link x:y up.",
    "Foo 02 14:26:37 fred heartbeat: [83]: info: Link barney:eth0 up.",
    "2026/13/45_25:61:61  ResourceManager(default)[1]:    info: Acquiring resource group: x",
    "9999-99-99 99:99:99 memexpd[1]: memexpd started: epoch 1",
    "2026-12-02 14:28:46,9 ogfsd[1]: mounted",
    "[2026/12/02 14:29:16.107475,  0]",
    "[garbage] ../../x.c:1(y)",
    "Traceback (most recent call last):",
    '  File "/usr/sbin/memexpd", line 3, in <module>',
    "2026-12-02T14:28:36.351915142Z",
    "2026-12-02T99:28:36.3Z 2026-12-02 14:28:36 labctl-cable: cable 0 (a <-> b, 1 baud): a plugged in",
    "Link fred:eth0 dead." * 500,
    "{{kind}} {0} %s %(x)s",
]

PARSERS = [lp.parse_heartbeat, lp.parse_memexpd, lp.parse_ogfs, lp.parse_slotwatch, lp.parse_serial_end,
           lp.parse_relay, lp.parse_switch, lp.parse_samba]


@pytest.mark.parametrize("parser", PARSERS, ids=[p.__name__ for p in PARSERS])
def test_hostile_lines_never_raise(parser: lp.Parser) -> None:
    ctx = lp.Context("fred", ref=REF)
    for line in HOSTILE:
        ev = parser(line, ctx)
        assert ev is None or isinstance(ev.time, float)
    # the stamp of the garbled line is kept for what it says first
    ev = lp.parse_heartbeat(HOSTILE[4], lp.Context("fred", ref=REF))
    assert ev is not None and ev.kind == "standby-refused"


def test_unstamped_lines_borrow_the_previous_time() -> None:
    ctx = lp.Context("barney", ref=REF)
    assert lp.parse_memexpd("Traceback (most recent call last):", ctx) is None  # nothing to borrow yet
    lp.parse_memexpd("2026-12-02 14:29:16 memexpd[938]: memexpd exits (0)", ctx)
    ev = lp.parse_memexpd("Traceback (most recent call last):", ctx)
    assert ev is not None and ev.kind == "log" and ev.time == at("2026-12-02 14:29:16")


# --------------------------------------------------------------------------- the stream's pieces


def test_node_log_paths() -> None:
    assert source_of("/var/log/ha-log") == "heartbeat"
    assert source_of("/var/log/ogfs/ogfs.log") == "ogfs"
    assert source_of("/var/log/labctl/serial-ttyS0.log") == "serial"
    assert source_of("/var/log/labctl/memexpd.log") == "memexpd"
    assert source_of("/var/log/samba/log.client") is None
    assert source_of("/var/log/ha-debug") is None
    assert "/var/log/ogfs" in copy_roots() and "/var/log/labctl" in copy_roots()


def test_file_log_reads_each_complete_line_once() -> None:
    f = FileLog("barney", "/var/log/labctl/slotwatch.log", "slotwatch")
    a = b"2026-12-02 14:28:47 ogfs_slotwatch[21]: cid 1 (192.168.1.2): mounted\n"
    b = b"2026-12-02 14:29:16 ogfs_slotwatch[21]: cid 1 (192.168.1.2): unmounted\n"
    assert [ev.kind for ev in f.whole(a + b[:20])] == ["slot-mounted"]  # the half line waits
    assert [ev.kind for ev in f.whole(a + b)] == ["slot-unmounted"]
    assert f.whole(a + b) == []
    assert [ev.kind for ev in f.whole(a)] == ["slot-mounted"]  # shorter: the file was started again


def test_followed_lines_after_docker_cp_are_not_repeated() -> None:
    logs = NodeLogs(None, "barney")  # type: ignore[arg-type]  # no engine is reached below
    line = "2026-12-02 14:28:47 ogfs_slotwatch[21]: cid 1 (192.168.1.2): mounted"
    rec = json.dumps({"p": "/var/log/labctl/slotwatch.log", "o": len(line) + 1, "l": line}).encode()
    ev = logs._followed(rec)
    assert ev is not None and ev.kind == "slot-mounted"
    assert logs._followed(rec) is None  # the same offset again (a new follower after a restart)
    assert logs._followed(b'{"p": "/var/log/labctl/slotwatch.log", "reset": true}') is None
    assert logs._followed(rec) is not None  # after a reset the file is read from 0
    assert logs._followed(b"not json") is None
    assert logs._followed(b'{"p": "/etc/passwd", "o": 5, "l": "root"}') is None


def test_follower_script(tmp_path: Path) -> None:
    """FOLLOWER as the nodes run it, on files here: offsets, new files, truncation, EOF ends it."""
    (tmp_path / "a.log").write_text("old\nseen\n")
    sub = tmp_path / "sub"
    spec = {"globs": [str(tmp_path / "a.log"), str(sub / "*.log")], "offsets": {str(tmp_path / "a.log"): 4}}
    p = subprocess.Popen([sys.executable, "-c", FOLLOWER, json.dumps(spec)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdin is not None

    def next_record() -> dict[str, Any]:
        return dict(json.loads(p.stdout.readline()))  # type: ignore[union-attr]

    try:
        assert next_record() == {"p": str(tmp_path / "a.log"), "o": 9, "l": "seen"}
        with open(tmp_path / "a.log", "a") as fh:
            fh.write("new")
            fh.flush()
            fh.write(" line\n")
        assert next_record() == {"p": str(tmp_path / "a.log"), "o": 18, "l": "new line"}
        sub.mkdir()
        (sub / "x.log").write_text("in a new directory\n")
        assert next_record()["l"] == "in a new directory"
        (tmp_path / "a.log").write_text("short\n")
        assert next_record() == {"p": str(tmp_path / "a.log"), "reset": True}
        assert next_record() == {"p": str(tmp_path / "a.log"), "o": 6, "l": "short"}
        p.stdin.close()
        assert p.wait(5) == 0
    finally:
        p.kill()
        p.wait()


def test_fault_records_become_two_events() -> None:
    rec = FaultRecord("971bab", "fail", ("fred",), {}, requested=1796221716.2279305, since=1796221716.4820044,
                      healed=1796221753.3524535, detail="power cut")
    cut = FaultRecord("5dac30", "serial-cut", ("fred-barney",), {}, requested=1796221800.5,
                      since=1796221800.645595)
    events = by_time(fault_events([cut, rec]))
    assert [(ev.kind, ev.host, ev.text) for ev in events] == [
        ("fault-applied", "fred", "fail fred"), ("fault-healed", "fred", "fail fred"),
        ("fault-applied", "cable", "serial-cut fred-barney")]
    assert events[0].time == 1796221716.4820044 and events[0].source == "labctl"
    assert events[0].as_dict()["fields"] == {"id": "971bab", "fault": "fail", "targets": ["fred"]}
    assert json.loads(json.dumps(events[2].as_dict()))["kind"] == "fault-applied"


def test_a_failed_apply_is_one_fault_failed_event() -> None:
    rec = FaultRecord("0badf0", "stomith-ack", ("fred",), {}, requested=100.0, healed=100.4,
                      detail="failed, undone: memexpd waits for no STOMITH of fred")
    (ev,) = fault_events([rec])
    assert (ev.kind, ev.time, ev.host) == ("fault-failed", 100.4, "fred")
    assert ev.text.startswith("stomith-ack fred: failed, undone")


def test_keep_and_order() -> None:
    a = Event(10.0, "fred", "heartbeat", "node-dead", "a")
    b = Event(10.0, "fred", "heartbeat", "log", "b")
    c = Event(9.5, "barney", "ogfs", "mounted", "c")
    assert [ev.text for ev in by_time([a, b, c])] == ["c", "a", "b"]  # ties keep their order
    assert keep(a, None, False) and not keep(b, None, False) and keep(b, None, True)
    assert not keep(c, 10.0, True)


def test_since() -> None:
    now = at("2026-12-02 14:30:00")
    assert parse_since("90s", now) == now - 90
    assert parse_since("5m", now) == now - 300
    assert parse_since("1796221716.5", now) == 1796221716.5
    assert parse_since("2026-12-02T14:28:36Z", now) == at("2026-12-02 14:28:36")
    assert parse_since("14:28", now) <= now and now - parse_since("14:28", now) < 86400
    with pytest.raises(ValueError):
        parse_since("yesterday-ish", now)
