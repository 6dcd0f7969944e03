"""The CLI without an engine: help that teaches, render, and the bad-input list (exit 2, the message,
and no Docker call at all: nothing can have been created)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from labctl import cli
from labctl.runtime import images
from labctl.runtime import lab as runtime_lab

ROOT = Path(__file__).resolve().parents[2]
BAD = ROOT / "tests" / "unit" / "bad_topologies"
VERBS = ["up", "status", "fail", "shutdown", "recover", "logs", "exec", "shell", "render", "build", "down"]


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Any attempt to reach Docker or build an image is recorded and fails the command."""
    calls: list[str] = []

    def refuse(*_a: object, **_k: object) -> None:
        calls.append("engine")
        raise AssertionError("the engine must not be contacted for bad input")

    monkeypatch.setattr(runtime_lab, "connect", refuse)
    monkeypatch.setattr(images, "ensure_images", refuse)
    return calls


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- help


def test_help_lists_every_verb_and_a_session(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for verb in VERBS:
        assert f"    {verb}" in out, verb
    assert "labctl up two-node" in out and "labctl fail fred" in out and "Exit codes" in out


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help_with_a_description(capsys: pytest.CaptureFixture[str], verb: str) -> None:
    code, out, _ = run(capsys, verb, "--help")
    assert code == 0
    assert f"usage: labctl {verb}" in out
    assert len(out.splitlines()) >= 6, out


def test_status_help_names_the_json_keys(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "status", "--help")
    for key in ("nodes[].name", ".links[].peer", "resources[].name", ".holders", "share.serving"):
        assert key in out


# --------------------------------------------------------------------------- render


def test_render_writes_every_host_and_keeps_authkeys_private(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, no_engine: list[str]
) -> None:
    code, out, _ = run(capsys, "render", "two-node", "--out", str(tmp_path / "r"), "--json")
    assert code == 0, out
    files = json.loads(out)["files"]
    # per node: 6 configuration files, the lab interface's program, config and hook, the serial end
    # and its hook; the client: hosts, smb.conf, the lab interface's program and config; the cable's
    # relay; the disk helper's ogfscf.cf and format script; plan.json
    assert len(files) == 2 * 11 + 4 + 1 + 2 + 1
    plan = json.loads((tmp_path / "r" / "plan.json").read_text())
    assert [c["host"] for c in plan["containers"]] == ["cable", "fred", "barney", "client"]
    for host in ("fred", "barney", "client"):
        assert (tmp_path / "r" / host / "etc" / "hosts").is_file()
    keys = tmp_path / "r" / "fred" / "etc" / "ha.d" / "authkeys"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    hares = (tmp_path / "r" / "barney" / "etc" / "ha.d" / "haresources").read_text()
    assert "fred 192.168.1.100 memexpd Filesystem::/dev/sda3::/ogfs::ogfs::hostdata=192.168.1.2 smb" in hares
    assert no_engine == []


def test_render_fast_profile(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, _ = run(capsys, "render", "two-node", "--profile", "fast", "--out", str(tmp_path))
    assert code == 0
    assert "deadtime 1000ms" in (tmp_path / "fred" / "etc" / "ha.d" / "ha.cf").read_text()


# --------------------------------------------------------------------------- bad input: exit 2, no engine


def _expectation(path: Path) -> tuple[str, str]:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), path
    key, _, text = first.removeprefix("# expect: ").partition(" | ")
    return key, text


@pytest.mark.parametrize("path", sorted(BAD.glob("*.yaml")), ids=lambda p: p.stem)
def test_up_refuses_each_bad_topology(
    capsys: pytest.CaptureFixture[str], no_engine: list[str], path: Path
) -> None:
    key, text = _expectation(path)
    code, out, err = run(capsys, "up", str(path))
    assert code == 2, err
    assert str(path) in err and text in err, err
    if not key[0].isdigit() and key != "(top level)":
        assert key in err
    assert no_engine == [] and out == ""


BAD_ARGS = [
    (["up", "no-such-topology"], "no-such-topology: no topology of that name"),
    (["up", "two-nod"], "did you mean 'two-node'?"),
    (["up", "two-node", "--lab", "Bad_Name"], "--lab 'Bad_Name': a lab name uses lower-case letters"),
    (["up", "two-node", "--lab", "x" * 41], "a lab name is at most 40 characters"),
    (["up", "two-node", "--profile", "warp"], "warp"),
    (["up", "two-node", "--lockproto", "dlm"], "invalid choice: 'dlm'"),
    (["up", "two-node", "--timeout", "soon"], "invalid float value: 'soon'"),
    (["up"], "the following arguments are required: topology"),
    (["render", "two-node"], "the following arguments are required: --out"),
    (["logs", "fred", "--what", "kernel"], "invalid choice: 'kernel'"),
    (["exec", "fred"], "exec: no command given"),
    (["exec", "fred", "--"], "exec: no command given"),
    (["down", "--lab", "UPPER"], "--lab 'UPPER': a lab name uses lower-case letters"),
    (["reboot", "fred"], "invalid choice: 'reboot'"),
    ([], "the following arguments are required: COMMAND"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_ARGS,
                         ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_arguments_exit_2_with_their_message(
    capsys: pytest.CaptureFixture[str], no_engine: list[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    assert message in " ".join(err.split()), err
    assert no_engine == []


def test_bad_topology_reports_every_problem_at_once(
    capsys: pytest.CaptureFixture[str], no_engine: list[str], tmp_path: Path
) -> None:
    text = (ROOT / "topologies" / "two-node.yaml").read_text()
    text = text.replace("ip: 192.168.1.2,", "ip: 192.168.7.2,").replace("baud: 19200", "baud: 14400")
    bad = tmp_path / "lab.yaml"
    bad.write_text(text)
    code, _, err = run(capsys, "up", str(bad))
    assert code == 2
    assert "nodes[1].ip: 192.168.7.2 is outside subnet 192.168.1.0/24" in err
    assert "serial[0].baud" in err and "14400" in err
    assert no_engine == []
