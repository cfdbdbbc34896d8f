"""The client against a real daemon process: requests, exports and their fds, errors, batches, pipelining."""
import fcntl
import json
import os
import subprocess
import sys
import tempfile

from vfio_export import (INVALID_PARAMS, INVALID_REQUEST, KERNEL_REFUSED, METHOD_NOT_FOUND, NO_SUCH_DEVICE,
                         NO_SUCH_EXPORT, Client, NoDefaultSocket, Range, RpcError, default_socket)

from .daemon import GPU, NVME, REPO, Daemon
from .support import NoLeaksTestCase, fd_size

KiB = 1024
MiB = 1024 * KiB


class ClientTest(NoLeaksTestCase):
    daemon: Daemon

    @classmethod
    def setUpClass(cls) -> None:
        cls.daemon = Daemon.start()

    @classmethod
    def tearDownClass(cls) -> None:
        code = cls.daemon.stop()
        if code != 0:
            raise AssertionError("the daemon exited %s on SIGTERM; stderr: %s" % (code, cls.daemon.stderr()))

    def connect(self) -> Client:
        c = Client.connect(self.daemon.socket, timeout=30)
        self.addCleanup(c.close)
        return c

    def test_greeting_and_devices(self) -> None:
        c = self.connect()
        self.assertEqual("vfio-export", c.hello["server"])
        self.assertEqual(1, c.hello["protocol"])
        self.assertEqual(self.daemon.process.pid, c.hello["pid"])
        devices = {d.device: d for d in c.devices()}
        self.assertEqual({NVME, GPU}, set(devices))
        nvme = c.device(NVME)
        self.assertEqual(devices[NVME], nvme)
        self.assertTrue(nvme.reset_supported)
        self.assertEqual(("mmio", 64 * MiB, True), (nvme.region(2).kind, nvme.region(2).size,
                                                     nvme.region(2).prefetchable))
        self.assertEqual("io", c.device(GPU).region(5).kind)
        self.assertIn("export.create", c.methods())
        self.assertEqual("sim", c.server_info()["backend"])

    def test_the_default_socket_follows_the_rule_of_the_daemon_and_every_client(self) -> None:
        # the environment and the uid are given: nothing outside the test's temp dir is looked at
        with tempfile.TemporaryDirectory() as tmp:
            self.assertEqual("/run/vfio-export/vfio-export.sock", default_socket({}, 0))
            self.assertEqual("/run/vfio-export/vfio-export.sock", default_socket({"XDG_RUNTIME_DIR": tmp}, 0))
            self.assertEqual(os.path.join(tmp, "vfio-export", "vfio-export.sock"),
                             default_socket({"XDG_RUNTIME_DIR": tmp}, 1000))
            for env in ({}, {"XDG_RUNTIME_DIR": ""}, {"XDG_RUNTIME_DIR": "relative"}):
                with self.assertRaises(NoDefaultSocket) as none:
                    default_socket(env, 1000)
                self.assertIn("XDG_RUNTIME_DIR", str(none.exception))
                self.assertIn("VFIO_EXPORT_SOCKET", str(none.exception))
            named = os.path.join(tmp, "named.sock")
            self.assertEqual(named, default_socket({"VFIO_EXPORT_SOCKET": named, "XDG_RUNTIME_DIR": tmp}, 1000))
            self.assertEqual(named, default_socket({"VFIO_EXPORT_SOCKET": named}, 0))
            self.assertEqual("/run/vfio-export/vfio-export.sock", default_socket({"VFIO_EXPORT_SOCKET": ""}, 0))
            self.assertEqual(os.path.join(os.getcwd(), "rel.sock"), default_socket({"VFIO_EXPORT_SOCKET": "rel.sock"}, 0))

    def test_connect_without_a_path_takes_the_environment_variable(self) -> None:
        saved = os.environ.pop("VFIO_EXPORT_SOCKET", None)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                os.environ["VFIO_EXPORT_SOCKET"] = self.daemon.socket
                self.assertEqual(self.daemon.socket, default_socket())
                with Client.connect() as c:
                    self.assertEqual(self.daemon.process.pid, c.hello["pid"])
                os.environ["VFIO_EXPORT_SOCKET"] = os.path.join(tmp, "absent.sock")
                with self.assertRaises(FileNotFoundError) as missing:
                    Client.connect()
                self.assertIn("VFIO_EXPORT_SOCKET", str(missing.exception))
        finally:
            os.environ.pop("VFIO_EXPORT_SOCKET", None)
            if saved is not None:
                os.environ["VFIO_EXPORT_SOCKET"] = saved

    def test_an_export_comes_with_its_dma_buf_fd_which_outlives_the_release(self) -> None:
        c = self.connect()
        with c.export(NVME, region=2, offset=0x1000, length=0x3000) as e:
            self.assertEqual((NVME, 2, [Range(0x1000, 0x3000)], 0x3000, "live"),
                             (e.device, e.region, e.ranges, e.size, e.state))
            fd = e.fileno()
            self.assertEqual(0x3000, os.fstat(fd).st_size)
            self.assertEqual(0x3000, os.lseek(fd, 0, os.SEEK_END))
            self.assertTrue(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC, "received fds are close-on-exec")
            self.assertEqual([e.export_id], [x.export_id for x in c.exports(NVME)])
            self.assertEqual("live", c.get_export(e.export_id).state)
            self.assertEqual(0, c.unclaimed_fds)

            c.release(e)
            self.assertEqual([], c.exports())
            self.assertEqual(0x3000, fd_size(e), "the fd stays this process's after the release")
            with self.assertRaises(RpcError) as again:
                c.release(e.export_id)
            self.assertEqual(NO_SUCH_EXPORT, again.exception.code)
            self.assertEqual({"export_id": e.export_id}, again.exception.data)
        self.assertTrue(e.fd is not None and e.fd.closed, "leaving the with block closes the fd")
        with self.assertRaises(ValueError):
            e.fileno()

    def test_an_export_of_several_ranges_has_their_total_size(self) -> None:
        c = self.connect()
        with c.export(GPU, 0, ranges=[(0, 4 * KiB), Range(64 * KiB, 8 * KiB), {"offset": 8 * KiB, "length": 4 * KiB}],
                      open_flags=["rdwr", "cloexec"]) as e:
            self.assertEqual(16 * KiB, e.size)
            self.assertEqual(16 * KiB, fd_size(e))
            c.release(e)

    def test_errors_carry_their_stable_code_message_and_data(self) -> None:
        c = self.connect()
        with self.assertRaises(RpcError) as unknown:
            c.export("0000:09:00.0", 2, 0, 4 * KiB)
        self.assertEqual((NO_SUCH_DEVICE, "NO_SUCH_DEVICE", {"device": "0000:09:00.0"}),
                         (unknown.exception.code, unknown.exception.name, unknown.exception.data))
        self.assertIn("0000:09:00.0", unknown.exception.message)
        self.assertTrue(str(unknown.exception).endswith("(error -32001)"), str(unknown.exception))

        with self.assertRaises(RpcError) as negative:
            c.export(NVME, 2, -4096, 4 * KiB)
        self.assertEqual((INVALID_PARAMS, {"field": "offset"}), (negative.exception.code, negative.exception.data))

        with self.assertRaises(RpcError) as missing:
            c.export(NVME, 2, offset=0)
        self.assertEqual((INVALID_PARAMS, {"field": "length"}), (missing.exception.code, missing.exception.data))

        with self.assertRaises(RpcError) as past:
            c.export(NVME, 0, 0, 0x5000)  # BAR0 is 16 KiB
        self.assertEqual(KERNEL_REFUSED, past.exception.code)
        self.assertEqual("EINVAL", past.exception.data["name"])

        with self.assertRaises(RpcError) as method:
            c.call("device.explode")
        self.assertEqual((METHOD_NOT_FOUND, {"method": "device.explode"}),
                         (method.exception.code, method.exception.data))
        self.assertEqual([], c.exports(), "no error left an export behind")

    def test_a_batch_answers_in_order_and_its_exports_carry_their_own_fds(self) -> None:
        c = self.connect()
        replies = c.batch([
            ("export.create", {"device": NVME, "region": 2, "offset": 0, "length": 8 * KiB}),
            ("device.get", {"device": "0000:09:00.0"}),
            ("export.create", {"device": GPU, "region": 2, "offset": 0, "length": 12 * KiB}),
            ("server.info", None),
        ])
        self.assertEqual(4, len(replies))
        with replies[0].export() as a, replies[2].export() as b:
            self.assertEqual((8 * KiB, 8 * KiB), (a.size, fd_size(a)))
            self.assertEqual((12 * KiB, 12 * KiB), (b.size, fd_size(b)))
            with self.assertRaises(RpcError) as err:
                replies[1].value()
            self.assertEqual(NO_SUCH_DEVICE, err.exception.code)
            self.assertIsNone(replies[1].fd)
            self.assertEqual(2, replies[3].value()["devices"])
            self.assertEqual({a.export_id, b.export_id}, {e.export_id for e in c.exports()})
            c.release(a)
            c.release(b)

    def test_a_batch_refused_whole_raises_and_the_connection_goes_on(self) -> None:
        c = self.connect()
        with self.assertRaises(RpcError) as empty:
            c.batch([])
        self.assertEqual(INVALID_REQUEST, empty.exception.code)
        too_many = [("export.create", {"device": NVME, "region": 2, "offset": 0, "length": 4 * KiB})] * 254
        with self.assertRaises(RpcError) as refused:
            c.batch(too_many)
        self.assertEqual(INVALID_REQUEST, refused.exception.code)
        self.assertEqual([], c.exports(), "nothing of a batch refused whole ran")
        self.assertEqual(2, c.server_info()["devices"])

    def test_pipelined_requests_each_get_their_own_fd_whatever_the_order_of_waiting(self) -> None:
        c = self.connect()
        sizes = [4 * KiB, 8 * KiB, 12 * KiB, 16 * KiB, 20 * KiB, 24 * KiB]
        ids = []
        for i, size in enumerate(sizes):
            device = NVME if i % 2 == 0 else GPU
            ids.append(c.send("export.create", {"device": device, "region": 2, "offset": 0, "length": size}))
        info = c.send("server.info")
        self.assertEqual(2, c.wait(info).value()["devices"], "a later response waited for first")
        exports = [c.wait(i).export() for i in reversed(ids)]
        try:
            for e, size in zip(exports, reversed(sizes)):
                self.assertEqual((size, size), (e.size, fd_size(e)))
            self.assertEqual(0, c.unclaimed_fds)
        finally:
            for e in exports:
                c.release(e)
                e.close()

    def test_call_closes_the_fd_of_its_response_and_close_closes_unclaimed_ones(self) -> None:
        c = self.connect()
        result = c.call("export.create", {"device": NVME, "region": 2, "offset": 0, "length": 4 * KiB})
        self.assertEqual(0, result["fd_index"])
        c.release(result["export_id"])
        # a response nobody waits for: read while waiting for a later response about the same device (those leave
        # in request order), its fd is the client's until close(); the fd count after the test checks it was closed
        c.send("export.create", {"device": NVME, "region": 2, "offset": 0, "length": 4 * KiB})
        c.call("device.get", {"device": NVME})
        c.close()
        self.assertTrue(c.closed)

    def test_the_example_client_runs(self) -> None:
        out = subprocess.run([sys.executable, os.path.join(REPO, "docs", "example_client.py"), "--socket",
                              self.daemon.socket, "--device", NVME, "--region", "2", "--length", "0x3000"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60, check=False)
        steps = [json.loads(line) for line in out.stdout.decode().splitlines()]
        self.assertEqual(0, out.returncode, steps)
        self.assertEqual(["hello", "devices", "subscribed", "exported", "released"], [s["step"] for s in steps])
        self.assertEqual((0x3000, 0x3000), (steps[3]["size"], steps[3]["fd_size"]))
        self.assertEqual(["export.created", "export.released"], steps[4]["events"])
