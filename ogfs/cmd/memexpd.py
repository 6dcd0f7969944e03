"""memexpd: the ogfs lock server (a heartbeat resource, on the cluster IP).

    memexpd [-c /etc/ogfscf.cf | -d CIDEV] [-f] [--listen IP] [--port N]
            [--pidfile /run/memexpd.pid] [--log /var/log/memexpd.log] [--grace SECONDS]

It reads the lock device address, the node timeout, the callback port, the node table and the
STOMITH methods from the cidev (with -c: the cidev named by the config file's `cidev:` key) and
listens on lockdev (the cluster IP, which heartbeat adds just before it starts memexpd: while
that address is not local yet memexpd retries for a few seconds, then gives up with exit 1).
Without -f it becomes a daemon and returns once it listens (exit 0) or has failed (exit 1, the
reason on stderr); its log and any output go to --log.  SIGTERM stops it cleanly.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import Any

DEFAULT_CONFIG = "/etc/ogfscf.cf"
DEFAULT_PIDFILE = "/run/memexpd.pid"
DEFAULT_LOG = "/var/log/memexpd.log"
BIND_WAIT = 10.0  # seconds to wait for the lockdev address to become local

log = logging.getLogger("memexpd")


class StartError(Exception):
    pass


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = "warning: " if record.levelno == logging.WARNING else (
            "error: " if record.levelno >= logging.ERROR else "")
        record.prefixed = prefix + record.getMessage()
        return super().format(record)


def setup_logging(stream: Any | None, path: str | None, debug: bool) -> None:
    handler: logging.Handler
    if path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        handler = logging.FileHandler(path)
    else:
        handler = logging.StreamHandler(stream)
    handler.setFormatter(_Formatter("%(asctime)s memexpd[%(process)d]: %(prefixed)s", "%Y-%m-%d %H:%M:%S"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if debug else logging.INFO)
    log.propagate = False


def load_config(config_path: str | None, cidev_path: str | None) -> tuple[Any, str]:
    """The cluster config stored on the cidev (-d, or the `cidev:` of the config file), and
    the cidev's path."""
    from .. import cidev, config
    if cidev_path is None:
        path = config_path or DEFAULT_CONFIG
        try:
            with open(path) as f:
                text = f.read()
        except OSError as e:
            raise StartError(f"{path}: {e.strerror}") from None
        try:
            cidev_path = config.parse(text, source=path).cidev
        except config.ConfigError as e:
            raise StartError(str(e)) from None
    try:
        return cidev.read_config(cidev_path), cidev_path
    except cidev.CidevError as e:
        raise StartError(str(e)) from None


def check_pidfile(path: str) -> None:
    try:
        with open(path) as f:
            pid = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return  # stale
    if b"memexpd" in cmdline and pid != os.getpid():
        raise StartError(f"memexpd is already running (pid {pid}, {path})")


def write_pidfile(path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(tmp, path)


def remove_pidfile(path: str) -> None:
    try:
        with open(path) as f:
            if f.read().strip() != str(os.getpid()):
                return
        os.unlink(path)
    except OSError:
        pass


def daemonize(logpath: str) -> int:
    """Double fork.  The original process waits for the daemon's word on a pipe and exits with
    it; the daemon gets the pipe's write end (write "OK" or the reason it failed)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid > 0:
        os.close(w)
        chunks = []
        while chunk := os.read(r, 4096):
            chunks.append(chunk)
        os.waitpid(pid, 0)
        word = b"".join(chunks).decode(errors="replace").strip()
        if word == "OK":
            os._exit(0)
        print(f"memexpd: {word or f'the daemon died while starting; see {logpath}'}", file=sys.stderr)
        os._exit(1)
    os.close(r)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    os.umask(0o022)
    os.makedirs(os.path.dirname(os.path.abspath(logpath)), exist_ok=True)
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(logpath, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(null)
    os.close(out)
    return w


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="memexpd", formatter_class=argparse.RawDescriptionHelpFormatter,
                                 description=(__doc__ or "").split("\n", 2)[2])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("-c", dest="config", metavar="CONFIG",
                     help=f"cluster config file; its cidev: is read (default {DEFAULT_CONFIG})")
    src.add_argument("-d", dest="cidev", metavar="CIDEV", help="read the cluster information device directly")
    ap.add_argument("-f", dest="foreground", action="store_true", help="stay in the foreground")
    ap.add_argument("--listen", metavar="IP", help="listen on this address instead of lockdev's")
    ap.add_argument("--port", type=int, help="listen on this port instead of lockdev's")
    ap.add_argument("--pidfile", default=DEFAULT_PIDFILE, help=f"default {DEFAULT_PIDFILE}")
    ap.add_argument("--log", metavar="FILE",
                    help=f"log file (default {DEFAULT_LOG}; with -f: standard error unless given)")
    ap.add_argument("--grace", type=float, metavar="SECONDS",
                    help="grace period for reclaims after the start (default: the cidev timeout)")
    ap.add_argument("--bind-wait", type=float, default=BIND_WAIT, metavar="SECONDS",
                    help=f"how long to wait for the listen address to become local (default {BIND_WAIT:g})")
    ap.add_argument("--debug", action="store_true", help="log every message")
    a = ap.parse_args(argv)

    try:
        cfg, cidev_path = load_config(a.config, a.cidev)
        check_pidfile(a.pidfile)
    except StartError as e:
        print(f"memexpd: {e}", file=sys.stderr)
        return 1
    if a.grace is not None and a.grace < 0:
        print("memexpd: --grace must not be negative", file=sys.stderr)
        return 1
    ip = a.listen or cfg.lockdev_ip
    port = a.port or cfg.lockdev_port

    ready_fd: int | None = None
    if a.foreground:
        setup_logging(sys.stderr, a.log, a.debug)
    else:
        logpath = a.log or DEFAULT_LOG
        try:
            ready_fd = daemonize(logpath)
        except OSError as e:
            print(f"memexpd: cannot become a daemon: {e}", file=sys.stderr)
            return 1
        setup_logging(None, logpath, a.debug)

    def ready(word: str) -> None:
        nonlocal ready_fd
        if ready_fd is not None:
            os.write(ready_fd, word.encode())
            os.close(ready_fd)
            ready_fd = None

    import trio

    from ..memexp.server import BindError, MemexpServer, open_listeners

    async def run() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            listeners = await open_listeners(ip, port, a.bind_wait)
            server = MemexpServer(cfg, grace=a.grace, lockdev=f"{ip}:{port}", cidev=cidev_path)
            async with trio.open_nursery() as nursery:
                await nursery.start(server.serve, listeners)
                write_pidfile(a.pidfile)
                ready("OK")
                async for sig in signals:
                    if sig == signal.SIGHUP:
                        log.info("SIGHUP ignored (the configuration is read at start only)")
                        continue
                    log.info("%s: stopping (epoch %d)", signal.Signals(sig).name, server.epoch)
                    nursery.cancel_scope.cancel()
                    break

    code = 0
    try:
        trio.run(run)
    except BindError as e:
        log.error("%s", e)
        ready(str(e))
        if a.foreground and a.log is not None:
            print(f"memexpd: {e}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 0
    except BaseException as e:  # noqa: BLE001 - the log must say why the lock server is gone
        log.exception("memexpd failed")
        ready(f"memexpd failed: {e}")
        code = 1
    finally:
        remove_pidfile(a.pidfile)
    log.info("memexpd exits (%d)", code)
    return code
