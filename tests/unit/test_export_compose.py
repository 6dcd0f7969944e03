"""``labctl export compose``: the plan as a compose project, and the checked-in compose/two-node/.

Fast: no engine. The export must stay what a fresh export of the current tree gives (the drift
test), hold every container of the plan with what the plan gives it, and parse as compose reads it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml

from labctl.cli import main
from labctl.export import compose as cx
from labctl.export.yamltext import Alias, Anchor, Note, dump, plain
from labctl.plan import make_plan
from labctl.runtime.images import ImageSet
from labctl.topology import load_topology

ROOT = Path(__file__).resolve().parents[2]
CHECKED_IN = ROOT / "compose" / "two-node"
TWO = load_topology("two-node")
TRIO = load_topology("trio")
TAGS = {"base": "labctl/base:b", "node": "labctl/node:n", "client": "labctl/client:c"}
REFRESH = "labctl export compose two-node --out compose/two-node"


def project(topology: Any = TWO, **kw: Any) -> dict[str, cx.ExportFile]:
    return cx.compose_project(topology, **{"tags": TAGS, **kw})


def compose_data(files: dict[str, cx.ExportFile], lab: str | None = None) -> dict[str, Any]:
    """The compose file as compose reads it (variables and ``$$`` resolved)."""
    return dict(cx.resolve(yaml.safe_load(files[cx.COMPOSE_FILE].content), lab))


# --------------------------------------------------------------------------- the checked-in copy


def test_checked_in_copy_is_a_fresh_export() -> None:
    """compose/two-node/ is exactly what `labctl export` writes from this tree: image tags (any change
    under images/ or ogfs/ moves them), rendered files, the compose file."""
    fresh = cx.compose_project(TWO)
    problems = cx.differences(fresh, CHECKED_IN)
    assert not problems, ("compose/two-node/ drifted from a fresh export; refresh it with\n  " + REFRESH
                          + "\n" + "\n".join(problems))


def test_checked_in_copy_names_the_images_of_this_tree() -> None:
    text = (CHECKED_IN / cx.COMPOSE_FILE).read_text(encoding="utf-8")
    images = {svc["image"] for svc in yaml.safe_load(text)["services"].values()}
    assert images == set(ImageSet.compute().as_dict().values()), f"stale image tags: {REFRESH}"


def test_the_export_is_deterministic(tmp_path: Path) -> None:
    a, b = cx.compose_project(TWO), cx.compose_project(TWO)
    assert a == b
    cx.write_export(a, tmp_path / "x")
    assert cx.differences(b, tmp_path / "x") == []
    text = a[cx.COMPOSE_FILE].content
    assert str(ROOT) not in text and "20" + "26-" not in text  # no checkout path, no date
    assert f'"{cx.PLACEHOLDER_SECRET}"' in text  # the header says the secret is a fixed placeholder
    authkeys = a["files/fred/tree/etc/ha.d/authkeys"]
    assert cx.PLACEHOLDER_SECRET in authkeys.content and authkeys.mode == 0o600


# --------------------------------------------------------------------------- the services


def test_every_plan_container_is_a_service_with_what_the_plan_gives_it() -> None:
    plan = make_plan(TWO, outer=cx.DEFAULT_SUBNET, secret=cx.PLACEHOLDER_SECRET, topology_text="x")
    data = compose_data(project())
    services = data["services"]
    assert list(services) == ["disk", "claim", "cable", "fred", "barney", "client"]
    claim = services["claim"]  # the lab's record, as labctl up's claim: labels and fault records
    assert claim["container_name"] == plan.claim.name and claim["entrypoint"] == ["true"]
    keys = ("labctl.lab", "labctl.role", "labctl.profile", "labctl.lockproto", "labctl.outer")
    assert {k: claim["labels"][k] for k in keys} == {k: plan.claim.labels[k] for k in keys}
    assert claim["network_mode"] == "none"
    assert claim["cap_drop"] == ["ALL"]
    for spec in plan.containers:
        svc = services[spec.host]
        assert svc["image"] == TAGS[spec.image]
        assert svc["container_name"] == spec.name
        assert svc["hostname"] == spec.hostname
        assert svc["cap_add" if spec.cap_add else "hostname"] == (list(spec.cap_add) or spec.hostname)
        assert svc.get("cap_drop", []) == list(spec.cap_drop)
        assert svc["mem_limit"] == svc["memswap_limit"] == f"{spec.memory >> 20}m"
        assert svc["pids_limit"] == spec.pids
        assert svc.get("devices", []) == list(spec.devices)
        assert svc.get("tmpfs", []) == [f"{p}:{o}" for p, o in spec.tmpfs.items()]
        assert svc.get("extra_hosts", []) == [f"{h}:{ip}" for h, ip in spec.extra_hosts.items()]
        if spec.network is None:
            assert svc["network_mode"] == "none" and "networks" not in svc
        else:
            assert svc["networks"] == {"lan": {"ipv4_address": str(spec.address)}}
        if spec.stop_timeout is not None:
            assert svc["stop_grace_period"] == f"{spec.stop_timeout}s"
        labels = dict(spec.labels)
        if "labctl.topology" in labels:
            labels["labctl.topology"] = TWO.source.read_text(encoding="utf-8")  # type: ignore[union-attr]
            labels["labctl.topology.source"] = "two-node.yaml"
        assert svc["labels"] == labels
        assert "ports" not in svc and "privileged" not in svc
    fred = services["fred"]
    assert fred["cap_add"] == ["NET_ADMIN", "NET_RAW", "SYS_ADMIN"]
    assert fred["stop_grace_period"] == "120s"
    assert services["client"]["cap_add"] == ["NET_ADMIN"]
    assert services["cable"]["cap_drop"] == ["ALL"] and services["cable"]["network_mode"] == "none"


def test_commands_put_the_copy_in_front_of_what_the_image_runs() -> None:
    data = compose_data(project())
    s = data["services"]
    install = data["x-install"]
    assert all(svc["entrypoint"] == install for name, svc in s.items() if name != "claim")
    assert install[:2] == ["/bin/sh", "-ec"] and install[2].rstrip().endswith('exec "$@"')
    assert s["fred"]["command"] == ["/usr/local/sbin/labctl-init"]
    assert s["client"]["command"][:2] == ["/usr/bin/tini", "--"]
    assert s["client"]["command"][-1].endswith("&& exec sleep infinity")
    assert s["cable"]["command"][:3] == ["/usr/bin/python3", "-u", "/usr/local/bin/labctl-cable"]
    assert s["disk"]["command"] == [cx.DISK_PROGRAM]


@pytest.mark.parametrize("kind", ["node", "client"])
def test_image_entrypoints_are_the_dockerfiles(kind: str) -> None:
    """The export names what each image runs by itself, since its entrypoint goes in front."""
    lines = (ROOT / "images" / kind / "Dockerfile").read_text().splitlines()
    entry = [json.loads(x.split(None, 1)[1]) for x in lines if x.startswith("ENTRYPOINT ")]
    cmd = [json.loads(x.split(None, 1)[1]) for x in lines if x.startswith("CMD ")]
    assert tuple(entry[-1]) == cx.IMAGE_ENTRYPOINT[kind]  # type: ignore[index]
    assert tuple(cmd[-1] if cmd else ()) == cx.IMAGE_COMMAND[kind]  # type: ignore[index]


def test_the_disk_service_and_the_order_of_starting() -> None:
    s = compose_data(project())["services"]
    disk = s["disk"]
    assert disk["image"] == TAGS["node"] and disk["network_mode"] == "none"
    assert disk["cap_add"] == ["SYS_ADMIN"]
    assert disk["device_cgroup_rules"] == ["b 7:* rwm", "c 10:237 rwm"]
    assert "/dev:/dev" in disk["volumes"] and "disk:/disk" in disk["volumes"]
    assert disk["healthcheck"]["test"] == ["CMD", cx.DISK_PROGRAM, "check"]
    assert disk["stop_grace_period"] == "30s"
    assert disk["labels"] == {"labctl.lab": "two-node", "labctl.role": "disk"}
    for node in ("fred", "barney"):
        assert s[node]["depends_on"] == {"disk": {"condition": "service_healthy"},
                                         "cable": {"condition": "service_started"}}
        assert s[node]["device_cgroup_rules"] == ["b 7:* rwm"]
        assert "disk:/var/lib/labctl/disk:ro" in s[node]["volumes"]
        assert "cable:/var/lib/labctl/cable" in s[node]["volumes"]
    assert s["client"]["depends_on"] == {"fred": {"condition": "service_started"},
                                         "barney": {"condition": "service_started"}}
    assert "depends_on" not in s["cable"]


def test_network_and_volumes() -> None:
    data = compose_data(project())
    lan = data["networks"]["lan"]
    assert lan["name"] == "labctl-two-node-lan" and lan["internal"] is True
    assert lan["ipam"]["config"] == [{"subnet": "10.213.255.0/24", "gateway": "10.213.255.1"}]
    assert lan["labels"] == {"labctl.lab": "two-node", "labctl.role": "net"}
    vols = data["volumes"]
    assert vols["disk"]["name"] == "labctl-two-node-disk"
    # labctl down detaches a compose lab's loop devices too: the disk volume names its helper image
    assert vols["disk"]["labels"] == {"labctl.lab": "two-node", "labctl.role": "disk",
                                      "labctl.helper.image": TAGS["node"]}
    assert vols["cable"]["name"] == "labctl-two-node-cable"


def test_the_lab_name_is_a_variable_with_the_export_s_default() -> None:
    files = project()
    raw = yaml.safe_load(files[cx.COMPOSE_FILE].content)
    assert raw["services"]["fred"]["container_name"] == "labctl-${LABCTL_LAB:-two-node}-fred"
    other = compose_data(files, lab="t-x")
    assert other["services"]["fred"]["container_name"] == "labctl-t-x-fred"
    assert other["services"]["fred"]["labels"]["labctl.lab"] == "t-x"
    assert other["networks"]["lan"]["name"] == "labctl-t-x-lan"
    assert {v["labels"]["labctl.lab"] for v in other["volumes"].values()} == {"t-x"}
    # compose interpolates every value: the topology's own "$schema" is written "$$schema"
    assert "$$schema" in raw["services"]["fred"]["labels"]["labctl.topology"]
    assert other["services"]["fred"]["labels"]["labctl.topology"] == TWO.source.read_text()  # type: ignore


def test_files_and_their_modes() -> None:
    files = project()
    plan = make_plan(TWO, outer=cx.DEFAULT_SUBNET, secret=cx.PLACEHOLDER_SECRET, topology_text="x")
    for spec in plan.containers:
        modes = files[f"files/{spec.host}/modes"].content.splitlines()
        listed = {line.split()[1]: int(line.split()[0], 8) for line in modes if not line.startswith("#")}
        for f in spec.files:
            assert files[f"files/{spec.host}/tree{f.path}"].content == f.content
            assert listed[f.path] == f.mode
        for d in spec.dirs:
            assert listed[d + "/"] == 0o755
    assert "files/fred/tree/etc/hosts" not in files  # Docker owns /etc/hosts: extra_hosts
    hook = files[f"files/fred/tree{cx.DISK_HOOK}"]
    assert hook.mode == 0o755
    assert [line for line in hook.content.splitlines() if line.startswith("node ")] == [
        "node sda1 /dev/sda1", "node sda2 /dev/sda2", "node sda3 /dev/sda3"]
    assert f"files/client/tree{cx.DISK_HOOK}" not in files
    disk = files[f"files/disk/tree{cx.DISK_PROGRAM}"]
    assert "attach sda1 1048576 16777216 ||" in disk.content and disk.mode == 0o755
    assert "files/disk/tree/usr/local/lib/labctl/format-disk.sh" in files


@pytest.mark.parametrize("path", [cx.DISK_HOOK, cx.DISK_PROGRAM])
def test_in_container_scripts_are_valid_sh(path: str, tmp_path: Path) -> None:
    files = project()
    host = "disk" if path == cx.DISK_PROGRAM else "fred"
    script = tmp_path / "s"
    script.write_text(files[f"files/{host}/tree{path}"].content)
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True).returncode == 0
    install = tmp_path / "i"
    install.write_text(cx.INSTALL_SCRIPT)
    assert subprocess.run(["sh", "-n", str(install)], capture_output=True).returncode == 0


def test_the_install_step_copies_with_the_listed_modes(tmp_path: Path) -> None:
    """The entrypoint's copy, run against a scratch root: authkeys comes out 0600."""
    files = project()
    src = tmp_path / "src"
    cx.write_export(files, src)
    root = tmp_path / "root"
    script = cx.INSTALL_SCRIPT.replace(cx.FILES_MOUNT, str(src / "files" / "fred"))
    script = script.replace('"$path" ;;', f'"{root}$path" ;;')
    script = script.replace('"$mode" "$path"', f'"$mode" "{root}$path"')
    (src / "files/fred/tree/etc/ha.d/authkeys").chmod(0o644)  # as a git checkout leaves it
    res = subprocess.run(["sh", "-c", script, "install", "true"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert (root / "etc/ha.d/authkeys").stat().st_mode & 0o777 == 0o600
    assert (root / "etc/labctl/pre-heartbeat.d/05-disk").stat().st_mode & 0o777 == 0o755
    assert (root / "ogfs").is_dir()


# --------------------------------------------------------------------------- options and writing


def test_options_change_what_they_say() -> None:
    files = project(lab="bob", lockproto="nolock", subnet=IPv4Network("10.9.8.0/24"), secret="s3cret-s3cret")
    data = compose_data(files)
    assert data["services"]["fred"]["container_name"] == "labctl-bob-fred"
    assert data["services"]["fred"]["labels"]["labctl.lockproto"] == "nolock"
    assert data["networks"]["lan"]["ipam"]["config"][0]["subnet"] == "10.9.8.0/24"
    assert "memexpd" not in files["files/fred/tree/etc/ha.d/haresources"].content.split("\n")[-2]
    assert "s3cret-s3cret" in files["files/barney/tree/etc/ha.d/authkeys"].content
    head = files[cx.COMPOSE_FILE].content
    assert "labctl export compose two-node --lab bob --lockproto nolock --subnet 10.9.8.0/24 --out DIR" \
        in head.replace("\n# ", " ")
    assert cx.PLACEHOLDER_SECRET not in head


def test_trio_exports_three_nodes() -> None:
    data = compose_data(project(TRIO))
    nodes = [n for n, s in data["services"].items() if s["labels"].get("labctl.role") == "node"]
    assert nodes == list(TRIO.node_names)
    assert set(data["services"][TRIO.client.name]["depends_on"]) == set(nodes)


def test_write_refuses_a_foreign_directory_and_replaces_an_earlier_export(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep").write_text("x")
    with pytest.raises(cx.UsageError):
        cx.write_export(project(), foreign)
    out = tmp_path / "out"
    cx.write_export(project(TRIO), out)
    (out / ".env").write_text("LABCTL_LAB=x\n")
    cx.write_export(project(), out)
    assert not (out / "files" / "wilma").exists()  # trio's third node: gone
    assert (out / ".env").exists()
    assert cx.differences(project(), out) == []
    (out / "files/fred/tree/etc/ha.d/ha.cf").write_text("changed\n")
    (out / "files/extra").write_text("x")
    assert cx.differences(project(), out) == ["not in a fresh export: files/extra",
                                              "differs: files/fred/tree/etc/ha.d/ha.cf"]


def test_cli_export_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "two"
    assert main(["export", "compose", "two-node", "--out", str(out)]) == 0
    assert main(["export", "compose", "two-node", "--out", str(out), "--check", "--json"]) == 0
    capsys.readouterr()
    (out / cx.COMPOSE_FILE).write_text((out / cx.COMPOSE_FILE).read_text() + "# edited\n")
    assert main(["export", "compose", "two-node", "--out", str(out), "--check", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["differences"] == ["differs: docker-compose.yml"]
    assert main(["export", "compose", "two-node", "--out", str(tmp_path / "y"), "--secret", "short"]) == 2
    assert main(["export", "compose", "two-node", "--out", str(tmp_path / "y"), "--subnet", "10.1.0.0/16"]) \
        == 2
    assert main(["export", "compose", "two-node", "--out", str(tmp_path / "r"), "--secret", "random"]) == 0
    assert cx.PLACEHOLDER_SECRET not in (tmp_path / "r/files/fred/tree/etc/ha.d/authkeys").read_text()


def test_docker_compose_reads_it(tmp_path: Path) -> None:
    """docker-compose 1.29's own parser and schema (no engine needed for `config`)."""
    assert shutil.which("docker-compose"), "docker-compose is not installed (.ci/run installs it)"
    cx.write_export(cx.compose_project(TWO), tmp_path)
    env = {**os.environ, "LABCTL_LAB": "t-config"}
    res = subprocess.run(["docker-compose", "config"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    cfg = yaml.safe_load(res.stdout)
    assert cfg["services"]["fred"]["container_name"] == "labctl-t-config-fred"
    assert cfg["services"]["fred"]["depends_on"]["disk"] == {"condition": "service_healthy"}
    assert cfg["networks"]["lan"]["name"] == "labctl-t-config-lan"


# --------------------------------------------------------------------------- the YAML writer


@pytest.mark.parametrize("value", ["yes", "2.4", "a: b", "#x", " lead", "trail ", "", "*x", "${A}",
                                   "10:237", "b 7:* rwm", "[x]", "x, y", "naïve", "'q'", '"q"', "-", "- x",
                                   "~", "null"])
def test_yaml_scalars_read_back(value: str) -> None:
    assert yaml.safe_load(dump({"k": value, "l": [value, "x"]})) == {"k": value, "l": [value, "x"]}


@pytest.mark.parametrize("text", ["a\nb\n", "a\nb", "a\n\n  b\n", "trailing \nx\n", "a\nb\n\n", " x\ny\n"])
def test_yaml_multiline_reads_back(text: str) -> None:
    assert yaml.safe_load(dump({"k": text, "l": [text]})) == {"k": text, "l": [text]}


def test_yaml_notes_anchors_aliases() -> None:
    data = {"x-a": Note(Anchor("a", ["sh", "-c", "echo 1\necho 2\n"]), "first\nsecond"),
            "s": {"one": {"entrypoint": Alias("a"), "m": {}, "e": []}}}
    text = dump(data, header="head")
    assert text.startswith("# head\n") and "# first\n# second\nx-a: &a\n" in text
    assert "entrypoint: *a" in text
    assert yaml.safe_load(text) == plain(data)
