"""docker/Dockerfile without a container engine: linted (dockerfile-utils, from npm), parsed and checked against
the repository, and its ENTRYPOINT, CMD and HEALTHCHECK run for real against the built jar, with the image's
paths (/opt/vfio-export, /etc/vfio-export, /run/vfio-export) mapped into a temp dir laid out as the image is."""
import fnmatch
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .support import JAR, REPO, Process, java_home, require, require_jar

DOCKERFILE = os.path.join(REPO, "docker", "Dockerfile")
LINTER_VERSION = "0.16."  # dockerfile-utils, as .ci/run installs it
EXEC_FORM = ("ENTRYPOINT", "CMD", "VOLUME")


@dataclass
class Instruction:
    line: int
    keyword: str
    args: str
    flags: Dict[str, str] = field(default_factory=dict)

    def exec_form(self) -> Optional[List[str]]:
        """The JSON array of the exec form, None for the shell form."""
        if not self.args.startswith("["):
            return None
        value = json.loads(self.args)  # a '[' that is not JSON is a mistake: Docker would run it as a shell line
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("line %d: not a JSON array of strings: %s" % (self.line, self.args))
        return value


@dataclass
class Stage:
    base: str
    name: Optional[str]
    instructions: List[Instruction]

    def all(self, keyword: str) -> List[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def one(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        if len(found) != 1:
            raise AssertionError("stage %s has %d %s instructions, not one" % (self.name, len(found), keyword))
        return found[0]

    def arg_defaults(self) -> Dict[str, str]:
        out = {}
        for i in self.all("ARG"):
            name, _, default = i.args.partition("=")
            out[name.strip()] = default.strip()
        return out


def parse(text: str) -> List[Instruction]:
    """Instructions as Docker reads them: comment lines dropped (inside continuations too), lines ending in a
    backslash joined, leading --flag=value options split off."""
    out: List[Instruction] = []
    pending: List[str] = []
    start = 0
    for n, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not pending and not stripped:
            continue
        if stripped.startswith("#"):
            continue
        if not pending:
            start = n
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        logical = " ".join(p for p in pending if p)
        pending = []
        keyword, _, rest = logical.partition(" ")
        rest = rest.strip()
        flags: Dict[str, str] = {}
        while rest.startswith("--"):
            token, _, rest = rest.partition(" ")
            name, _, value = token[2:].partition("=")
            flags[name] = value
            rest = rest.strip()
        out.append(Instruction(start, keyword.upper(), rest, flags))
    if pending:
        raise ValueError("the Dockerfile ends inside a continuation")
    return out


def stages(instructions: List[Instruction]) -> List[Stage]:
    out: List[Stage] = []
    for i in instructions:
        if i.keyword == "FROM":
            words = i.args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            out.append(Stage(words[0], name, []))
        elif not out:
            if i.keyword != "ARG":
                raise ValueError("line %d: %s before the first FROM" % (i.line, i.keyword))
        else:
            out[-1].instructions.append(i)
    return out


def header(text: str) -> str:
    """The comment block at the top of the file."""
    lines = []
    for raw in text.splitlines():
        if not raw.startswith("#"):
            break
        lines.append(raw[1:])
    return "\n".join(lines)


class DockerfileTest(unittest.TestCase):
    text: str
    final: Stage
    build: Stage

    @classmethod
    def setUpClass(cls) -> None:
        with open(DOCKERFILE, encoding="utf-8") as f:
            cls.text = f.read()
        all_stages = stages(parse(cls.text))
        cls.build, cls.final = all_stages[0], all_stages[-1]

    def entrypoint(self) -> List[str]:
        return self.final.one("ENTRYPOINT").exec_form() or []

    def cmd(self) -> List[str]:
        return self.final.one("CMD").exec_form() or []

    def healthcheck(self) -> Instruction:
        return self.final.one("HEALTHCHECK")

    def healthcheck_command(self) -> List[str]:
        args = self.healthcheck().args
        self.assertTrue(args.startswith("CMD "), "HEALTHCHECK CMD ...: " + args)
        command = Instruction(self.healthcheck().line, "CMD", args[4:].strip()).exec_form()
        self.assertIsNotNone(command, "the health check's command is in exec form (no shell in the way)")
        return command or []

    def flag(self, argv: List[str], name: str) -> str:
        self.assertIn(name, argv)
        return argv[argv.index(name) + 1]

    # ---- lint ---------------------------------------------------------------------------------------------------

    def test_dockerfile_utils_finds_no_problem(self) -> None:
        linter = os.environ.get("DOCKERFILE_UTILS") or shutil.which("dockerfile-utils") or os.path.join(
            REPO, "target", "ci-tools", "node_modules", ".bin", "dockerfile-utils")
        require(self, "dockerfile-utils (npm)", os.path.exists(linter))
        version = subprocess.run([linter, "--version"], stdout=subprocess.PIPE, check=True).stdout.decode().strip()
        self.assertRegex(version, r"version %s\d" % re.escape(LINTER_VERSION), "the version .ci/run installs")
        out = subprocess.run([linter, "lint", "--json", DOCKERFILE], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             timeout=60, check=False)
        problems = json.loads(out.stdout.decode() or "null")
        self.assertEqual([], problems, out.stderr.decode())
        self.assertEqual(0, out.returncode, out.stderr.decode())

    # ---- structure ----------------------------------------------------------------------------------------------

    def test_two_stages_the_final_one_copying_the_build_from_the_first(self) -> None:
        self.assertEqual("build", self.build.name)
        self.assertTrue(self.build.base.startswith("maven:") and "temurin-25" in self.build.base, self.build.base)
        self.assertEqual("eclipse-temurin:25-jre", self.final.base)
        froms = {i.flags["from"] for i in self.final.all("COPY") if "from" in i.flags}
        self.assertEqual({"build"}, froms)
        with open(os.path.join(REPO, "pom.xml"), encoding="utf-8") as f:
            pom = f.read()
        artifact = re.search(r"<artifactId>([^<]+)</artifactId>\s*<version>([^<]+)</version>", pom)
        assert artifact is not None
        jar = "/src/target/%s-%s.jar" % artifact.groups()
        self.assertIn(jar, [i.args.split()[0] for i in self.final.all("COPY")], "the jar the build makes")

    def test_the_final_stage_runs_as_a_non_root_numeric_user_it_creates(self) -> None:
        user = self.final.all("USER")[-1].args
        uid = re.sub(r"\$\{?(\w+)\}?", lambda m: self.final.arg_defaults()[m.group(1)], user)
        self.assertRegex(uid, r"^\d+$", "a numeric uid (runAsNonRoot can check it), no group (groups from /etc/group)")
        self.assertNotEqual(0, int(uid))
        run = " ".join(i.args for i in self.final.all("RUN"))
        self.assertRegex(run, r"useradd [^&]*--uid \"?\$\{?VFIO_EXPORT_UID\}?\"?")
        self.assertIn("VFIO_GID", run, "the device group can be baked in")

    def test_entrypoint_and_cmd_are_exec_form_and_cmd_holds_the_default_flags(self) -> None:
        entry, cmd = self.entrypoint(), self.cmd()
        self.assertEqual("java", entry[0])
        self.assertEqual(["-jar", "/opt/vfio-export/vfio-export.jar", "daemon"], entry[-3:])
        with open(os.path.join(REPO, "bin", "vfio-exportd"), encoding="utf-8") as f:
            launcher = f.read()
        jvm_flags = re.findall(r"(--[\w-]+=[\w-]+)", launcher[launcher.index('exec "$JAVA_HOME/bin/java"'):])
        self.assertTrue(jvm_flags)
        self.assertEqual(jvm_flags, entry[1:-3], "the JVM flags of bin/vfio-exportd")
        conf, socket_path = self.flag(cmd, "--conf"), self.flag(cmd, "--socket")
        self.assertEqual(4, len(cmd))
        copies = {i.args.split()[-1]: i.args.split()[0] for i in self.final.all("COPY") if "from" not in i.flags}
        self.assertEqual("conf/vfio-export.json", copies.get(conf), "the policy file is the repository's, copied")
        volumes = [v for i in self.final.all("VOLUME") for v in (i.exec_form() or i.args.split())]
        self.assertEqual([os.path.dirname(socket_path)], volumes, "the socket lives on the one volume")
        self.assertIn("VFIO_EXPORT_SOCKET=" + socket_path, [i.args for i in self.final.all("ENV")])
        self.assertEqual([], self.final.all("EXPOSE"), "a Unix socket, no port")

    def test_forgotten_flags_fall_back_to_the_same_places(self) -> None:
        # the daemon's default configuration is conf/vfio-export.json, relative to the working directory: the image
        # links it there; the socket comes from VFIO_EXPORT_SOCKET, which the daemon reads as the clients do (the
        # configuration names none, and a non-root uid without XDG_RUNTIME_DIR has no default)
        workdir = self.final.all("WORKDIR")[-1].args
        run = " ".join(i.args for i in self.final.all("RUN"))
        self.assertIn("ln -s %s %s/conf" % (os.path.dirname(self.flag(self.cmd(), "--conf")), workdir), run)
        with open(os.path.join(REPO, "conf", "vfio-export.json"), encoding="utf-8") as f:
            self.assertNotIn("socket", json.load(f))
        self.assertEqual(self.flag(self.cmd(), "--socket"), image_env(self.final)["VFIO_EXPORT_SOCKET"])
        self.assertEqual("vfio-export.sock", os.path.basename(self.flag(self.cmd(), "--socket")))

    def test_the_healthcheck_runs_the_image_cli_on_the_socket_with_a_bounded_time(self) -> None:
        hc = self.healthcheck()
        for name in ("interval", "timeout", "start-period", "retries"):
            self.assertIn(name, hc.flags)
        command = self.healthcheck_command()
        self.assertEqual("java", command[0])
        self.assertIn("/opt/vfio-export/vfio-export.jar", command)
        self.assertEqual(self.flag(self.cmd(), "--socket"), self.flag(command, "--socket"))
        self.assertEqual("devices", command[-1])

    def test_no_add_and_every_copied_source_exists_and_is_not_ignored(self) -> None:
        self.assertEqual([], [i.line for s in (self.build, self.final) for i in s.all("ADD")],
                         "COPY only: ADD would fetch URLs and unpack archives")
        with open(os.path.join(REPO, ".dockerignore"), encoding="utf-8") as f:
            ignored = [p.strip().rstrip("/") for p in f if p.strip() and not p.startswith("#")]
        for stage in (self.build, self.final):
            for i in stage.all("COPY"):
                if "from" in i.flags:
                    continue
                for source in i.args.split()[:-1]:
                    self.assertTrue(os.path.exists(os.path.join(REPO, source)), "line %d: %s" % (i.line, source))
                    top = source.split("/")[0]
                    self.assertFalse(any(fnmatch.fnmatch(top, p) for p in ignored),
                                     "line %d: %s is in .dockerignore" % (i.line, source))

    def test_the_header_and_readme_say_how_to_pass_devices_group_policy_and_socket(self) -> None:
        doc = header(self.text)
        with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        self.assertIn("## Container", readme)
        section = readme[readme.index("## Container"):]
        section = section[:section.find("\n## ", 3)]
        for needle in ("--device /dev/vfio/vfio", "--group-add", "/etc/vfio-export/vfio-export.json",
                       "-v /run/vfio-export:/run/vfio-export", "udev"):
            self.assertIn(needle, doc, "the Dockerfile's header")
            self.assertIn(needle, section, "README's Container section")

    # ---- the commands, run --------------------------------------------------------------------------------------

    def test_the_entrypoint_cmd_and_healthcheck_work_on_the_built_jar(self) -> None:
        require_jar(self)
        java = os.path.join(java_home(self), "bin", "java")
        with tempfile.TemporaryDirectory(prefix="vfio-export-image-") as root:
            image = ImageLayout(root, java, image_env(self.final))
            timeout = duration_seconds(self.healthcheck().flags["timeout"])

            daemon = Process(image.map(self.entrypoint() + self.cmd()), image.workdir, image.path("stderr.log"),
                             image.env)
            try:
                daemon.await_line("vfio-exportd: listening on " + image.map_path(self.flag(self.cmd(), "--socket")))
                healthy = image.run(self.healthcheck_command(), timeout)
                self.assertEqual(0, healthy.returncode, healthy.stdout)
                self.assertIn("0000:01:00.0", healthy.stdout)
            finally:
                code = daemon.stop()
            self.assertEqual(0, code, daemon.stderr())
            sick = image.run(self.healthcheck_command(), timeout)
            # Docker counts any exit status but 0 as a failed check (2 is reserved); the CLI says 3: no daemon
            self.assertNotIn(sick.returncode, (0, 2), "unhealthy once the daemon is gone: " + sick.stdout)

            # arguments replace CMD whole: a run given only --backend still finds the policy and the volume
            daemon = Process(image.map(self.entrypoint() + ["--backend", "sim"]), image.workdir,
                             image.path("stderr2.log"), image.env)
            try:
                daemon.await_line("vfio-exportd: listening on " + image.map_path(self.flag(self.cmd(), "--socket")))
                self.assertTrue(os.path.exists(image.map_path(self.flag(self.cmd(), "--socket"))))
                self.assertEqual(0, image.run(self.healthcheck_command(), timeout).returncode)
            finally:
                code = daemon.stop()
            self.assertEqual(0, code, daemon.stderr())


class ImageLayout:
    """The image's files under a temp dir: /opt/vfio-export (the jar and lib/, the conf link), the policy in
    /etc/vfio-export, the volume /run/vfio-export (0755, the daemon's); its ENV, paths mapped, for the commands."""

    PREFIXES = ("/opt/vfio-export", "/etc/vfio-export", "/run/vfio-export")

    def __init__(self, root: str, java: str, env: Dict[str, str]) -> None:
        self.root = root
        self.java = java
        # the image's ENV with its paths in the temp dir; nothing of the test's own environment names a socket
        self.env = {k: v for k, v in os.environ.items() if k not in ("VFIO_EXPORT_SOCKET", "XDG_RUNTIME_DIR")}
        self.env.update({k: self.map_path(v) for k, v in env.items()})
        for p in self.PREFIXES:
            os.makedirs(self.map_path(p), mode=0o755)
        self.workdir = self.map_path("/opt/vfio-export")
        os.symlink(JAR, os.path.join(self.workdir, "vfio-export.jar"))
        os.symlink(os.path.join(os.path.dirname(JAR), "lib"), os.path.join(self.workdir, "lib"))
        shutil.copy(os.path.join(REPO, "conf", "vfio-export.json"), self.map_path("/etc/vfio-export"))
        os.symlink(self.map_path("/etc/vfio-export"), os.path.join(self.workdir, "conf"))

    def path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def map_path(self, p: str) -> str:
        for prefix in self.PREFIXES:
            if p == prefix or p.startswith(prefix + "/"):
                return self.root + p
        return p

    def map(self, argv: List[str]) -> List[str]:
        return [self.java if a == "java" else self.map_path(a) for a in argv]

    def run(self, argv: List[str], timeout: float) -> "subprocess.CompletedProcess[str]":
        return subprocess.run(self.map(argv), cwd=self.workdir, env=self.env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=timeout, check=False)


def image_env(stage: Any) -> Dict[str, str]:
    """The ENV of a stage (``ENV K=V`` lines, one pair each, as this Dockerfile writes them)."""
    out = {}
    for i in stage.all("ENV"):
        key, _, value = i.args.partition("=")
        out[key.strip()] = value.strip()
    return out


def duration_seconds(value: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    m = re.fullmatch(r"(\d+)(ms|s|m|h)", value)
    if m is None:
        raise ValueError("not a duration: " + value)
    return int(m.group(1)) * units[m.group(2)]
