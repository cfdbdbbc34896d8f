"""The client: one connection to vfio-exportd, its requests, responses and events."""
import collections
import os
import socket
import time
from typing import (Any, Deque, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Set, Tuple, Union)

from .errors import ConnectionClosed, ProtocolError, RpcError
from .model import Device, Event, Export, Fd, MemoryResult, Range, Reply, ResetResult
from .wire import Wire

#: The environment variable naming the daemon's socket, as for the daemon and the ``vfio-export`` CLI.
SOCKET_ENV = "VFIO_EXPORT_SOCKET"
#: The default socket of a daemon run by root (a system daemon's runtime directory, systemd's
#: ``RuntimeDirectory=vfio-export``); other users' default is under their $XDG_RUNTIME_DIR.
DEFAULT_SOCKET = "/run/vfio-export/vfio-export.sock"

PathLike = Union[str, "os.PathLike[str]"]
Params = Optional[Mapping[str, Any]]
RangeLike = Union[Range, Tuple[int, int], Mapping[str, int]]


class NoDefaultSocket(LookupError):
    """No path was given, $VFIO_EXPORT_SOCKET is not set, and this user has no default socket."""


def default_socket(env: Optional[Mapping[str, str]] = None, uid: Optional[int] = None) -> str:
    """The socket by the rule the daemon and every client share, absolute: $VFIO_EXPORT_SOCKET when set and not
    empty, else ``/run/vfio-export/vfio-export.sock`` for root (uid 0), else
    ``$XDG_RUNTIME_DIR/vfio-export/vfio-export.sock``; without XDG_RUNTIME_DIR a user other than root has no
    default (a shared directory such as /tmp would let another user create it first): :class:`NoDefaultSocket`.
    ``env`` and ``uid`` default to this process's."""
    env = os.environ if env is None else env
    named = env.get(SOCKET_ENV)
    if named:
        return os.path.abspath(named)
    uid = os.geteuid() if uid is None else uid
    if uid == 0:
        return DEFAULT_SOCKET
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        return os.path.join(runtime, "vfio-export", "vfio-export.sock")
    raise NoDefaultSocket("no default socket for uid %d: XDG_RUNTIME_DIR is not set (root's is %s); pass the path "
                          "or set $%s" % (uid, DEFAULT_SOCKET, SOCKET_ENV))


class Client:
    """One connection to the daemon, for one thread.

    Requests may be pipelined (:meth:`send`, then :meth:`wait` in any order); lines that arrive while waiting for
    one response are kept for their own readers: responses by id, events for :meth:`next_event` and
    subscriptions, other notifications for :meth:`next_notification`. Every wait is bounded by ``timeout``
    seconds (None: no bound) and raises TimeoutError past it.

    Closing the client closes the connection; the server then releases every export it holds (cause
    ``session-end``) and ends its subscriptions. Fds already handed out (:class:`Export`, :class:`Reply`) stay
    open until their owner closes them."""

    def __init__(self, sock: socket.socket, timeout: Optional[float] = 30.0) -> None:
        """Takes over a connected socket and reads the greeting. :meth:`connect` is the usual way in."""
        self.timeout = timeout
        self._wire = Wire(sock)
        self._next_id = 1
        self._responses: Dict[Any, Reply] = {}
        self._batches: List[List[Reply]] = []
        self._orphan_errors: Deque[RpcError] = collections.deque()
        self._events: Deque[Event] = collections.deque()
        self._notifications: Deque[Tuple[str, Any]] = collections.deque()
        self._closed = False
        try:
            message, fds = self._wire.read(self._deadline(None))
            for fd in fds:
                fd.close()
            if isinstance(message, dict) and message.get("method") == "hello":
                self.hello: Dict[str, Any] = message.get("params") or {}
            elif isinstance(message, dict) and isinstance(message.get("error"), dict):
                raise RpcError.from_json(message["error"])  # e.g. -32005 max_connections_per_uid
            else:
                raise ProtocolError("the server did not greet with hello: %r" % (message,))
        except TimeoutError:
            self._wire.close()
            raise TimeoutError("no greeting from the server within %s s" % timeout) from None
        except BaseException:
            self._wire.close()
            raise

    @classmethod
    def connect(cls, path: Optional[PathLike] = None, timeout: Optional[float] = 30.0) -> "Client":
        """Connects to ``path``, else :func:`default_socket` ($VFIO_EXPORT_SOCKET, else the default), and reads
        the greeting."""
        target = os.fspath(path) if path is not None else default_socket()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(target)
        except FileNotFoundError as e:
            sock.close()
            raise FileNotFoundError(e.errno, "no socket at %s (is vfio-exportd running? pass the path or set $%s)"
                                    % (target, SOCKET_ENV)) from None
        except ConnectionRefusedError as e:
            sock.close()
            raise ConnectionRefusedError(e.errno, "nothing listens on %s" % target) from None
        except BaseException:
            sock.close()
            raise
        return cls(sock, timeout)

    # ---- the connection -------------------------------------------------------------------------------------

    def fileno(self) -> int:
        return self._wire.socket.fileno()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def unclaimed_fds(self) -> int:
        """Fds received whose line is not complete yet: 0 between lines."""
        return self._wire.unclaimed_fds

    def close(self) -> None:
        """Closes the connection and every fd received but not handed out (responses nobody waited for)."""
        if self._closed:
            return
        self._closed = True
        for reply in self._responses.values():
            reply.close()
        for replies in self._batches:
            for reply in replies:
                reply.close()
        self._responses.clear()
        self._batches.clear()
        self._wire.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- requests -------------------------------------------------------------------------------------------

    def send(self, method: str, params: Params = None) -> int:
        """Sends a request without waiting (pipelining); returns its id for :meth:`wait`."""
        request_id = self._take_id()
        self._wire.send(self._request(method, params, request_id), self._deadline(None))
        return request_id

    def notify(self, method: str, params: Params = None) -> None:
        """Sends a notification: performed by the server, never answered."""
        self._wire.send(self._request(method, params, None), self._deadline(None))

    def wait(self, request_id: Any, timeout: Optional[float] = None) -> Reply:
        """The response to ``request_id`` (result or error, with its fd). The caller owns the reply's fd."""
        deadline = self._deadline(timeout)
        while request_id not in self._responses:
            self._raise_orphan_error()
            self._read("the response to request %r" % (request_id,), deadline)
        return self._responses.pop(request_id)

    def call(self, method: str, params: Params = None) -> Any:
        """One request: its result, or its error raised as :class:`RpcError`. An fd of the response is closed
        (use :meth:`export` or :meth:`wait` to keep it)."""
        reply = self.wait(self.send(method, params))
        reply.close()
        return reply.value()

    def batch(self, calls: Sequence[Tuple[str, Params]], timeout: Optional[float] = None) -> List[Reply]:
        """Sends the calls as one batch (one line) and returns their replies in the same order; each
        ``export.create`` reply holds its fd (``reply.export()``). A batch the server refuses whole (empty, over
        ``max_batch``, over 253 exports) raises :class:`RpcError`; nothing of it ran."""
        requests = [self._request(method, params, self._take_id()) for method, params in calls]
        ids = [r["id"] for r in requests]
        self._wire.send(requests, self._deadline(None))
        deadline = self._deadline(timeout)
        while True:
            for i, replies in enumerate(self._batches):
                if [r.id for r in replies] == ids:
                    del self._batches[i]
                    return replies
            self._raise_orphan_error()
            self._read("the batch response", deadline)

    # ---- methods ----------------------------------------------------------------------------------------------

    def server_info(self) -> Dict[str, Any]:
        info: Dict[str, Any] = self.call("server.info")
        return info

    def methods(self) -> List[str]:
        return [str(m) for m in self.call("rpc.methods")["methods"]]

    def devices(self) -> List[Device]:
        return [Device.from_json(d) for d in self.call("device.list")["devices"]]

    def device(self, device: str) -> Device:
        return Device.from_json(self.call("device.get", {"device": device}))

    def export(self, device: str, region: int, offset: Optional[int] = None, length: Optional[int] = None, *,
               ranges: Optional[Iterable[RangeLike]] = None, open_flags: Optional[Sequence[str]] = None) -> Export:
        """``export.create`` of ``offset``/``length``, or of ``ranges``, of BAR ``region``: the :class:`Export`
        with its dma-buf fd, which the caller owns (``with client.export(...) as e:`` closes it)."""
        params: Dict[str, Any] = {"device": device, "region": region}
        if ranges is not None:
            params["ranges"] = [_range_json(r) for r in ranges]
        if offset is not None:
            params["offset"] = offset
        if length is not None:
            params["length"] = length
        if open_flags is not None:
            params["open_flags"] = list(open_flags)
        reply = self.wait(self.send("export.create", params))
        if reply.error is None and reply.fd is None:
            raise ProtocolError("export.create answered without an fd: %r" % (reply.result,))
        return reply.export()

    def release(self, export: Union[str, Export]) -> None:
        """``export.release``: the server closes its reference; this process's fd, if any, stays open."""
        export_id = export.export_id if isinstance(export, Export) else export
        self.call("export.release", {"export_id": export_id})

    def get_export(self, export_id: str) -> Export:
        return Export.from_json(self.call("export.get", {"export_id": export_id}))

    def exports(self, device: Optional[str] = None) -> List[Export]:
        """This connection's exports (without fds)."""
        params = None if device is None else {"device": device}
        return [Export.from_json(e) for e in self.call("export.list", params)["exports"]]

    def reset(self, device: str, quiesce_ms: Optional[int] = None) -> ResetResult:
        """``device.reset``. A subscriber on this connection has the reset's events before this returns.
        ``quiesce_ms``: how long the revocation handshake may wait for watchers (default: the daemon's)."""
        params: Dict[str, Any] = {"device": device}
        if quiesce_ms is not None:
            params["quiesce_ms"] = quiesce_ms
        return ResetResult.from_json(self.call("device.reset", params))

    def set_memory(self, device: str, enabled: bool, quiesce_ms: Optional[int] = None) -> MemoryResult:
        """``device.set_memory``: PCI memory decoding off (exports revoked) or on (restored)."""
        params: Dict[str, Any] = {"device": device, "enabled": enabled}
        if quiesce_ms is not None:
            params["quiesce_ms"] = quiesce_ms
        return MemoryResult.from_json(self.call("device.set_memory", params))

    # ---- the revocation handshake -------------------------------------------------------------------------------

    def watch(self, export: Union[str, Export], ack: bool = True) -> None:
        """``export.watch``: be told (``export.revoking``) before a reset or memory-off revokes this connection's
        export, and answer with :meth:`quiesced`; ``ack=False`` ends the watch."""
        export_id = export.export_id if isinstance(export, Export) else export
        self.call("export.watch", {"export_id": export_id, "ack": ack})

    def next_revoking(self, timeout: Optional[float] = None) -> Optional[Dict[str, Any]]:
        """The next ``export.revoking`` notice (``device``, ``export_id``, ``seq``, ``deadline_ms``), or None."""
        return self.next_notification("export.revoking", timeout)

    def quiesced(self, export: Union[str, Export]) -> None:
        """``export.quiesced``: this connection stopped using the export; the revocation may go on."""
        export_id = export.export_id if isinstance(export, Export) else export
        self.call("export.quiesced", {"export_id": export_id})

    # ---- events -----------------------------------------------------------------------------------------------

    def subscribe(self, devices: Optional[Iterable[str]] = None,
                  since: Optional[Mapping[str, int]] = None,
                  scope: Optional[str] = None,
                  export_ids: Optional[Iterable[str]] = None) -> "Subscription":
        """``events.subscribe`` to ``devices`` (None: every device this client sees), replaying what followed
        ``since`` (``{device: last seq already seen}``, e.g. an earlier subscription's ``positions``).

        ``scope`` picks the export events: ``"all"`` (the server's default), ``"own"`` (the exports this
        connection created) or ``"exports"`` (those in ``export_ids``; passing ``export_ids`` alone implies it).
        Device events come in every scope. A scoped subscription's seqs skip the other exports' events; only an
        ``events.lost`` means a loss, and ``positions`` resumes the same view with the same scope."""
        params: Dict[str, Any] = {}
        if devices is not None:
            params["devices"] = list(devices)
        if since is not None:
            params["since"] = dict(since)
        if export_ids is not None and scope is None:
            scope = "exports"
        if scope is not None:
            params["scope"] = scope
        if export_ids is not None:
            params["export_ids"] = list(export_ids)
        result = self.call("events.subscribe", params)
        return Subscription(self, result["subscription"], result["heads"], since)

    def unsubscribe(self, subscription: Union[str, "Subscription"]) -> None:
        sub_id = subscription.id if isinstance(subscription, Subscription) else subscription
        self.call("events.unsubscribe", {"subscription": sub_id})

    def next_event(self, timeout: Optional[float] = None, devices: Optional[Set[str]] = None) -> Optional[Event]:
        """The connection's next event (of ``devices`` only, when given; others stay queued), or None when none
        comes within ``timeout`` seconds (None: wait as long as it takes). Raises :class:`ConnectionClosed` when
        the server has closed the connection and every event was read."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            for i, event in enumerate(self._events):
                if devices is None or event.device in devices:
                    del self._events[i]
                    return event
            try:
                self._read("an event", deadline)
            except TimeoutError:
                return None

    def next_notification(self, method: str, timeout: Optional[float] = None) -> Optional[Dict[str, Any]]:
        """The params of the next notification named ``method`` other than events (e.g. ``importer.invalidated``
        on the simulated backend), or None when none comes within ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            for i, (name, params) in enumerate(self._notifications):
                if name == method:
                    del self._notifications[i]
                    return dict(params or {})
            try:
                self._read("a %s notification" % method, deadline)
            except TimeoutError:
                return None

    # ---- internals --------------------------------------------------------------------------------------------

    def _take_id(self) -> int:
        request_id = self._next_id
        self._next_id += 1
        return request_id

    @staticmethod
    def _request(method: str, params: Params, request_id: Optional[int]) -> Dict[str, Any]:
        request: Dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if request_id is not None:
            request["id"] = request_id
        if params is not None:
            request["params"] = dict(params)
        return request

    def _deadline(self, timeout: Optional[float]) -> Optional[float]:
        t = self.timeout if timeout is None else timeout
        return None if t is None else time.monotonic() + t

    def _raise_orphan_error(self) -> None:
        # an error with id null answers no request of ours by id: a batch refused whole, a line too long. It goes
        # to whoever waits first, which is the request that caused it for a client that does not pipeline.
        if self._orphan_errors:
            raise self._orphan_errors.popleft()

    def _read(self, what: str, deadline: Optional[float]) -> None:
        """Reads one line and files it where its reader will look."""
        if self._closed:
            raise ConnectionClosed("the client is closed")
        try:
            message, fds = self._wire.read(deadline)
        except TimeoutError:
            raise TimeoutError("no %s within the timeout" % what) from None
        if isinstance(message, list):
            self._batches.append([_reply(element, fds) for element in message])
            _close_unnamed(fds, message)
        elif not isinstance(message, dict):
            _close_all(fds)
            raise ProtocolError("the server sent a line that is neither an object nor an array: %r" % (message,))
        elif "method" in message and "id" not in message:
            _close_all(fds)
            if message["method"] == "event":
                self._events.append(Event.from_json(message["params"]))
            else:
                self._notifications.append((message["method"], message.get("params")))
        elif message.get("id") is None:
            _close_all(fds)
            self._orphan_errors.append(RpcError.from_json(message.get("error") or {}))
        else:
            self._responses[message["id"]] = _reply(message, fds)


class Subscription:
    """An ``events.subscribe``, iterable: ``for event in sub`` yields its :class:`Event` objects until the
    connection closes; ``sub.next(timeout)`` and ``sub.events(timeout)`` bound the wait.

    ``heads`` is each device's last seq when it began. ``positions`` follows the last seq seen per device, gaps
    reported by ``events.lost`` included, so ``client.subscribe(since=sub.positions)`` on a new connection goes on
    where this one stopped (for as long as the server retains the events). ``lost`` counts the events reported
    lost. Events carry no subscription id: the subscriptions of one connection share its event stream (each takes
    the next event of its devices), so one subscription per connection keeps them apart."""

    def __init__(self, client: Client, sub_id: str, heads: Mapping[str, int],
                 since: Optional[Mapping[str, int]]) -> None:
        self.client = client
        self.id = sub_id
        self.heads: Dict[str, int] = dict(heads)
        self.devices: Set[str] = set(heads)
        self.positions: Dict[str, int] = dict(heads)
        if since is not None:
            self.positions.update({d: min(s, self.heads[d]) for d, s in since.items() if d in self.heads})
        self.lost = 0

    def next(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next event of this subscription's devices, or None when none comes within ``timeout`` seconds."""
        event = self.client.next_event(timeout, self.devices)
        if event is not None:
            if event.lost and event.from_seq is not None and event.to_seq is not None:
                self.lost += event.to_seq - event.from_seq + 1
            self.positions[event.device] = max(self.positions.get(event.device, 0), event.last_seq)
        return event

    def events(self, timeout: Optional[float] = None) -> Iterator[Event]:
        """The events, one after the other, until the server closes the connection (the iteration then ends).
        With ``timeout``, a wait longer than that for the next event raises TimeoutError."""
        while True:
            try:
                event = self.next(timeout)
            except ConnectionClosed:
                return
            if event is None:
                raise TimeoutError("no event of subscription %s within %s s" % (self.id, timeout))
            yield event

    def __iter__(self) -> Iterator[Event]:
        """``events()`` without a bound on the wait: ``for event in sub`` is a watcher's loop."""
        return self.events(None)

    def close(self) -> None:
        """``events.unsubscribe``."""
        self.client.unsubscribe(self.id)


def _range_json(r: RangeLike) -> Dict[str, int]:
    if isinstance(r, Range):
        return r.to_json()
    if isinstance(r, tuple):
        return {"offset": r[0], "length": r[1]}
    return dict(r)


def _reply(message: Any, fds: List[Fd]) -> Reply:
    if not isinstance(message, dict):
        raise ProtocolError("a batch element is not an object: %r" % (message,))
    if isinstance(message.get("error"), dict):
        return Reply(message.get("id"), error=RpcError.from_json(message["error"]))
    result = message.get("result")
    fd = None
    if isinstance(result, dict) and "fd_index" in result:
        index = result["fd_index"]
        if not isinstance(index, int) or not 0 <= index < len(fds):
            _close_all(fds)
            raise ProtocolError("fd_index %r out of the %d fds of its line" % (index, len(fds)))
        fd = fds[index]
    return Reply(message.get("id"), result=result, fd=fd)


def _close_unnamed(fds: List[Fd], batch: List[Any]) -> None:
    """Closes fds of a batch line that no element's fd_index names (none, from a conforming server)."""
    named = {e["result"]["fd_index"] for e in batch
             if isinstance(e, dict) and isinstance(e.get("result"), dict) and "fd_index" in e["result"]}
    for i, fd in enumerate(fds):
        if i not in named:
            fd.close()


def _close_all(fds: List[Fd]) -> None:
    for fd in fds:
        fd.close()
