"""labctl.runtime.context: DOCKER_HOST first, then DOCKER_CONTEXT or config.json's currentContext, then
the default socket. Context stores are made with the SDK's own writer (docker.context.ContextAPI) in
a temporary DOCKER_CONFIG; the engines are fake ones on UNIX sockets that answer /version, /_ping
and /info with their own DockerRootDir, so each test shows which one a client really reached."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import os
import shutil
import socketserver
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
from docker.context import ContextAPI

from labctl.runtime.context import DEFAULT_HOST, client_from_environment, engine_endpoint


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _FakeEngine

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = self.path.split("?", 1)[0]
        if path.endswith("/_ping"):
            self._send(b"OK", "text/plain")
        elif path.endswith("/version"):
            version = {"ApiVersion": "1.41", "MinAPIVersion": "1.12", "Version": "fake"}
            self._send(json.dumps(version).encode())
        elif path.endswith("/info"):
            self._send(json.dumps({"DockerRootDir": self.server.root}).encode())
        else:
            self.send_error(404)

    def _send(self, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass

    def address_string(self) -> str:
        return "unix"


class _FakeEngine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, root: str) -> None:
        self.root = root
        super().__init__(path, _Handler)


@contextlib.contextmanager
def _engine(directory: Path, root: str) -> Iterator[str]:
    path = str(directory / f"{root.strip('/').replace('/', '-')}.sock")
    srv = _FakeEngine(path, root)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"unix://{path}"
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="lc-ctx-", dir="/tmp"))  # UNIX socket paths: 107 bytes at most
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def env(short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean environment: no DOCKER_* variables, DOCKER_CONFIG an empty temporary directory with
    an empty config.json (ContextAPI writes its store beside the config.json it finds), HOME elsewhere
    so ~/.docker cannot leak in."""
    for var in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        monkeypatch.delenv(var, raising=False)
    config = short_dir / "config"
    config.mkdir()
    (config / "config.json").write_text("{}")
    home = short_dir / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    return config


def _root(client: docker.DockerClient) -> str:
    try:
        return str(client.info()["DockerRootDir"])
    finally:
        client.close()


def test_docker_host_wins_over_docker_context_and_current_context(env: Path, short_dir: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with _engine(short_dir, "/by-host") as by_host, _engine(short_dir, "/by-context") as by_ctx:
        ContextAPI.create_context("other", host=by_ctx)
        ContextAPI.set_current_context("other")
        monkeypatch.setenv("DOCKER_CONTEXT", "other")
        monkeypatch.setenv("DOCKER_HOST", by_host)
        assert engine_endpoint()["source"] == "DOCKER_HOST"
        assert _root(client_from_environment(timeout=5)) == "/by-host"


def test_docker_context_names_the_engine(env: Path, short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with _engine(short_dir, "/named") as named, _engine(short_dir, "/current") as current:
        ContextAPI.create_context("named", host=named)
        ContextAPI.create_context("current", host=current)
        ContextAPI.set_current_context("current")
        monkeypatch.setenv("DOCKER_CONTEXT", "named")
        ep = engine_endpoint()
        assert (ep["source"], ep["context"]) == ("context", "named")
        assert _root(client_from_environment(timeout=5)) == "/named"


def test_current_context_of_config_json(env: Path, short_dir: Path) -> None:
    with _engine(short_dir, "/current") as current:
        ContextAPI.create_context("current", host=current)
        ContextAPI.set_current_context("current")
        assert json.loads((env / "config.json").read_text())["currentContext"] == "current"
        assert engine_endpoint()["context"] == "current"
        assert _root(client_from_environment(timeout=5)) == "/current"


def test_environ_argument_is_read_instead_of_os_environ(env: Path, short_dir: Path) -> None:
    with _engine(short_dir, "/given") as given:
        assert _root(client_from_environment(timeout=5, environ={"DOCKER_HOST": given})) == "/given"


def test_nothing_set_is_the_default_socket(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert engine_endpoint() == {"source": "default", "base_url": DEFAULT_HOST}
    monkeypatch.setenv("DOCKER_CONTEXT", "default")
    assert engine_endpoint()["source"] == "default"
    monkeypatch.delenv("DOCKER_CONFIG")  # and no ~/.docker at all
    monkeypatch.delenv("DOCKER_CONTEXT")
    assert engine_endpoint()["source"] == "default"


def test_empty_docker_host_counts_as_unset(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "")
    assert engine_endpoint()["source"] == "default"


def test_store_without_config_json_is_read_where_the_cli_reads_it(env: Path, short_dir: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """DOCKER_CONFIG without a config.json: the CLI (and labctl) still read $DOCKER_CONFIG/contexts;
    the SDK would look in ~/.docker or ./contexts instead."""
    with _engine(short_dir, "/bare") as bare:
        ContextAPI.create_context("bare", host=bare)
        (env / "config.json").unlink()
        monkeypatch.setenv("DOCKER_CONTEXT", "bare")
        assert _root(client_from_environment(timeout=5)) == "/bare"


def test_unknown_context_is_a_docker_exception_naming_it(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONTEXT", "nowhere")
    with pytest.raises(docker.errors.ContextNotFound) as err:
        client_from_environment(timeout=5)
    assert "nowhere" in str(err.value)
    assert isinstance(err.value, docker.errors.DockerException)  # engine.connect() turns it into exit 1


def test_corrupt_meta_is_a_context_exception(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    meta = env / "contexts" / "meta" / hashlib.sha256(b"broken").hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text("{not json")
    monkeypatch.setenv("DOCKER_CONTEXT", "broken")
    with pytest.raises(docker.errors.ContextException):
        engine_endpoint()


def test_an_engine_that_does_not_answer_raises_docker_exception(env: Path, short_dir: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    ContextAPI.create_context("gone", host=f"unix://{short_dir}/none.sock")
    monkeypatch.setenv("DOCKER_CONTEXT", "gone")
    with pytest.raises(docker.errors.DockerException):
        client_from_environment(timeout=5)


def test_tls_material_of_a_tcp_context(env: Path, short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A CLI-style TLS store (ca.pem, cert.pem, key.pem) and SkipTLSVerify honoured; nothing is
    contacted (engine_endpoint only)."""
    name = "tls"
    ident = hashlib.sha256(name.encode()).hexdigest()
    meta = env / "contexts" / "meta" / ident
    meta.mkdir(parents=True)
    tls = env / "contexts" / "tls" / ident / "docker"
    tls.mkdir(parents=True)
    for f in ("ca.pem", "cert.pem", "key.pem"):
        (tls / f).write_text("x")
    endpoint = {"Host": "tcp://engine.example:2376", "SkipTLSVerify": False}
    doc = {"Name": name, "Metadata": {}, "Endpoints": {"docker": endpoint}}
    (meta / "meta.json").write_text(json.dumps(doc))
    monkeypatch.setenv("DOCKER_CONTEXT", name)
    ep = engine_endpoint()
    assert ep["base_url"] == "tcp://engine.example:2376"
    assert ep["tls"].cert == (str(tls / "cert.pem"), str(tls / "key.pem"))
    assert (ep["tls"].ca_cert, ep["tls"].verify) == (str(tls / "ca.pem"), True)
    endpoint["SkipTLSVerify"] = True
    (meta / "meta.json").write_text(json.dumps(doc))
    assert engine_endpoint()["tls"].verify is False


def test_ssh_engines_use_the_ssh_command_when_there_is_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from labctl.runtime import context

    monkeypatch.setattr(context.shutil, "which", lambda cmd: "/usr/bin/ssh" if cmd == "ssh" else None)
    assert context._use_ssh_client("ssh://me@engine") is True
    assert context._use_ssh_client("unix:///var/run/docker.sock") is False
    monkeypatch.setattr(context.shutil, "which", lambda cmd: None)
    assert context._use_ssh_client("ssh://me@engine") is False


def test_os_environ_untouched(env: Path) -> None:
    before = dict(os.environ)
    engine_endpoint()
    assert dict(os.environ) == before
