"""Shared by the deployment tests: the repository, its jar and JDK, required tools, and a daemon process."""
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
import unittest
from typing import Dict, List, Optional

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
JAR = os.path.join(REPO, "target", "vfio-export-0.1.0.jar")
START_TIMEOUT = 60.0  # a JVM start on a busy 2-core machine: a few seconds
STOP_TIMEOUT = 10.0   # the daemon stops within 2 s of SIGTERM


def in_ci() -> bool:
    """CI sets CI=true: there a missing tool is a failure, not a skip (.ci/run installs every one)."""
    return os.environ.get("CI") == "true"


def require(test: unittest.TestCase, what: str, present: bool) -> None:
    if present:
        return
    if in_ci():
        test.fail("%s is required in CI (.ci/run installs it)" % what)
    test.skipTest("%s is not available here" % what)


def java_home(test: unittest.TestCase) -> str:
    out = subprocess.run([os.path.join(REPO, "bin", "jdk25")], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         check=False)
    require(test, "a JDK 25 (bin/jdk25)", out.returncode == 0)
    return out.stdout.decode().strip()


def require_jar(test: unittest.TestCase) -> None:
    require(test, "the daemon's jar %s (bin/mvn25 -DskipTests package)" % os.path.relpath(JAR, REPO),
            os.path.exists(JAR))


def tool(name: str) -> Optional[str]:
    return shutil.which(name) or next((p for p in ("/usr/sbin/" + name, "/sbin/" + name) if os.path.exists(p)), None)


class Process:
    """A command whose stdout is read line by line (bounded waits) and whose stderr goes to a file."""

    def __init__(self, argv: List[str], cwd: str, stderr_path: str, env: Optional[Dict[str, str]] = None) -> None:
        self.argv = argv
        self._stderr_path = stderr_path
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self.stdout: List[str] = []
        with open(stderr_path, "wb") as err:
            self.process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.PIPE, stderr=err)
        self._pump = threading.Thread(target=self._read, daemon=True)
        self._pump.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for raw in self.process.stdout:
                self._lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self._lines.put(None)

    def stderr(self) -> str:
        with open(self._stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def await_line(self, line: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                got = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("no line %r within %s s from %s; stdout %r, stderr: %s"
                                     % (line, timeout, self.argv, self.stdout, self.stderr())) from None
            if got is None:
                self.process.wait(STOP_TIMEOUT)
                raise AssertionError("%s exited %s before printing %r; stdout %r, stderr: %s"
                                     % (self.argv, self.process.returncode, line, self.stdout, self.stderr()))
            self.stdout.append(got)
            if got == line:
                return

    def stop(self) -> int:
        """SIGTERM, a bounded wait (SIGKILL past it); the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
        self._pump.join(STOP_TIMEOUT)
        return self.process.returncode
