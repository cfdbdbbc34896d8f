"""A real vfio-exportd process for the tests: its own configuration, socket and files in a temp dir of its own."""
import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from typing import Any, Callable, Dict, List, Optional

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
DAEMON = os.path.join(REPO, "bin", "vfio-exportd")
JAR = os.path.join(REPO, "target", "vfio-export-0.1.0.jar")

NVME = "0000:01:00.0"  # the default configuration's simulated devices: BAR0 16 KiB, BAR2 64 MiB, reset method
GPU = "0000:02:00.0"   # BAR0 16 MiB, BAR2 256 MiB, BAR5 I/O ports, no reset method

# starting the JVM takes a few seconds; without the jar, bin/vfio-exportd builds it first (run-tests does that
# before any test, so that this bound is about the daemon, not Maven)
START_TIMEOUT = 60.0 if os.path.exists(JAR) else 300.0
STOP_TIMEOUT = 10.0  # the daemon stops within 2 s of SIGTERM (docs/protocol.md, "Shutdown")


def open_fds() -> List[int]:
    """This process's open fds (the listing's own fd is in both of two listings, so counts compare)."""
    return sorted(int(n) for n in os.listdir("/proc/self/fd"))


class Daemon:
    """``bin/vfio-exportd --conf DIR/vfio-export.json --socket DIR/vfio-export.sock`` on the repository's default
    configuration, edited by ``edit``. Nothing is written outside DIR, a fresh temp dir removed by ``stop()``."""

    def __init__(self, edit: Optional[Callable[[Dict[str, Any]], None]] = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="vfio-export-py-")
        self.socket = os.path.join(self.dir, "vfio-export.sock")
        self.conf = os.path.join(self.dir, "vfio-export.json")
        with open(os.path.join(REPO, "conf", "vfio-export.json"), encoding="utf-8") as f:
            conf = json.load(f)
        conf["socket"] = self.socket
        if edit is not None:
            edit(conf)
        with open(self.conf, "w", encoding="utf-8") as f:
            json.dump(conf, f, indent=2)
        self._stderr = open(os.path.join(self.dir, "stderr.log"), "w+b")
        self._stderr_text = ""
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self.stdout: List[str] = []
        self.process = subprocess.Popen([DAEMON, "--conf", self.conf, "--socket", self.socket], cwd=self.dir,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr)
        self._pump = threading.Thread(target=self._read_stdout, daemon=True)
        self._pump.start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for raw in self.process.stdout:
                self._lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self._lines.put(None)

    @classmethod
    def start(cls, edit: Optional[Callable[[Dict[str, Any]], None]] = None) -> "Daemon":
        """Starts a daemon and waits (bounded) for its ``vfio-exportd: listening on SOCKET`` line."""
        d = cls(edit)
        try:
            d.await_line("vfio-exportd: listening on " + d.socket, START_TIMEOUT)
        except BaseException:
            d.stop()
            raise
        return d

    def await_line(self, line: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                got = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("no line %r from the daemon within %s s; stdout %r, stderr: %s"
                                     % (line, timeout, self.stdout, self.stderr())) from None
            if got is None:
                self.process.wait(STOP_TIMEOUT)
                raise AssertionError("the daemon exited (%s) before printing %r; stdout %r, stderr: %s"
                                     % (self.process.returncode, line, self.stdout, self.stderr()))
            self.stdout.append(got)
            if got == line:
                return

    def stderr(self) -> str:
        """What the daemon wrote on stderr (kept after stop())."""
        if self._stderr.closed:
            return self._stderr_text
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def fd_count(self) -> int:
        return len(os.listdir("/proc/%d/fd" % self.process.pid))

    def stop(self) -> int:
        """SIGTERM, a bounded wait for the exit (SIGKILL past it), then the temp dir goes. The exit status."""
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(STOP_TIMEOUT)
            self._pump.join(STOP_TIMEOUT)
            return self.process.returncode
        finally:
            self._stderr_text = self.stderr()
            self._stderr.close()
            shutil.rmtree(self.dir, ignore_errors=True)
