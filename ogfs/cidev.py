"""The cluster information device (cidev, ``/dev/sda1`` in the seed): layout, write and read.

Layout (big-endian, 4096-byte blocks; a labctl design, the OpenGFS original was not recoverable):

* block 0: header: magic ``OGFSCIDV``, u32 format version, u64 config generation, u32 text length,
  u32 CRC32 of the text, u32 CRC32 of the header bytes before it; zero padding.
* blocks 1..15: the normalised ``ogfscf.cf`` text (``ogfs.config.format``), UTF-8.
* blocks 16..271: one disk-heartbeat slot per CID, written by that node's mount (ogfs/slots.py).
* blocks 272..527: one fence record per CID, written by the node that took that CID's journal
  (ogfs/fence.py).

The device may be a block device (a loop device in the lab) or a regular file (tests).
This module runs on the cluster nodes: standard library only.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass

from ogfs import config
from ogfs.config import ClusterConfig

BLOCK = 4096
MAGIC = b"OGFSCIDV"
VERSION = 1
TEXT_FIRST_BLOCK = 1
TEXT_BLOCKS = 15
MAX_TEXT = TEXT_BLOCKS * BLOCK
SLOT_FIRST_BLOCK = 16
MAX_NODES = config.MAX_NODES
FENCE_FIRST_BLOCK = SLOT_FIRST_BLOCK + MAX_NODES
MIN_SIZE = (FENCE_FIRST_BLOCK + MAX_NODES) * BLOCK

# magic, version, generation, text length, text CRC; the header CRC follows as one more u32.
_HEAD = struct.Struct(">8sIQII")
_CRC = struct.Struct(">I")


class CidevError(Exception):
    """The device is missing, too small, blank, corrupt or unreadable; the message says which."""


class _UnsupportedVersion(CidevError):
    pass


@dataclass(frozen=True)
class Header:
    version: int
    generation: int
    text_length: int
    text_crc: int


def _pack_header(generation: int, text: bytes) -> bytes:
    head = _HEAD.pack(MAGIC, VERSION, generation, len(text), zlib.crc32(text))
    return (head + _CRC.pack(zlib.crc32(head))).ljust(BLOCK, b"\0")


def _unpack_header(dev_path: str, block: bytes) -> Header:
    head = block[: _HEAD.size]
    magic, version, generation, length, text_crc = _HEAD.unpack(head)
    (head_crc,) = _CRC.unpack_from(block, _HEAD.size)
    if magic != MAGIC:
        if not any(block):
            raise CidevError(f"{dev_path}: no cluster information (the device is blank; "
                             "write it with ogfsconf -c)")
        raise CidevError(f"{dev_path}: no cluster information (bad magic {magic!r}; is this the cidev?)")
    if zlib.crc32(head) != head_crc:
        raise CidevError(f"{dev_path}: cidev header CRC mismatch (header corrupt)")
    if version != VERSION:
        raise _UnsupportedVersion(f"{dev_path}: cidev format version {version} is not supported "
                                  f"(this is version {VERSION})")
    if length > MAX_TEXT:
        raise CidevError(f"{dev_path}: cidev header gives a text length of {length} bytes "
                         f"(at most {MAX_TEXT})")
    return Header(version, generation, length, text_crc)


def _open(dev_path: str, flags: int) -> int:
    """Open the device and check its size; OSError becomes CidevError."""
    try:
        fd = os.open(dev_path, flags)
    except FileNotFoundError:
        raise CidevError(f"{dev_path}: no such device or file") from None
    except OSError as e:
        raise CidevError(f"{dev_path}: cannot open: {e.strerror}") from None
    try:
        # st_size is 0 for block devices; seeking to the end gives the real size of both kinds.
        size = os.lseek(fd, 0, os.SEEK_END)
    except OSError as e:
        os.close(fd)
        raise CidevError(f"{dev_path}: cannot find the size: {e.strerror}") from None
    if size < MIN_SIZE:
        os.close(fd)
        raise CidevError(f"{dev_path}: device too small: {size} bytes, a cidev needs at least {MIN_SIZE} "
                         f"({FENCE_FIRST_BLOCK + MAX_NODES} blocks of {BLOCK})")
    return fd


def _pread(dev_path: str, fd: int, length: int, offset: int) -> bytes:
    try:
        data = os.pread(fd, length, offset)
    except OSError as e:
        raise CidevError(f"{dev_path}: read error: {e.strerror}") from None
    if len(data) != length:
        raise CidevError(f"{dev_path}: short read at byte {offset}")
    return data


def _pwrite(dev_path: str, fd: int, data: bytes, offset: int) -> None:
    try:
        written = os.pwrite(fd, data, offset)
        if written != len(data):
            raise CidevError(f"{dev_path}: short write at byte {offset}")
    except OSError as e:
        raise CidevError(f"{dev_path}: write error: {e.strerror}") from None


def _fsync(dev_path: str, fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError as e:
        raise CidevError(f"{dev_path}: fsync failed: {e.strerror}") from None


def read_header(dev_path: str) -> Header:
    """The validated block-0 header (generation, text length, CRC)."""
    fd = _open(dev_path, os.O_RDONLY)
    try:
        return _unpack_header(dev_path, _pread(dev_path, fd, BLOCK, 0))
    finally:
        os.close(fd)


def read_text(dev_path: str) -> str:
    """The stored normalised config text, after checking the header and text CRCs."""
    fd = _open(dev_path, os.O_RDONLY)
    try:
        header = _unpack_header(dev_path, _pread(dev_path, fd, BLOCK, 0))
        data = _pread(dev_path, fd, header.text_length, TEXT_FIRST_BLOCK * BLOCK)
    finally:
        os.close(fd)
    if zlib.crc32(data) != header.text_crc:
        # Also what an interrupted rewrite leaves (text written, header not): rerun ogfsconf -c.
        raise CidevError(f"{dev_path}: config text CRC mismatch (text corrupt, or a rewrite was "
                         "interrupted: run ogfsconf -c again)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CidevError(f"{dev_path}: config text is not UTF-8") from None


def read_config(dev_path: str) -> ClusterConfig:
    """The stored config, parsed; a stored text that no longer parses is a CidevError too."""
    text = read_text(dev_path)
    try:
        return config.parse(text, source=dev_path)
    except config.ConfigError as e:
        raise CidevError(f"{dev_path}: stored config is invalid:\n{e}") from None


def write_config(dev_path: str, cfg: ClusterConfig) -> int:
    """Store ``cfg`` on the cidev and return the new config generation.

    Raises ConfigError if ``cfg`` does not survive its own round trip (it could not be read back),
    CidevError for device problems. The text goes to blocks 1..15 first, then the header, each
    followed by fsync: a header is never on disk before the text it describes. The heartbeat slots
    are zeroed only on a device that has no valid header yet: on a rewrite nodes may be using them.
    """
    text = config.format(cfg)
    config.parse(text, source="<normalised config>")  # never store what read_config would reject
    data = text.encode("utf-8")
    if len(data) > MAX_TEXT:
        raise CidevError(f"{dev_path}: config text is {len(data)} bytes, the cidev holds at most {MAX_TEXT}")

    fd = _open(dev_path, os.O_RDWR)
    try:
        block0 = _pread(dev_path, fd, BLOCK, 0)
        try:
            generation, first_write = _unpack_header(dev_path, block0).generation + 1, False
        except _UnsupportedVersion:
            raise  # a newer format: overwriting it could wipe what a newer ogfs keeps there
        except CidevError:
            generation, first_write = 1, True

        _pwrite(dev_path, fd, data.ljust(MAX_TEXT, b"\0"), TEXT_FIRST_BLOCK * BLOCK)
        if first_write:
            _pwrite(dev_path, fd, bytes(2 * MAX_NODES * BLOCK), SLOT_FIRST_BLOCK * BLOCK)  # slots, fences
        _fsync(dev_path, fd)
        _pwrite(dev_path, fd, _pack_header(generation, data), 0)
        _fsync(dev_path, fd)
    finally:
        os.close(fd)
    return generation
