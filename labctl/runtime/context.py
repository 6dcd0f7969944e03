"""Which Docker engine labctl talks to: ``DOCKER_HOST``, else a docker context, else the default socket.

The order is the docker CLI's (``cli/command/cli.go``, resolveContextName), without its flags:

1. ``DOCKER_HOST`` (with ``DOCKER_TLS_VERIFY`` / ``DOCKER_CERT_PATH``), read by ``docker.from_env``;
2. the context ``DOCKER_CONTEXT`` names, else the ``currentContext`` of ``config.json`` in
   ``DOCKER_CONFIG`` (default ``~/.docker``); ``default`` is the default socket;
3. the default socket (``unix:///var/run/docker.sock``).

The context store is read here rather than through ``docker.context.ContextAPI``: the SDK looks for
it beside the first ``config.json`` it finds, so with ``DOCKER_CONFIG`` set to a directory that has
no ``config.json`` it reads ``~/.docker/contexts`` (or ``./contexts``) where the CLI reads
``$DOCKER_CONFIG/contexts``; and ``docker.from_env`` consults contexts only from docker-py 7.2 on.
The layout is the CLI's, which ContextAPI also writes:
``contexts/meta/<sha256(name)>/meta.json`` (``Endpoints.docker.Host``, ``SkipTLSVerify``) and
``contexts/tls/<sha256(name)>/docker/{ca,cert,key}.pem``.

``ssh://`` engines (from either source) go through the ``ssh`` command when it is on PATH, as the
CLI does (``~/.ssh/config``, agents and jump hosts apply; the far side needs the docker CLI for
``docker system dial-stdio``), else through paramiko if it is installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.tls import TLSConfig

__all__ = ["client_from_environment", "engine_endpoint", "engine_socket_path"]

DEFAULT_HOST = "unix:///var/run/docker.sock"
DEFAULT_SOCKET = "/var/run/docker.sock"


def client_from_environment(timeout: int, environ: Mapping[str, str] | None = None) -> docker.DockerClient:
    """A client for the engine the environment names (module docstring). Not pinged: the SDK asks
    the engine's API version as the client is made, so an engine that does not answer raises
    ``docker.errors.DockerException`` here; so do an unknown or unreadable context
    (``ContextNotFound``, ``ContextException``)."""
    env = os.environ if environ is None else environ
    endpoint = engine_endpoint(env)
    ssh = _use_ssh_client(str(endpoint.get("base_url", "")))
    if endpoint["source"] == "DOCKER_HOST":
        return docker.from_env(timeout=timeout, environment=dict(env), use_ssh_client=ssh)
    kwargs = {k: v for k, v in endpoint.items() if k in ("base_url", "tls")}
    return docker.DockerClient(timeout=timeout, use_ssh_client=ssh, **kwargs)


def engine_endpoint(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What :func:`client_from_environment` connects to, without connecting: ``{"source": ...,
    "base_url": ..., "tls": TLSConfig (contexts with TLS material only), "context": name}``.
    ``source`` is ``DOCKER_HOST``, ``context`` or ``default``."""
    env = os.environ if environ is None else environ
    if env.get("DOCKER_HOST"):
        return {"source": "DOCKER_HOST", "base_url": env["DOCKER_HOST"]}
    config_dir = Path(env.get("DOCKER_CONFIG") or Path.home() / ".docker")
    name = env.get("DOCKER_CONTEXT") or _current_context(config_dir)
    if not name or name == "default":
        return {"source": "default", "base_url": DEFAULT_HOST}
    return {"source": "context", "context": name, **_context_endpoint(config_dir, name)}


def _current_context(config_dir: Path) -> str | None:
    try:
        config = json.loads((config_dir / "config.json").read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise docker.errors.ContextException(f"cannot read {config_dir / 'config.json'}: {exc}") from None
    current = config.get("currentContext") if isinstance(config, dict) else None
    return str(current) if current else None


def _context_endpoint(config_dir: Path, name: str) -> dict[str, Any]:
    ident = hashlib.sha256(name.encode()).hexdigest()
    meta_file = config_dir / "contexts" / "meta" / ident / "meta.json"
    try:
        meta = json.loads(meta_file.read_text())
    except FileNotFoundError:
        raise docker.errors.ContextNotFound(name) from None
    except (OSError, ValueError) as exc:
        raise docker.errors.ContextException(f"context {name!r}: cannot read {meta_file}: {exc}") from None
    docker_ep = ((meta.get("Endpoints") or {}).get("docker") or {}) if isinstance(meta, dict) else {}
    host = docker_ep.get("Host")
    if not host:
        raise docker.errors.ContextException(f"context {name!r} has no docker endpoint ({meta_file})")
    out: dict[str, Any] = {"base_url": str(host)}
    tls = _context_tls(config_dir / "contexts" / "tls" / ident / "docker",
                       verify=not bool(docker_ep.get("SkipTLSVerify", False)))
    if tls is not None:
        out["tls"] = tls
    elif str(host).startswith("https://"):
        out["tls"] = True
    return out


def _context_tls(tls_dir: Path, verify: bool) -> TLSConfig | None:
    """The CLI writes ca.pem, cert.pem, key.pem; ContextAPI keeps the files' own names (matched by
    prefix, as the SDK's reader does)."""
    if not tls_dir.is_dir():
        return None
    found: dict[str, str] = {}
    for entry in sorted(tls_dir.iterdir()):
        for kind in ("ca", "cert", "key"):
            if entry.name.startswith(kind) and entry.is_file():
                found.setdefault(kind, str(entry))
    if not found:
        return None
    client_cert = (found["cert"], found["key"]) if "cert" in found and "key" in found else None
    return TLSConfig(client_cert=client_cert, ca_cert=found.get("ca"), verify=verify)


def _use_ssh_client(base_url: str) -> bool:
    return base_url.startswith("ssh://") and shutil.which("ssh") is not None


def engine_socket_path(environ: Mapping[str, str] | None = None) -> str:
    """The engine's API socket *on the engine's own host*, for the one container that needs it
    (the power switch): the path of a ``unix://`` endpoint; for a remote engine (``ssh://``,
    ``tcp://``) ``LABCTL_ENGINE_SOCKET`` if set, else Docker's default, which the remote end
    almost always uses."""
    env = os.environ if environ is None else environ
    url = str(engine_endpoint(env).get("base_url", ""))
    if url.startswith("unix://"):
        return url[len("unix://"):]
    return env.get("LABCTL_ENGINE_SOCKET") or DEFAULT_SOCKET
