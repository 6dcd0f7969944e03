"""ogfsconf: validate an ogfscf.cf and write it to the cluster information device, or print it back."""

from __future__ import annotations

import argparse
import sys

from ogfs import cidev, config

PROG = "ogfsconf"

DESCRIPTION = """\
Validate an OpenGFS cluster configuration (ogfscf.cf) and store it on the
cluster information device (the cidev), or print the stored one back.

The cidev is the small shared partition (/dev/sda1 in the classic recipe)
that every node and the lock server (memexpd) read at mount time. It holds
the configuration in a normalised form (one key a line, comments dropped,
nodes sorted by CID), a generation counter that goes up on every rewrite,
and one disk-heartbeat slot per node. Rewriting it keeps those slots.
"""

EPILOG = """\
examples:
  ogfsconf -n -c /etc/ogfscf.cf         check the file only
  ogfsconf -c /etc/ogfscf.cf            write it to the cidev it names (cidev: /dev/sda1)
  ogfsconf -c ogfscf.cf -d /dev/loop3   write it to another device (the text keeps its cidev: line)
  ogfsconf -p /dev/sda1                 print the stored configuration

a minimal ogfscf.cf:
  datadev: /dev/sda3
  cidev: /dev/sda1
  lockdev: 192.168.1.100:15697     # memexpd's IP:port (the cluster IP)
  cbport: 3001                     # callback port on every node
  timeout: 30                      # seconds before a silent node is dead
  STOMITH: manual                  # fencing method kind: manual, labctl or none
  name: manual                     # its unique name, used by SM: below
  node: 192.168.1.1 0 SM: manual   # node IP, CID (0..n-1), method [plug/port]
  node: 192.168.1.2 1 SM: manual

exit status: 0 success, 1 device error, 2 bad configuration or usage
"""

EXIT_OK, EXIT_DEVICE, EXIT_CONFIG = 0, 1, 2


def _error(message: str) -> None:
    for line in message.splitlines():
        print(f"{PROG}: {line}", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("-c", metavar="FILE", dest="file",
                        help="validate FILE and write it to the cidev named in it")
    action.add_argument("-p", metavar="DEV", dest="print_dev",
                        help="print the configuration stored on DEV")
    parser.add_argument("-d", metavar="DEV", dest="device",
                        help="with -c: write to DEV instead of the file's cidev")
    parser.add_argument("-n", action="store_true", dest="dry_run",
                        help="with -c: validate only, write nothing")
    return parser


def _summary(cfg: config.ClusterConfig) -> str:
    nodes = f"{len(cfg.nodes)} node{'s' if len(cfg.nodes) != 1 else ''}"
    return f"{nodes}, lockdev {cfg.lockdev}"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.print_dev is not None and (args.device is not None or args.dry_run):
        parser.error("-d and -n go with -c, not with -p")

    if args.print_dev is not None:
        try:
            text = cidev.read_text(args.print_dev)
        except cidev.CidevError as e:
            _error(str(e))
            return EXIT_DEVICE
        sys.stdout.write(text)
        return EXIT_OK

    try:
        with open(args.file, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        _error(f"{args.file}: cannot read: {e.strerror}")
        return EXIT_CONFIG
    except UnicodeDecodeError:
        _error(f"{args.file}: not a UTF-8 text file")
        return EXIT_CONFIG
    try:
        cfg = config.parse(text, source=args.file)
    except config.ConfigError as e:
        _error(str(e))
        return EXIT_CONFIG

    device = args.device if args.device is not None else cfg.cidev
    if args.dry_run:
        print(f"{args.file}: OK ({_summary(cfg)}, cidev {device})")
        return EXIT_OK
    try:
        generation = cidev.write_config(device, cfg)
    except cidev.CidevError as e:
        _error(str(e))
        return EXIT_DEVICE
    print(f"wrote {args.file} to {device}: generation {generation} ({_summary(cfg)})")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
