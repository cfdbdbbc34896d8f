"""The protocol's objects as dataclasses, and :class:`Fd`, an owned file descriptor."""
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from .errors import RpcError


class Fd:
    """A file descriptor this process owns: ``close()`` (or leaving a ``with`` block) closes it once.

    ``detach()`` hands the number over to the caller, who then closes it. An Fd dropped while still open is
    closed by the garbage collector with a ResourceWarning, like an unclosed socket."""

    __slots__ = ("_fd", "__weakref__")

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def fileno(self) -> int:
        if self._fd < 0:
            raise ValueError("the fd is closed (or detached)")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def detach(self) -> int:
        """The fd number, no longer owned by this object."""
        fd = self.fileno()
        self._fd = -1
        return fd

    def size(self) -> int:
        """The size of the file behind the fd (for a dma-buf: the sum of its ranges), by ``lseek(SEEK_END)``."""
        return os.lseek(self.fileno(), 0, os.SEEK_END)

    def __enter__(self) -> "Fd":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            warnings.warn("unclosed fd %d" % self._fd, ResourceWarning, source=self)
            self.close()

    def __repr__(self) -> str:
        return "Fd(%s)" % ("closed" if self._fd < 0 else self._fd)


@dataclass(frozen=True)
class Range:
    """One slice of a region: ``offset`` and ``length`` in bytes (u64)."""

    offset: int
    length: int

    def to_json(self) -> Dict[str, int]:
        return {"offset": self.offset, "length": self.length}


@dataclass(frozen=True)
class Region:
    """One region of a device: a BAR (0-5), the ROM (6), config space (7) or VGA (8)."""

    index: int
    name: str
    size: int
    kind: str  # mmio, io, config, rom, vga or absent
    mmap: bool
    prefetchable: bool

    @classmethod
    def from_json(cls, o: Mapping[str, Any]) -> "Region":
        return cls(o["index"], o.get("name", ""), o["size"], o["kind"], bool(o.get("mmap")),
                   bool(o.get("prefetchable")))


@dataclass(frozen=True)
class Device:
    """DEVICE of the protocol. ``seq`` is the device's last event number; ``raw`` keeps every field as sent."""

    device: str
    name: str
    backend: str
    state: str  # ready, resetting, memory-disabled or closed
    memory_enabled: bool
    seq: int
    exports: int
    regions: List[Region]
    reset_supported: Optional[bool] = None
    dmabuf_supported: Optional[bool] = None
    raw: Dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, o: Mapping[str, Any]) -> "Device":
        return cls(o["device"], o.get("name", ""), o.get("backend", ""), o["state"], bool(o["memory_enabled"]),
                   o["seq"], o["exports"], [Region.from_json(r) for r in o.get("regions", [])],
                   o.get("reset_supported"), o.get("dmabuf_supported"), dict(o))

    def region(self, index: int) -> Region:
        for r in self.regions:
            if r.index == index:
                return r
        raise KeyError("device %s has no region %d" % (self.device, index))


@dataclass
class Export:
    """EXPORT of the protocol, with the dma-buf fd when it came from ``export.create``.

    The fd is owned: ``close()`` or the ``with`` block closes it. Closing the fd does not release the export:
    ``Client.release`` does, and so does closing the connection (the server then releases every export of it)."""

    export_id: str
    device: str
    region: int
    ranges: List[Range]
    size: int
    state: str  # live or revoked
    created_seq: int
    fd: Optional[Fd] = None

    @classmethod
    def from_json(cls, o: Mapping[str, Any], fd: Optional[Fd] = None) -> "Export":
        return cls(o["export_id"], o["device"], o["region"], [Range(r["offset"], r["length"]) for r in o["ranges"]],
                   o["size"], o["state"], o["created_seq"], fd)

    def fileno(self) -> int:
        if self.fd is None:
            raise ValueError("export %s came without an fd" % self.export_id)
        return self.fd.fileno()

    def close(self) -> None:
        """Closes this process's fd of the buffer (the export itself stays until released)."""
        if self.fd is not None:
            self.fd.close()

    def __enter__(self) -> "Export":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Event:
    """EVENT of the protocol.

    ``type`` is export.created, export.revoked, export.restored, export.released, device.state or events.lost.
    ``seq`` is per device, from 1, gap-free; an ``events.lost`` has no seq but names the events this subscriber will
    never get, ``from_seq`` to ``to_seq``. ``state`` is set on export.created and device.state."""

    type: str
    device: str
    seq: Optional[int] = None
    export_id: Optional[str] = None
    cause: Optional[str] = None
    state: Optional[str] = None
    from_seq: Optional[int] = None
    to_seq: Optional[int] = None
    time: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    LOST = "events.lost"

    @property
    def lost(self) -> bool:
        return self.type == Event.LOST

    @property
    def last_seq(self) -> int:
        """The device's seq this event brings a subscriber to: its seq, or for events.lost the end of the gap."""
        return self.to_seq if self.lost else self.seq  # type: ignore[return-value]

    @classmethod
    def from_json(cls, o: Mapping[str, Any]) -> "Event":
        return cls(o["type"], o["device"], o.get("seq"), o.get("export_id"), o.get("cause"), o.get("state"),
                   o.get("from_seq"), o.get("to_seq"), o.get("time"), dict(o))


@dataclass(frozen=True)
class ResetResult:
    device: str
    revoked: int
    restored: int
    duration_us: int
    acked: int = 0        # watches that answered the revocation handshake
    timed_out: int = 0    # watches the handshake's deadline passed over

    @classmethod
    def from_json(cls, o: Mapping[str, Any]) -> "ResetResult":
        return cls(o["device"], o["revoked"], o["restored"], o["duration_us"], o.get("acked", 0), o.get("timed_out", 0))


@dataclass(frozen=True)
class MemoryResult:
    device: str
    memory_enabled: bool
    revoked: int
    restored: int
    acked: int = 0
    timed_out: int = 0

    @classmethod
    def from_json(cls, o: Mapping[str, Any]) -> "MemoryResult":
        return cls(o["device"], o["memory_enabled"], o["revoked"], o["restored"], o.get("acked", 0),
                   o.get("timed_out", 0))


@dataclass
class Reply:
    """One response: ``result`` or ``error``, and the fd that rode with it (results with ``fd_index``)."""

    id: Any
    result: Any = None
    error: Optional[RpcError] = None
    fd: Optional[Fd] = None

    def value(self) -> Any:
        """The result; the error raised as :class:`RpcError`. An fd stays with the reply."""
        if self.error is not None:
            raise self.error
        return self.result

    def export(self) -> Export:
        """The :class:`Export` of a successful ``export.create`` reply; it takes over the reply's fd."""
        result = self.value()
        fd, self.fd = self.fd, None
        return Export.from_json(result, fd)

    def close(self) -> None:
        if self.fd is not None:
            self.fd.close()
