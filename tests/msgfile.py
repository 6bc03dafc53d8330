"""A small writer of Outlook .msg files for tests: Compound File Binary (CFB, MS-CFB) version 3
with 512-byte sectors, holding the few MS-OXMSG properties formtool reads.

Layout written: the 512-byte header, then every stream of 4096 bytes or more in its own chain
of sectors, then the mini stream (smaller streams in 64-byte mini sectors), the mini FAT, the
directory and finally the FAT itself. Siblings in the directory form a balanced binary search
tree in CFB's name order (shorter names first, then by upper case); every node is black, which
readers accept. Good enough for test messages of a few megabytes (at most 109 FAT sectors, so
no DIFAT); not a general CFB writer.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

SECTOR, MINI_SECTOR, MINI_CUTOFF = 512, 64, 4096
FREE, END, FAT_SECTOR, NO_ENTRY = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")
STORAGE, STREAM, ROOT = 1, 2, 5
BLACK = 1
ENTRY = struct.Struct("<64sHBBIII16sIQQIQ")  # one 128-byte directory entry
HEADER = struct.Struct("<8s16s5H6s9I109I")  # the 512-byte file header
ENTRY_SIZE_OFFSET = 120  # where a directory entry keeps its stream size


# ---- Compound File Binary -----------------------------------------------------------------


@dataclass
class _Entry:
    name: str
    kind: int
    data: bytes = b""
    children: dict[str, _Entry] = field(default_factory=dict)
    sid: int = 0
    left: int = NO_ENTRY
    right: int = NO_ENTRY
    child: int = NO_ENTRY
    start: int = END
    size: int = 0

    def pack(self) -> bytes:
        name = self.name.encode("utf-16-le")
        assert len(self.name) <= 31, self.name
        return ENTRY.pack(
            name.ljust(64, b"\0"),
            len(name) + 2,
            self.kind,
            BLACK,
            self.left,
            self.right,
            self.child,
            b"\0" * 16,
            0,
            0,
            0,
            self.start,
            self.size,
        )


EMPTY_ENTRY = ENTRY.pack(b"", 0, 0, 0, NO_ENTRY, NO_ENTRY, NO_ENTRY, b"\0" * 16, 0, 0, 0, 0, 0)


class _Chains:
    """Sectors (or mini sectors) laid end to end, with the allocation table that chains them."""

    def __init__(self, size: int) -> None:
        self.size, self.data = size, bytearray()
        self.table: list[int] = []

    def add(self, payload: bytes) -> int:
        """Store `payload` in fresh sectors; the first sector's number (END if empty)."""
        if not payload:
            return END
        count = -(-len(payload) // self.size)
        first = len(self.table)
        self.table.extend(range(first + 1, first + count))
        self.table.append(END)
        self.data += payload.ljust(count * self.size, b"\0")
        return first


def _cfb_order(entry: _Entry) -> tuple[int, str]:
    return len(entry.name), entry.name.upper()


def _tree(streams: Mapping[str, bytes]) -> _Entry:
    root = _Entry("Root Entry", ROOT)
    for path, data in streams.items():
        *folders, leaf = path.split("/")
        node = root
        for name in folders:
            node = node.children.setdefault(name, _Entry(name, STORAGE))
        node.children[leaf] = _Entry(leaf, STREAM, data)
    return root


def _number(entry: _Entry, entries: list[_Entry]) -> None:
    """Give each entry its directory index (parents first) and link its children."""
    entry.sid = len(entries)
    entries.append(entry)
    kids = sorted(entry.children.values(), key=_cfb_order)
    for kid in kids:
        _number(kid, entries)
    entry.child = _balanced(kids)


def _balanced(kids: list[_Entry]) -> int:
    """Link sorted siblings as a balanced search tree; the index of its root."""
    if not kids:
        return NO_ENTRY
    middle = len(kids) // 2
    kids[middle].left = _balanced(kids[:middle])
    kids[middle].right = _balanced(kids[middle + 1 :])
    return kids[middle].sid


def write_cfb(streams: Mapping[str, bytes]) -> bytes:
    """A CFB file holding `streams` ("storage/inner/stream" -> bytes); storages are implied."""
    entries: list[_Entry] = []
    root = _tree(streams)
    _number(root, entries)
    sectors, mini = _Chains(SECTOR), _Chains(MINI_SECTOR)
    for entry in entries:
        if entry.kind == STREAM:
            chains = sectors if len(entry.data) >= MINI_CUTOFF else mini
            entry.start, entry.size = chains.add(entry.data), len(entry.data)
    root.start, root.size = sectors.add(bytes(mini.data)), len(mini.data)
    minifat = struct.pack(f"<{len(mini.table)}I", *mini.table)
    minifat += struct.pack("<I", FREE) * (-len(mini.table) % (SECTOR // 4))
    first_minifat = sectors.add(minifat)
    directory = b"".join(e.pack() for e in entries)
    directory += EMPTY_ENTRY * (-len(entries) % (SECTOR // ENTRY.size))
    first_directory = sectors.add(directory)
    fat_count = 1
    while fat_count * SECTOR // 4 < len(sectors.table) + fat_count:
        fat_count += 1
    assert fat_count <= 109, "too large for a header-only FAT list"
    fat_sectors = list(range(len(sectors.table), len(sectors.table) + fat_count))
    fat = sectors.table + [FAT_SECTOR] * fat_count
    fat += [FREE] * (fat_count * SECTOR // 4 - len(fat))
    header = HEADER.pack(
        MAGIC,
        b"\0" * 16,
        0x3E,
        3,
        0xFFFE,
        9,
        6,
        b"\0" * 6,
        0,
        fat_count,
        first_directory,
        0,
        MINI_CUTOFF,
        first_minifat,
        len(minifat) // SECTOR,
        END,
        0,
        *fat_sectors,
        *[FREE] * (109 - fat_count),
    )
    return header + bytes(sectors.data) + struct.pack(f"<{len(fat)}I", *fat)


def set_stream_size(data: bytes, name: str, size: int) -> bytes:
    """`data` with every directory entry called `name` declaring `size` bytes (damage)."""
    wanted = name.encode("utf-16-le").ljust(64, b"\0")
    out = bytearray(data)
    for at in range(SECTOR, len(out) - ENTRY.size + 1, ENTRY.size):
        if out[at : at + 64] == wanted:
            struct.pack_into("<Q", out, at + ENTRY_SIZE_OFFSET, size)
    return bytes(out)


# ---- Outlook message (MS-OXMSG) -----------------------------------------------------------

PT_LONG, PT_STRING8, PT_UNICODE, PT_SYSTIME, PT_OBJECT, PT_BINARY = (
    0x0003,
    0x001E,
    0x001F,
    0x0040,
    0x000D,
    0x0102,
)
READABLE_WRITABLE = 6
FILETIME_EPOCH = dt.datetime(1601, 1, 1)
ANSI_CODEPAGE = 1252


@dataclass(frozen=True)
class Attached:
    """An attachment of a test message: a file, or (with `message`) an embedded email."""

    name: str = ""
    data: bytes = b""
    short_name: str = ""  # PidTagAttachFilename, the 8.3 name older clients read
    message: Msg | None = None


@dataclass(frozen=True)
class Msg:
    """A test message: what formtool reads from a real one, nothing more."""

    subject: str = ""
    sender_name: str = ""
    sender_address: str = ""
    sent_at: dt.datetime | None = None  # PidTagClientSubmitTime
    delivered_at: dt.datetime | None = None  # PidTagMessageDeliveryTime
    attachments: tuple[Attached, ...] = ()
    ansi: bool = False  # 8-bit (001E) strings in Windows-1252, as Outlook 97-2002 wrote


def filetime(stamp: dt.datetime) -> int:
    return (stamp - FILETIME_EPOCH) // dt.timedelta(microseconds=1) * 10


class _Properties:
    """One object's property streams: the fixed-size table and a stream per variable value."""

    def __init__(self, prefix: str, ansi: bool) -> None:
        self.prefix, self.ansi = prefix, ansi
        self.entries: list[bytes] = []
        self.streams: dict[str, bytes] = {}

    def fixed(self, pid: int, kind: int, value: int) -> None:
        self.entries.append(struct.pack("<IIQ", pid << 16 | kind, READABLE_WRITABLE, value))

    def text(self, pid: int, value: str) -> None:
        if not value:
            return
        kind, data = (
            (PT_STRING8, value.encode("cp1252"))
            if self.ansi
            else (PT_UNICODE, value.encode("utf-16-le"))
        )
        self.variable(pid, kind, data, len(data) + (1 if self.ansi else 2))

    def variable(self, pid: int, kind: int, data: bytes, size: int | None = None) -> None:
        self.streams[f"{self.prefix}__substg1.0_{pid:04X}{kind:04X}"] = data
        self.entries.append(
            struct.pack(
                "<IIII", pid << 16 | kind, READABLE_WRITABLE, len(data) if size is None else size, 0
            )
        )

    def table(self, header: bytes) -> dict[str, bytes]:
        return {
            **self.streams,
            f"{self.prefix}__properties_version1.0": header + b"".join(self.entries),
        }


def _message_streams(msg: Msg, prefix: str, embedded: bool) -> dict[str, bytes]:
    props = _Properties(prefix, msg.ansi)
    props.text(0x001A, "IPM.Note")
    props.text(0x0037, msg.subject)
    props.text(0x0C1A, msg.sender_name)
    props.text(0x5D01, msg.sender_address)
    props.text(0x0C1F, msg.sender_address)
    props.text(0x1000, "Body text (synthetic).")
    if msg.ansi:
        props.fixed(0x3FFD, PT_LONG, ANSI_CODEPAGE)
    for pid, stamp in ((0x0039, msg.sent_at), (0x0E06, msg.delivered_at)):
        if stamp is not None:
            props.fixed(pid, PT_SYSTIME, filetime(stamp))
    streams: dict[str, bytes] = {}
    for number, attached in enumerate(msg.attachments):
        streams.update(
            _attachment_streams(
                attached, f"{prefix}__attach_version1.0_#{number:08X}/", number, msg.ansi
            )
        )
    count = len(msg.attachments)
    counts = struct.pack("<8xIIII", 0, count, 0, count)  # next recipient/attachment ids, counts
    streams.update(props.table(counts if embedded else counts + b"\0" * 8))
    if not embedded:
        for stream in ("00020102", "00030102", "00040102"):
            streams[f"__nameid_version1.0/__substg1.0_{stream}"] = b""
    return streams


def _attachment_streams(
    attached: Attached, prefix: str, number: int, ansi: bool
) -> dict[str, bytes]:
    props = _Properties(prefix, ansi)
    props.fixed(0x0E21, PT_LONG, number)  # PidTagAttachNumber
    props.fixed(0x370B, PT_LONG, 0xFFFFFFFF)  # PidTagRenderingPosition: not in the body
    props.text(0x3707, attached.name)
    props.text(0x3704, attached.short_name)
    streams: dict[str, bytes] = {}
    if attached.message is None:
        props.fixed(0x3705, PT_LONG, 1)  # afByValue
        props.variable(0x3701, PT_BINARY, attached.data)
    else:
        props.fixed(0x3705, PT_LONG, 5)  # afEmbeddedMessage
        props.entries.append(
            struct.pack("<IIII", 0x3701 << 16 | PT_OBJECT, READABLE_WRITABLE, 0xFFFFFFFF, 0)
        )
        streams = _message_streams(attached.message, f"{prefix}__substg1.0_3701000D/", True)
    return {**streams, **props.table(b"\0" * 8)}


def msg_bytes(msg: Msg) -> bytes:
    """The .msg file Outlook would save for `msg` (as far as formtool looks)."""
    return write_cfb(_message_streams(msg, "", embedded=False))
