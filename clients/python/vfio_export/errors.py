"""Errors: the server's JSON-RPC errors with their stable codes, and the client's own."""
from typing import Any, Dict, Mapping, Optional

# The stable error codes of docs/protocol.md ("Errors"); the server's one table is org.vfioexport.api.ErrorCode.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
KERNEL_REFUSED = -32000
NO_SUCH_DEVICE = -32001
NO_SUCH_EXPORT = -32002
PERMISSION_DENIED = -32003
BUSY = -32004
QUOTA_EXCEEDED = -32005
DEVICE_UNAVAILABLE = -32006
SHUTTING_DOWN = -32007
NO_HANDSHAKE = -32008

CODE_NAMES: Dict[int, str] = {
    PARSE_ERROR: "PARSE_ERROR",
    INVALID_REQUEST: "INVALID_REQUEST",
    METHOD_NOT_FOUND: "METHOD_NOT_FOUND",
    INVALID_PARAMS: "INVALID_PARAMS",
    INTERNAL_ERROR: "INTERNAL_ERROR",
    KERNEL_REFUSED: "KERNEL_REFUSED",
    NO_SUCH_DEVICE: "NO_SUCH_DEVICE",
    NO_SUCH_EXPORT: "NO_SUCH_EXPORT",
    PERMISSION_DENIED: "PERMISSION_DENIED",
    BUSY: "BUSY",
    QUOTA_EXCEEDED: "QUOTA_EXCEEDED",
    DEVICE_UNAVAILABLE: "DEVICE_UNAVAILABLE",
    SHUTTING_DOWN: "SHUTTING_DOWN",
    NO_HANDSHAKE: "NO_HANDSHAKE",
}


class VfioExportError(Exception):
    """Base of every error this package raises about the service (OSError and TimeoutError aside)."""


class RpcError(VfioExportError):
    """An error response of the server: ``code`` (one of the constants above), ``message`` (a sentence about the
    request) and ``data`` (a dict or None; e.g. ``{"field": "offset"}`` for -32602, ``{"errno", "name", "op"}``
    for -32000)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(code, message, data)
        self.code = code
        self.message = message
        self.data = data

    @property
    def name(self) -> Optional[str]:
        """The constant's name for the code (``"NO_SUCH_DEVICE"``), None for a code the table does not have."""
        return CODE_NAMES.get(self.code)

    @classmethod
    def from_json(cls, error: Mapping[str, Any]) -> "RpcError":
        return cls(int(error.get("code", INTERNAL_ERROR)), str(error.get("message", "")), error.get("data"))

    def __str__(self) -> str:
        return "%s (error %d)" % (self.message, self.code)


class ProtocolError(VfioExportError):
    """The server sent something the protocol does not allow: a line that is not JSON, a line naming more fds than
    arrived, fds cut short by the kernel (MSG_CTRUNC), or no greeting."""


class ConnectionClosed(VfioExportError, EOFError):
    """The server closed the connection (it stopped, or refused this client)."""
