"""The lab's Docker images: base, node and client, tagged by a hash of what goes into them.

Three images, each built only when its tag is missing from the engine:

``labctl/base:<hash>``
    Debian bookworm. Made by pulling ``debian:bookworm-slim`` when a registry answers; otherwise (the
    usual case in a sealed lab) by running ``mmdebstrap --variant=minbase`` on this host and importing
    the tarball through the engine. Either way ``images/base/customize.sh`` adds the
    ``policy-rc.d`` that keeps package scripts from starting daemons during a build (G23).
``labctl/node:<hash>``
    ``images/node/Dockerfile`` on top of the base: heartbeat, resource-agents, Samba, FUSE, the
    ``ogfs`` package, the node's init and resource scripts.
``labctl/client:<hash>``
    ``images/client/Dockerfile``: smbclient and python3, a PID 1 that just waits.

The hash (12 hex digits) covers every input of the image and the base tag, so editing a resource
script or an ``ogfs`` module gives a new tag and the next ``ensure_images`` builds it, while an
unchanged tree builds nothing. Images carry the labels ``labctl.image=<kind>`` and
``labctl.inputs=<hash>``.

Only this package talks to Docker; see docs/images.md for what each image holds and why.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import queue
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import docker
import docker.errors

from labctl.errors import LabctlError

ImageKind = Literal["base", "node", "client"]
KINDS: tuple[ImageKind, ...] = ("base", "node", "client")

#: ``progress(kind, line)``: one line of build output (``Step 3/9 : RUN ...``, apt, mmdebstrap).
Progress = Callable[[str, str], None]

REPOSITORY_PREFIX = "labctl/"
LABEL_IMAGE = "labctl.image"
LABEL_INPUTS = "labctl.inputs"
LABEL_ORIGIN = "labctl.base.origin"

#: Bumped when the way images are assembled changes in a way the hashed files do not show.
_FORMAT = "1"

#: The upstream image tried first; a registry that answers saves the mmdebstrap run.
PULL_REPOSITORY = "debian"
PULL_TAG = "bookworm-slim"
#: Seconds to wait for the engine's first answer to the pull (a sealed engine fails in milliseconds;
#: an engine whose registry traffic is silently dropped would otherwise hang for minutes).
PULL_FIRST_ANSWER_TIMEOUT = 20.0

#: The mmdebstrap recipe for the base (part of the base hash). The Debian mirror comes from
#: ``LABCTL_DEBIAN_MIRROR`` (default deb.debian.org); it is not part of the hash.
BASE_RECIPE: dict[str, Any] = {
    "suite": "bookworm",
    "variant": "minbase",
    # netbase: /etc/services and /etc/protocols (heartbeat looks up "ha-cluster", samba its ports).
    # python3, procps, iproute2: every image needs them; in the base they are one shared layer.
    "include": ["netbase", "procps", "iproute2", "python3"],
    # No manuals, info pages, translations or docs (but keep licences): ~30 % smaller images.
    # mmdebstrap also writes these to /etc/dpkg/dpkg.cfg.d/ so later apt installs obey them.
    "dpkgopt": [
        "path-exclude=/usr/share/man/*",
        "path-exclude=/usr/share/info/*",
        "path-exclude=/usr/share/locale/*",
        "path-include=/usr/share/locale/locale.alias",
        "path-exclude=/usr/share/doc/*",
        "path-include=/usr/share/doc/*/copyright",
        "path-exclude=/usr/share/lintian/*",
    ],
    # mmdebstrap installs a temporary policy-rc.d of its own and, at the end, restores the state it
    # found (none), which would delete the one customize.sh writes. Skip its temporary one: nothing
    # in this package list has a service to start.
    "skip": ["chroot/policy-rc.d"],
    "components": ["main"],
    "sources": [
        ["{mirror}", "bookworm"],
        ["{mirror}", "bookworm-updates"],
        ["{security}", "bookworm-security"],
    ],
    "config": {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": ["bash"],
    },
}

_BUILD_TIMEOUT = 3600  # seconds without a byte from the engine before a build is declared dead
_TAIL_LINES = 40  # build lines quoted in an ImageBuildError
_TAR_MTIME = 946684800  # 2000-01-01: build contexts do not depend on checkout times
_IGNORED_NAMES = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis"}
_IGNORED_SUFFIXES = (".pyc", ".pyo", ".egg-info", ".swp", "~")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class ImageBuildError(LabctlError):
    """An image could not be built; ``lines`` holds the last lines of the build's output."""

    def __init__(self, kind: str, message: str, lines: Iterable[str] = ()) -> None:
        self.kind = kind
        self.lines: tuple[str, ...] = tuple(lines)
        text = f"building the {kind} image failed: {message}"
        if self.lines:
            text += "\nlast lines of the build:\n  " + "\n  ".join(self.lines)
        super().__init__(text)


# --------------------------------------------------------------------------- where the inputs are


def assets_root() -> Path:
    """The directory that holds ``images/`` (and, in a source checkout, ``ogfs/``).

    ``LABCTL_ASSETS`` wins when set. Otherwise the parent of the ``labctl`` package: the repository in
    a source checkout or an editable install (``pip install -e .``). Otherwise, for a plain
    ``pip install .``, ``<prefix>/share/labctl`` where pyproject's data-files put ``images/``; the
    node image then takes ``ogfs/`` from the installed ``ogfs`` package (``ogfs_source``).
    """
    import labctl
    from labctl.topology.load import installed_data_dir

    candidates: list[Path] = []
    env = os.environ.get("LABCTL_ASSETS")
    if env:
        candidates.append(Path(env).expanduser())
    candidates.append(Path(labctl.__file__).resolve().parent.parent)
    data = installed_data_dir()
    if data is not None:
        candidates.append(data)
    for root in candidates:
        if (root / "images" / "node" / "Dockerfile").is_file() and ogfs_source(root) is not None:
            return root
    raise LabctlError(
        "cannot find the image sources (images/node/Dockerfile and ogfs/) in "
        + ", ".join(str(c) for c in candidates)
        + ": reinstall labctl (pip install .), run it from a source checkout, "
        "or point LABCTL_ASSETS at the repository"
    )


def ogfs_source(root: Path) -> Path | None:
    """The ``ogfs`` package the node image gets: ``<root>/ogfs`` (a source checkout), else the
    installed package (located, never imported: labctl does not import ogfs)."""
    local = root / "ogfs"
    if (local / "__init__.py").is_file():
        return local
    import importlib.util

    spec = importlib.util.find_spec("ogfs")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location)
        if (path / "__init__.py").is_file():
            return path
    return None


def _ignored(rel: Path) -> bool:
    return any(part in _IGNORED_NAMES or part.endswith(_IGNORED_SUFFIXES) for part in rel.parts)


def _walk(top: Path) -> Iterator[Path]:
    """Files and symlinks under ``top``, sorted, caches left out."""
    for path in sorted(top.rglob("*")):
        rel = path.relative_to(top)
        if _ignored(rel):
            continue
        if path.is_symlink() or path.is_file():
            yield path


@dataclass(frozen=True)
class _Entry:
    """One file of a build context: where it goes in the tar and what it is."""

    arcname: str
    source: Path

    @property
    def is_link(self) -> bool:
        return self.source.is_symlink()

    @property
    def mode(self) -> int:
        if self.is_link:
            return 0o777
        return 0o755 if self.source.stat().st_mode & 0o111 else 0o644

    def payload(self) -> bytes:
        if self.is_link:
            return os.readlink(self.source).encode()
        return self.source.read_bytes()


def _entries(kind: ImageKind, root: Path) -> list[_Entry]:
    """The files that make up an image's build context (and its hash)."""
    out: list[_Entry] = []
    if kind == "base":
        script = root / "images" / "base" / "customize.sh"
        out.append(_Entry("customize.sh", script))
        return out
    image_dir = root / "images" / kind
    out.append(_Entry("Dockerfile", image_dir / "Dockerfile"))
    rootfs = image_dir / "rootfs"
    if rootfs.is_dir():
        out += [_Entry("rootfs/" + p.relative_to(rootfs).as_posix(), p) for p in _walk(rootfs)]
    if kind == "node":
        ogfs = ogfs_source(root) or root / "ogfs"
        out += [_Entry("ogfs/" + p.relative_to(ogfs).as_posix(), p) for p in _walk(ogfs)]
    return out


def _inputs_hash(kind: ImageKind, root: Path, base_tag: str | None) -> str:
    h = hashlib.sha256()

    def field(data: bytes) -> None:
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)

    field(f"labctl-image {_FORMAT} {kind}".encode())
    if kind == "base":
        field(json.dumps(BASE_RECIPE, sort_keys=True).encode())
    else:
        field((base_tag or "").encode())
    for entry in _entries(kind, root):
        field(entry.arcname.encode())
        field(b"L" if entry.is_link else b"%o" % entry.mode)
        field(entry.payload())
    return h.hexdigest()[:12]


@dataclass(frozen=True)
class ImageSet:
    """The tags the current sources call for: ``labctl/<kind>:<inputs hash>``."""

    base: str
    node: str
    client: str

    @classmethod
    def compute(cls, root: Path | None = None) -> ImageSet:
        root = root or assets_root()
        base = f"{REPOSITORY_PREFIX}base:{_inputs_hash('base', root, None)}"
        node = f"{REPOSITORY_PREFIX}node:{_inputs_hash('node', root, base)}"
        client = f"{REPOSITORY_PREFIX}client:{_inputs_hash('client', root, base)}"
        return cls(base=base, node=node, client=client)

    def tag(self, kind: ImageKind) -> str:
        return cast(str, getattr(self, kind))

    def as_dict(self) -> dict[ImageKind, str]:
        return {kind: self.tag(kind) for kind in KINDS}


def image_tag(kind: ImageKind, root: Path | None = None) -> str:
    """``labctl/<kind>:<12 hex>`` for the current sources (no engine needed)."""
    if kind not in KINDS:
        raise LabctlError(f"unknown image kind {kind!r} (known: {', '.join(KINDS)})")
    return ImageSet.compute(root).tag(kind)


def build_context(kind: ImageKind, root: Path | None = None) -> bytes:
    """The build context of ``kind`` as an uncompressed tar: ``Dockerfile``, ``rootfs/`` and, for the
    node, the repository's ``ogfs/``. Normalised (owner root, fixed mtime, modes 0755/0644) so that
    the image does not depend on the checkout's umask or clock."""
    root = root or assets_root()
    buf = io.BytesIO()
    dirs: set[str] = set()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in _entries(kind, root):
            parts = entry.arcname.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type = tarfile.DIRTYPE
                    info.mode, info.mtime = 0o755, _TAR_MTIME
                    tar.addfile(info)
            info = tarfile.TarInfo(entry.arcname)
            info.mode, info.mtime = entry.mode, _TAR_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if entry.is_link:
                info.type = tarfile.SYMTYPE
                info.linkname = entry.payload().decode()
                tar.addfile(info)
            else:
                data = entry.payload()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# --------------------------------------------------------------------------- building


class _Lines:
    """Splits streamed chunks into lines, forwards them to ``progress`` and keeps the tail."""

    def __init__(self, kind: str, progress: Progress | None) -> None:
        self.kind = kind
        self.progress = progress
        self.tail: deque[str] = deque(maxlen=_TAIL_LINES)
        self._partial = ""

    def feed(self, chunk: str) -> None:
        text = self._partial + _ANSI.sub("", chunk).replace("\r\n", "\n").replace("\r", "\n")
        *lines, self._partial = text.split("\n")
        for line in lines:
            self._emit(line)

    def close(self) -> None:
        if self._partial:
            self._emit(self._partial)
            self._partial = ""

    def _emit(self, line: str) -> None:
        line = line.rstrip()
        if not line:
            return
        self.tail.append(line)
        if self.progress is not None:
            self.progress(self.kind, line)


def _image_exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """One builder at a time on this host: two ``labctl up`` started together must not both run
    mmdebstrap on a 2-core machine. The second waits, then finds the images present."""
    path = Path(tempfile.gettempdir()) / f"labctl-images-{os.getuid()}.lock"
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _docker_build(
    client: docker.DockerClient,
    kind: ImageKind,
    context: bytes,
    tag: str,
    inputs: str,
    progress: Progress | None,
    *,
    no_cache: bool = False,
    buildargs: dict[str, str] | None = None,
    extra_labels: dict[str, str] | None = None,
) -> str:
    """``docker build`` from an in-memory context, streaming its output; returns the image id."""
    out = _Lines(kind, progress)
    labels = {LABEL_IMAGE: kind, LABEL_INPUTS: inputs, **(extra_labels or {})}
    image_id: str | None = None
    try:
        stream = client.api.build(
            fileobj=io.BytesIO(context),
            custom_context=True,
            tag=tag,
            buildargs=buildargs or {},
            labels=labels,
            nocache=no_cache,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
            timeout=_BUILD_TIMEOUT,
        )
        for event in stream:
            if "stream" in event:
                out.feed(str(event["stream"]))
            elif "error" in event:
                out.feed(str(event["error"]) + "\n")
                out.close()
                raise ImageBuildError(kind, str(event["error"]).strip(), out.tail)
            elif "aux" in event and isinstance(event["aux"], dict) and "ID" in event["aux"]:
                image_id = str(event["aux"]["ID"])
            elif "status" in event:
                out.feed(str(event["status"]) + "\n")
    except docker.errors.APIError as exc:
        out.close()
        raise ImageBuildError(kind, str(exc), out.tail) from exc
    except OSError as exc:  # the engine went away or the stream timed out
        out.close()
        raise ImageBuildError(kind, f"lost the Docker engine: {exc}", out.tail) from exc
    out.close()
    if not _image_exists(client, tag):
        raise ImageBuildError(kind, f"the build ended but {tag} does not exist", out.tail)
    return image_id or str(client.images.get(tag).id)


def _pull_upstream(client: docker.DockerClient, progress: Progress | None) -> bool:
    """Try ``docker pull debian:bookworm-slim``. False (quickly) when no registry answers.

    The SDK's pull has no timeout of its own, so it runs in a thread and only the engine's *first*
    answer is awaited with a short timeout; once the registry has answered the pull may take as long
    as the download needs."""
    events: queue.Queue[Any] = queue.Queue()
    done = object()

    def worker() -> None:
        try:
            for ev in client.api.pull(PULL_REPOSITORY, tag=PULL_TAG, stream=True, decode=True):
                events.put(ev)
            events.put(done)
        except Exception as exc:  # noqa: BLE001 - handed to the waiting thread
            events.put(exc)

    threading.Thread(target=worker, name="labctl-pull", daemon=True).start()
    say = (lambda line: progress("base", line)) if progress else (lambda line: None)
    say(f"trying docker pull {PULL_REPOSITORY}:{PULL_TAG}")
    first = True
    while True:
        try:
            ev = events.get(timeout=PULL_FIRST_ANSWER_TIMEOUT if first else None)
        except queue.Empty:
            say(f"no answer from a registry in {PULL_FIRST_ANSWER_TIMEOUT:.0f} s")
            return False
        first = False
        if ev is done:
            return _image_exists(client, f"{PULL_REPOSITORY}:{PULL_TAG}")
        if isinstance(ev, Exception):
            say(f"pull failed: {str(ev).strip().splitlines()[0] if str(ev).strip() else type(ev).__name__}")
            return False
        if isinstance(ev, dict):
            if "error" in ev:
                say(f"pull failed: {ev['error']}")
                return False
            if "status" in ev and "progress" not in ev:
                say(f"{ev.get('id', '')} {ev['status']}".strip())


def _mmdebstrap_argv(customize: Path, tarball: Path) -> list[str]:
    mirror = os.environ.get("LABCTL_DEBIAN_MIRROR", "http://deb.debian.org/debian").rstrip("/")
    security = os.environ.get("LABCTL_DEBIAN_SECURITY_MIRROR", "http://deb.debian.org/debian-security")
    r = BASE_RECIPE
    argv = [
        "mmdebstrap",
        f"--variant={r['variant']}",
        "--include=" + ",".join(r["include"]),
        "--components=" + ",".join(r["components"]),
        "--format=tar",
    ]
    argv += [f"--dpkgopt={opt}" for opt in r["dpkgopt"]]
    argv += [f"--skip={what}" for what in r["skip"]]
    argv.append(f'--customize-hook=sh {customize} "$1"')
    argv += [r["suite"], str(tarball)]
    for uri, suite in r["sources"]:
        uri = uri.format(mirror=mirror, security=security.rstrip("/"))
        argv.append(f"deb {uri} {suite} " + " ".join(r["components"]))
    return argv


def _make_base_with_mmdebstrap(
    client: docker.DockerClient, root: Path, tag: str, inputs: str, progress: Progress | None
) -> None:
    """``mmdebstrap`` a bookworm minbase on this host, then import it through the engine."""
    out = _Lines("base", progress)
    if shutil.which("mmdebstrap") is None:
        raise ImageBuildError(
            "base",
            f"no base image: pulling {PULL_REPOSITORY}:{PULL_TAG} failed and mmdebstrap is not "
            "installed on this host (apt-get install mmdebstrap, or make a registry reachable)",
        )
    repository, _, image_tag_ = tag.partition(":")
    with tempfile.TemporaryDirectory(prefix="labctl-base-") as tmp:
        tarball = Path(tmp) / "base.tar"
        argv = _mmdebstrap_argv(root / "images" / "base" / "customize.sh", tarball)
        out.feed("$ " + " ".join(argv) + "\n")
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,  # mmdebstrap reads mirrors from a non-tty stdin
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
            )
        except OSError as exc:
            raise ImageBuildError("base", f"cannot run mmdebstrap: {exc}") from exc
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                out.feed(line)
        finally:
            rc = proc.wait()
        out.close()
        if rc != 0 or not tarball.is_file():
            raise ImageBuildError("base", f"mmdebstrap exited with status {rc}", out.tail)
        config = cast(dict[str, list[str]], BASE_RECIPE["config"])
        changes = [f"ENV {env}" for env in config["Env"]]
        changes.append("CMD " + json.dumps(config["Cmd"]))
        changes += [
            f"LABEL {LABEL_IMAGE}=base",
            f"LABEL {LABEL_INPUTS}={inputs}",
            f"LABEL {LABEL_ORIGIN}=mmdebstrap",
        ]
        out.feed(f"importing {tarball.stat().st_size // (1 << 20)} MiB as {tag}\n")
        try:
            result = client.api.import_image_from_file(
                str(tarball), repository=repository, tag=image_tag_, changes=changes
            )
        except docker.errors.APIError as exc:
            raise ImageBuildError("base", f"docker import failed: {exc}", out.tail) from exc
        out.feed(f"{str(result).strip()}\n")
        out.close()
    if not _image_exists(client, tag):
        raise ImageBuildError("base", f"the import ended but {tag} does not exist", out.tail)


def _make_base_from_pull(
    client: docker.DockerClient, root: Path, tag: str, inputs: str, progress: Progress | None
) -> None:
    """Derive the base from the pulled ``debian:bookworm-slim``: the same customize.sh, our labels."""
    dockerfile = (
        f"FROM {PULL_REPOSITORY}:{PULL_TAG}\n"
        "COPY customize.sh /tmp/labctl-customize.sh\n"
        "RUN sh /tmp/labctl-customize.sh / && rm /tmp/labctl-customize.sh\n"
    )
    buf = io.BytesIO(build_context("base", root))
    with tarfile.open(fileobj=buf, mode="a") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size, info.mode, info.mtime = len(data), 0o644, _TAR_MTIME
        tar.addfile(info, io.BytesIO(data))
    _docker_build(client, "base", buf.getvalue(), tag, inputs, progress, extra_labels={LABEL_ORIGIN: "pull"})


def ensure_images(
    client: docker.DockerClient,
    progress: Progress | None = None,
    no_cache: bool = False,
    root: Path | None = None,
) -> dict[ImageKind, str]:
    """Make sure the base, node and client images for the current sources exist; build what is
    missing. Returns ``{kind: tag}``.

    ``progress(kind, line)`` receives every line of build output as it arrives (Docker's
    ``Step N/M : ...`` lines, apt's and mmdebstrap's output); ``ensure_images`` itself prints
    nothing. ``no_cache=True`` rebuilds the node and client images without Docker's layer cache
    even when their tags exist (fresh Debian packages); the base is made only when missing.
    Raises :class:`ImageBuildError` (a ``LabctlError``) quoting the last build lines on failure.
    """
    root = root or assets_root()
    wanted = ImageSet.compute(root)
    say = (lambda kind, line: progress(kind, line)) if progress else (lambda kind, line: None)
    with _build_lock():
        for kind in KINDS:
            tag = wanted.tag(kind)
            inputs = tag.rpartition(":")[2]
            present = _image_exists(client, tag)
            if present and not (no_cache and kind != "base"):
                continue
            started = time.monotonic()
            say(kind, f"building {tag}")
            if kind == "base":
                if _pull_upstream(client, progress):
                    _make_base_from_pull(client, root, tag, inputs, progress)
                else:
                    _make_base_with_mmdebstrap(client, root, tag, inputs, progress)
            else:
                _docker_build(
                    client,
                    kind,
                    build_context(kind, root),
                    tag,
                    inputs,
                    progress,
                    no_cache=no_cache,
                    buildargs={"BASE": wanted.base},
                )
            say(kind, f"built {tag} in {time.monotonic() - started:.0f} s")
    return wanted.as_dict()


def missing_images(client: docker.DockerClient, root: Path | None = None) -> list[str]:
    """Tags the current sources call for that the engine does not have (nothing is built)."""
    return [tag for tag in ImageSet.compute(root).as_dict().values() if not _image_exists(client, tag)]


def remove_stale_images(client: docker.DockerClient, root: Path | None = None) -> list[str]:
    """Untag ``labctl/*`` images whose inputs no longer match the sources (every ``ogfs/`` edit makes
    a new node tag). Images a container still uses are kept. Returns the tags removed."""
    current = set(ImageSet.compute(root).as_dict().values())
    removed: list[str] = []
    for image in client.images.list(filters={"label": LABEL_IMAGE}):
        for tag in image.tags:
            if tag.startswith(REPOSITORY_PREFIX) and tag not in current:
                try:
                    client.images.remove(tag, noprune=False)
                except docker.errors.APIError:
                    continue  # in use by a container: keep it
                removed.append(tag)
    return removed
