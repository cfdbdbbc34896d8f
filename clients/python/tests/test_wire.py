"""Framing and fd matching against a scripted peer on a real socketpair, with real fds (memfds of known sizes).

The daemon cannot be made to split lines at a chosen byte; a peer writing exact bytes can, so these cases are
deterministic: fds arriving with the end of an earlier line, a batch's fd_index order, a line naming fds that did
not arrive, and the end of the connection."""
import array
import json
import os
import socket
from typing import Any, Dict, List, Sequence

from vfio_export import Client, ConnectionClosed, ProtocolError, RpcError

from .support import NoLeaksTestCase, fd_size

HELLO = {"jsonrpc": "2.0", "method": "hello", "params": {"server": "vfio-export", "protocol": 1}}


def line(message: Any) -> bytes:
    return json.dumps(message).encode() + b"\n"


def export_result(request_id: int, export_id: str, size: int, fd_index: int = 0) -> Dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id,
            "result": {"export_id": export_id, "device": "0000:01:00.0", "region": 2,
                       "ranges": [{"offset": 0, "length": size}], "size": size, "state": "live", "created_seq": 1,
                       "fd_index": fd_index}}


class WireTest(NoLeaksTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.peer, mine = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(self.peer.close)
        self.peer.sendall(line(HELLO))
        self.client = Client(mine, timeout=10)
        self.addCleanup(self.client.close)

    def memfd(self, size: int) -> int:
        fd = os.memfd_create("test-%d" % size)
        os.ftruncate(fd, size)
        self.addCleanup(os.close, fd)
        return fd

    def send(self, data: bytes, fds: Sequence[int] = ()) -> None:
        """One sendmsg: ``fds`` ride on its first byte."""
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())] if fds else []
        self.assertEqual(len(data), self.peer.sendmsg([data], anc))

    def test_fds_that_arrive_with_the_end_of_an_earlier_line_go_to_the_line_that_names_them(self) -> None:
        first = line({"jsonrpc": "2.0", "id": 1, "result": {"devices": 2}})
        second = line(export_result(2, "e/2", 8192))
        third = line(export_result(3, "e/3", 4096))
        # line 1 but its last byte; that byte and the first of line 2, with line 2's fd (one recvmsg returns it
        # with the end of line 1, which names no fd); the rest of line 2; line 3 with its fd
        self.send(first[:-1])
        self.send(first[-1:] + second[:1], [self.memfd(8192)])
        self.send(second[1:])
        self.send(third, [self.memfd(4096)])
        with self.client.wait(3).export() as e3, self.client.wait(2).export() as e2:
            self.assertEqual(("e/2", 8192, "e/3", 4096), (e2.export_id, fd_size(e2), e3.export_id, fd_size(e3)))
        self.assertIsNone(self.client.wait(1).fd)
        self.assertEqual(0, self.client.unclaimed_fds)

    def test_a_batch_line_takes_all_its_fds_and_fd_index_says_which_is_whose(self) -> None:
        batch = [export_result(1, "e/1", 4096, fd_index=1),
                 {"jsonrpc": "2.0", "id": 2, "error": {"code": -32001, "message": "no such device: x",
                                                       "data": {"device": "x"}}},
                 export_result(3, "e/3", 12288, fd_index=0)]
        self.send(line(batch), [self.memfd(12288), self.memfd(4096)])
        replies = self.client.batch([("export.create", {}), ("device.get", {}), ("export.create", {})])
        with replies[0].export() as a, replies[2].export() as b:
            self.assertEqual((4096, 12288), (fd_size(a), fd_size(b)))
        with self.assertRaises(RpcError) as err:
            replies[1].value()
        self.assertEqual(-32001, err.exception.code)

    def test_a_line_naming_an_fd_that_did_not_arrive_is_a_protocol_error(self) -> None:
        self.send(line(export_result(1, "e/1", 4096)))
        with self.assertRaises(ProtocolError):
            self.client.wait(1)

    def test_events_and_responses_interleave_and_each_goes_to_its_reader(self) -> None:
        event = {"jsonrpc": "2.0", "method": "event",
                 "params": {"seq": 7, "device": "0000:01:00.0", "type": "device.state", "state": "resetting",
                            "cause": "reset", "time": "2026-01-01T00:00:00Z"}}
        lost = {"jsonrpc": "2.0", "method": "event",
                "params": {"device": "0000:01:00.0", "type": "events.lost", "from_seq": 8, "to_seq": 9,
                           "time": "2026-01-01T00:00:00Z"}}
        self.send(line(event) + line({"jsonrpc": "2.0", "id": 1, "result": {"ok": True}}) + line(lost))
        self.assertEqual({"ok": True}, self.client.wait(1).value())
        first, second = self.client.next_event(timeout=1), self.client.next_event(timeout=1)
        assert first is not None and second is not None
        self.assertEqual((7, "device.state", "resetting"), (first.seq, first.type, first.state))
        self.assertEqual((True, None, 9), (second.lost, second.seq, second.last_seq))
        self.assertIsNone(self.client.next_event(timeout=0))

    def test_the_end_of_the_connection_ends_iteration_after_the_queued_events(self) -> None:
        self.peer.sendall(line({"jsonrpc": "2.0", "id": 1,
                                "result": {"subscription": "sub-1", "heads": {"0000:01:00.0": 3}}}))
        sub = self.client.subscribe()
        events: List[Dict[str, Any]] = [{"jsonrpc": "2.0", "method": "event",
                               "params": {"seq": s, "device": "0000:01:00.0", "type": "export.revoked",
                                          "export_id": "e/1", "cause": "reset"}} for s in (4, 5)]
        self.send(b"".join(line(e) for e in events), [self.memfd(4096)])  # a stray fd: closed, never handed out
        self.peer.shutdown(socket.SHUT_WR)
        self.assertEqual([4, 5], [e.seq for e in sub])
        self.assertEqual({"0000:01:00.0": 5}, sub.positions)
        with self.assertRaises(ConnectionClosed):
            self.client.call("server.info")
