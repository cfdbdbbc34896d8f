"""contrib/systemd/vfio-exportd.service: systemd-analyze verify and security on it, its keys, and its ExecStart run
for real in as much of its sandbox as can be made without systemd as PID 1."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from typing import Dict, List

from .support import REPO, Process, require, require_jar, tool

UNIT = os.path.join(REPO, "contrib", "systemd", "vfio-exportd.service")
SOCKET_UNIT = os.path.join(REPO, "contrib", "systemd", "vfio-exportd.socket")
INSTALL = "/opt/vfio-export"  # where the unit expects the checkout
EXPOSURE_THRESHOLD = 20       # systemd-analyze security's scale is 0-100 (shown /10): 2.0 at most, "OK"


def parse_unit(text: str) -> Dict[str, Dict[str, List[str]]]:
    """Sections of keys, each key with every value it was given in order (DeviceAllow= repeats)."""
    sections: Dict[str, Dict[str, List[str]]] = {}
    current = None
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if pending:
            line, pending = pending + " " + line, ""
        if not line or line.startswith(("#", ";")):
            continue
        if line.endswith("\\"):
            pending = line[:-1].strip()
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, "a key before any section: " + line
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


class SystemdUnitTest(unittest.TestCase):
    text: str
    unit: Dict[str, Dict[str, List[str]]]

    @classmethod
    def setUpClass(cls) -> None:
        with open(UNIT, encoding="utf-8") as f:
            cls.text = f.read()
        cls.unit = parse_unit(cls.text)

    def service(self, key: str) -> str:
        values = self.unit["Service"].get(key)
        self.assertIsNotNone(values, "[Service] %s= is set" % key)
        assert values is not None
        return values[-1]

    def exec_start(self) -> List[str]:
        return self.service("ExecStart").split()

    def installed_copy(self, tmp: str) -> str:
        """The unit as if the checkout were at /opt/vfio-export: this repository's path instead, so that verify
        finds the ExecStart program."""
        path = os.path.join(tmp, "vfio-exportd.service")
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.text.replace(INSTALL, REPO))
        return path

    # ---- systemd's own checks -----------------------------------------------------------------------------------

    def test_systemd_analyze_verify_finds_nothing(self) -> None:
        analyze = tool("systemd-analyze")
        require(self, "systemd-analyze (Debian's systemd)", analyze is not None)
        assert analyze is not None
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run([analyze, "verify", self.installed_copy(tmp)], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, universal_newlines=True, timeout=60, check=False)
        self.assertEqual(0, out.returncode, out.stdout)
        self.assertEqual("", out.stdout.strip(), "no warning (unknown keys, bad values, missing programs)")

    def test_systemd_analyze_verify_finds_nothing_in_the_socket_unit(self) -> None:
        """vfio-exportd.socket verified with its service beside it (verify resolves the unit it activates)."""
        analyze = tool("systemd-analyze")
        require(self, "systemd-analyze (Debian's systemd)", analyze is not None)
        assert analyze is not None
        with tempfile.TemporaryDirectory() as tmp:
            socket_unit = os.path.join(tmp, "vfio-exportd.socket")
            shutil.copy(SOCKET_UNIT, socket_unit)
            out = subprocess.run([analyze, "verify", socket_unit, self.installed_copy(tmp)],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                                 timeout=60, check=False)
        self.assertEqual(0, out.returncode, out.stdout)
        self.assertEqual("", out.stdout.strip(), "no warning (unknown keys, bad values, missing programs)")

    def test_the_socket_unit_listens_where_the_service_serves(self) -> None:
        with open(SOCKET_UNIT, encoding="utf-8") as f:
            socket_unit = parse_unit(f.read())
        self.assertEqual([self.exec_start()[-1]], socket_unit["Socket"]["ListenStream"],
                         "one stream socket, at the service's --socket path")
        self.assertEqual(["0660"], socket_unit["Socket"]["SocketMode"])
        self.assertEqual("yes", self.service("RuntimeDirectoryPreserve"),
                         "stopping the service must not remove the directory holding systemd's socket")
        self.assertEqual(["sockets.target"], socket_unit["Install"]["WantedBy"])

    def test_systemd_analyze_security_rates_it_ok(self) -> None:
        analyze = tool("systemd-analyze")
        require(self, "systemd-analyze (Debian's systemd)", analyze is not None)
        assert analyze is not None
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run([analyze, "security", "--offline=yes", "--threshold=%d" % EXPOSURE_THRESHOLD,
                                  self.installed_copy(tmp)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 universal_newlines=True, timeout=60, check=False)
        self.assertEqual(0, out.returncode, "exposure above %.1f:\n%s" % (EXPOSURE_THRESHOLD / 10, out.stdout))

    # ---- the keys the daemon depends on -------------------------------------------------------------------------

    def test_exec_start_runtime_directory_and_type(self) -> None:
        argv = self.exec_start()
        self.assertEqual(INSTALL + "/bin/vfio-exportd", argv[0])
        self.assertEqual(["--conf", "/etc/vfio-export/vfio-export.json", "--socket",
                          "/run/vfio-export/vfio-export.sock"], argv[1:])
        self.assertEqual("vfio-export", self.service("RuntimeDirectory"))
        self.assertEqual("/run/" + self.service("RuntimeDirectory"), os.path.dirname(argv[-1]))
        self.assertEqual("0755", self.service("RuntimeDirectoryMode"),
                         "the daemon refuses a socket directory that group or others may write")
        self.assertEqual("notify", self.service("Type"))
        self.assertEqual("main", self.service("NotifyAccess"))
        self.assertIn("READY=1", self.text, "the comment says what the daemon notifies")

    def test_the_sandbox_lets_in_the_vfio_devices_and_nothing_else(self) -> None:
        self.assertEqual("closed", self.service("DevicePolicy"))
        self.assertEqual(["/dev/vfio/vfio rw", "/dev/iommu rw", "char-vfio rw", "char-vfio-dev rw"],
                         self.unit["Service"]["DeviceAllow"])
        self.assertNotIn("PrivateDevices", self.unit["Service"], "it would hide /dev/vfio")
        for key, value in (("ProtectSystem", "strict"), ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                           ("NoNewPrivileges", "yes"), ("PrivateNetwork", "yes"),
                           ("CapabilityBoundingSet", "CAP_SYS_RESOURCE"), ("LimitMEMLOCK", "infinity")):
            self.assertEqual(value, self.service(key), key)
        self.assertGreaterEqual(int(self.service("LimitNOFILE")), 65536,
                                "the per-uid defaults are shares of it: 16384 exports need 65536")
        self.assertNotIn("MemoryDenyWriteExecute", self.unit["Service"], "the JIT writes code")
        self.assertEqual("EPERM", self.service("SystemCallErrorNumber"), "a filtered call fails, the JVM lives")
        self.assertIn("AF_UNIX", self.service("RestrictAddressFamilies").split())
        self.assertEqual(["multi-user.target"], self.unit["Install"]["WantedBy"])

    # ---- the daemon in the sandbox ------------------------------------------------------------------------------

    def test_exec_start_serves_in_the_sandbox_that_can_be_made_here(self) -> None:
        """ExecStart, the checkout and configuration mapped into a temp dir, run in: a network namespace of its
        own with loopback up (PrivateNetwork), a mount namespace where the system's and this checkout's
        directories are read-only (ProtectSystem=strict, ProtectHome) but the socket's directory and /tmp,
        capabilities bounded to CapabilityBoundingSet, no_new_privs, UMask. Not reproduced: the device cgroup,
        the system call filter, the rlimits above this machine's hard limits."""
        require_jar(self)
        unshare, setpriv, ip = tool("unshare"), tool("setpriv"), tool("ip")
        require(self, "root (namespaces and mounts)", os.geteuid() == 0)
        require(self, "unshare, setpriv (util-linux) and ip (iproute2)", None not in (unshare, setpriv, ip))
        caps = self.service("CapabilityBoundingSet").lower().replace("cap_", "+")
        with tempfile.TemporaryDirectory(prefix="vfio-export-unit-") as tmp:
            conf = os.path.join(tmp, "etc", "vfio-export.json")
            os.makedirs(os.path.dirname(conf))
            shutil.copy(os.path.join(REPO, "conf", "vfio-export.json"), conf)
            run_dir = os.path.join(tmp, "run", self.service("RuntimeDirectory"))
            os.makedirs(run_dir, mode=0o755)
            os.chmod(run_dir, 0o755)
            socket_path = os.path.join(run_dir, "vfio-export.sock")
            argv = [a.replace(INSTALL, REPO).replace("/etc/vfio-export/vfio-export.json", conf)
                    .replace("/run/vfio-export/vfio-export.sock", socket_path) for a in self.exec_start()]
            read_only = [p for p in ("/usr", "/etc", "/var", "/opt", "/root", "/home", "/srv", REPO)
                         if os.path.isdir(p) and not _contains(p, tmp)]
            script = "\n".join([
                "set -e",
                '"$IP" link set lo up',
                'for d in $READ_ONLY; do mount --bind "$d" "$d"; mount -o remount,bind,ro "$d"; done',
                "umask %s" % self.service("UMask"),
                'exec "$SETPRIV" --no-new-privs --bounding-set=-all,%s --inh-caps=-all -- "$@"' % caps,
            ])
            env = dict(os.environ, IP=str(ip), SETPRIV=str(setpriv), READ_ONLY=" ".join(read_only))
            cmd = [str(unshare), "--net", "--mount", "--propagation", "private", "--", "bash", "-c", script,
                   "sandbox"] + argv
            daemon = Process(cmd, tmp, os.path.join(tmp, "stderr.log"), env=env)
            try:
                daemon.await_line("vfio-exportd: listening on " + socket_path)
                self.assertNotEqual(os.readlink("/proc/self/ns/net"),
                                    os.readlink("/proc/%d/ns/net" % daemon.process.pid), "its own network")
                with open("/proc/%d/status" % daemon.process.pid, encoding="ascii") as f:
                    status = dict(line.split(":", 1) for line in f if ":" in line)
                self.assertEqual("1", status["NoNewPrivs"].strip())
                self.assertEqual(0, int(status["CapBnd"], 16) & ~(1 << 24), "at most CAP_SYS_RESOURCE (24)")
                client = subprocess.run([sys.executable, os.path.join(REPO, "docs", "example_client.py"),
                                         "--socket", socket_path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        universal_newlines=True, timeout=60, check=False)
                self.assertEqual(0, client.returncode, client.stdout)
                last = json.loads(client.stdout.splitlines()[-1])
                self.assertEqual(["export.created", "export.released"], last["events"])
            finally:
                code = daemon.stop()
            self.assertEqual(0, code, daemon.stderr())
            # the socket is removed at the stop; the lock file stays, and so does the audit journal, which defaults
            # to the socket's directory (a system install points audit.path at persistent storage: README)
            left = sorted(os.listdir(run_dir))
            self.assertNotIn("vfio-export.sock", left, "the socket is removed at the stop")
            self.assertEqual(["vfio-export.audit.jsonl", "vfio-export.audit.jsonl.lock", "vfio-export.sock.lock"], left)


def _contains(parent: str, path: str) -> bool:
    parent, path = os.path.realpath(parent), os.path.realpath(path)
    return path == parent or path.startswith(parent.rstrip("/") + "/")
