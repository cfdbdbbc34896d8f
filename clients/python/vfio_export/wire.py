"""The connection's bytes: NDJSON lines out, lines in with the fds they name (docs/protocol.md, "Framing").

Fds ride as SCM_RIGHTS on the first byte of the line that names them. One ``recvmsg`` may return the end of an
earlier line, that first byte and more, so the fds cannot be matched to a line when they arrive: every fd received
is pushed on a FIFO, and a complete line that names N fds (responses whose result has ``fd_index``; in a batch,
each such element) takes the next N. Lines come in the order sent, so the FIFO never hands a line another's fd.
"""
import array
import collections
import json
import socket
import time
from typing import Any, Deque, List, Optional, Tuple

from .errors import ConnectionClosed, ProtocolError
from .model import Fd

MAX_FDS_PER_READ = 253  # SCM_MAX_FD: the most fds one message can carry
READ_BYTES = 65536
_INT_SIZE = array.array("i").itemsize


def fds_named(message: Any) -> int:
    """How many fds a line carries: one per response whose result has ``fd_index``."""
    responses = message if isinstance(message, list) else [message]
    return sum(1 for r in responses
               if isinstance(r, dict) and isinstance(r.get("result"), dict) and "fd_index" in r["result"])


def remaining(deadline: Optional[float]) -> Optional[float]:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


class Wire:
    """Reads lines with their fds and writes lines on a connected Unix stream socket, for one thread."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf known to hold no newline
        self._fds: Deque[Fd] = collections.deque()

    @property
    def socket(self) -> socket.socket:
        return self._sock

    @property
    def unclaimed_fds(self) -> int:
        """Fds received whose line has not arrived whole yet (0 between lines)."""
        return len(self._fds)

    def send(self, message: Any, deadline: Optional[float]) -> None:
        """Writes one JSON value as one line. A timeout leaves the line partly written: the connection is then
        unusable and should be closed."""
        data = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"
        self._sock.settimeout(remaining(deadline))
        try:
            self._sock.sendall(data)
        except (socket.timeout, BlockingIOError):
            raise TimeoutError("the server did not take the request (it is not reading this connection)") from None

    def read(self, deadline: Optional[float]) -> Tuple[Any, List[Fd]]:
        """The next line, decoded, with the fds it names (in order: a batch's fd_index indexes this list)."""
        while True:
            nl = self._buf.find(b"\n", self._scanned)
            if nl < 0:
                self._scanned = len(self._buf)
                self._receive(deadline)
                continue
            line = bytes(self._buf[:nl])
            del self._buf[:nl + 1]
            self._scanned = 0
            if not line.strip():
                continue
            try:
                message = json.loads(line)
            except ValueError as e:
                raise ProtocolError("the server sent a line that is not JSON (%s): %r" % (e, line[:200])) from None
            wanted = fds_named(message)
            if wanted > len(self._fds):
                raise ProtocolError("a line names %d fds but %d arrived: %r" % (wanted, len(self._fds), line[:200]))
            return message, [self._fds.popleft() for _ in range(wanted)]

    def _receive(self, deadline: Optional[float]) -> None:
        self._sock.settimeout(remaining(deadline))
        try:
            data, ancillary, flags, _ = self._sock.recvmsg(
                READ_BYTES, socket.CMSG_SPACE(MAX_FDS_PER_READ * _INT_SIZE), socket.MSG_CMSG_CLOEXEC)
        except (socket.timeout, BlockingIOError):  # a deadline already passed makes the socket non-blocking
            raise TimeoutError() from None
        # own every fd at once, before anything can fail, so that none leaks
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(payload[:len(payload) - len(payload) % _INT_SIZE])
                self._fds.extend(Fd(fd) for fd in fds)
        if flags & socket.MSG_CTRUNC:
            raise ProtocolError("the kernel cut the fds of a message short (MSG_CTRUNC): fds were lost")
        if not data:
            raise ConnectionClosed("the server closed the connection")
        self._buf += data

    def close(self) -> None:
        while self._fds:
            self._fds.popleft().close()
        self._sock.close()
