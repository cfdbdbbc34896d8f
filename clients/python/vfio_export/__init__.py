"""vfio_export: a client of vfio-exportd, the service that hands out dma-buf fds of VFIO device BARs.

Standard library only (Python 3.9+). The wire protocol is NDJSON JSON-RPC 2.0 over a Unix socket, the fds ride
as SCM_RIGHTS; docs/protocol.md in the vfio-export repository is the reference.

    from vfio_export import Client

    with Client.connect() as client:              # $VFIO_EXPORT_SOCKET, else /run/vfio-export/vfio-export.sock as root
        with client.export("0000:01:00.0", region=2, offset=0, length=0x2000) as e:
            os.lseek(e.fileno(), 0, os.SEEK_END)  # 0x2000: the dma-buf, this process's to use
            client.release(e)
"""
from .client import DEFAULT_SOCKET, SOCKET_ENV, Client, NoDefaultSocket, Subscription, default_socket
from .errors import (BUSY, CODE_NAMES, DEVICE_UNAVAILABLE, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST,
                     KERNEL_REFUSED, METHOD_NOT_FOUND, NO_SUCH_DEVICE, NO_SUCH_EXPORT, PARSE_ERROR,
                     PERMISSION_DENIED, QUOTA_EXCEEDED, SHUTTING_DOWN, NO_HANDSHAKE, ConnectionClosed, ProtocolError, RpcError,
                     VfioExportError)
from .model import Device, Event, Export, Fd, MemoryResult, Range, Region, Reply, ResetResult

__version__ = "0.1.0"

__all__ = [
    "Client", "Subscription", "default_socket", "DEFAULT_SOCKET", "SOCKET_ENV", "NoDefaultSocket",
    "Device", "Event", "Export", "Fd", "MemoryResult", "Range", "Region", "Reply", "ResetResult",
    "VfioExportError", "RpcError", "ProtocolError", "ConnectionClosed", "CODE_NAMES",
    "PARSE_ERROR", "INVALID_REQUEST", "METHOD_NOT_FOUND", "INVALID_PARAMS", "INTERNAL_ERROR", "KERNEL_REFUSED",
    "NO_SUCH_DEVICE", "NO_SUCH_EXPORT", "PERMISSION_DENIED", "BUSY", "QUOTA_EXCEEDED", "DEVICE_UNAVAILABLE",
    "SHUTTING_DOWN", "NO_HANDSHAKE",
]
