"""
Runs the test suite of LaunchDarkly's Python server SDK (``launchdarkly-server-sdk``, the main
user of ``ld_eventsource``) against this checkout in place of launchdarkly-eventsource, and
with ``--ref`` against launchdarkly-eventsource 1.7.4 too, in the same run, to compare.

Everything lives under ``.venv-downstream/`` (git-ignored): the SDK's source distribution
from PyPI (its tests ship there, under ``ldclient/testing``, not in its wheel), one venv per
target, and each run's log and JUnit XML. The venvs are kept between runs and made again when
the pins below change; this checkout is reinstalled into its venv at every run.

The suite runs as the SDK's own Makefile runs it (``LD_SKIP_DATABASE_TESTS=1``, which skips
the Redis, DynamoDB and Consul tests that need servers, and ``-W error::SyntaxWarning``), plus
a per-test timeout so that a hang fails instead of blocking. Where the machine allows it
(``unshare --net``, as root), it runs in a network namespace with only loopback, which shows
that the suite needs no network beyond the local servers its tests start.

Exit status: 0 when this checkout's run has no failure and no error (and, with ``--ref``,
every test has the same outcome as with 1.7.4); 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import venv
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".venv-downstream"

SDK = "launchdarkly-server-sdk"
# The newest release whose source distribution installs here (checked with
# ``pip download --no-binary :all: --no-deps launchdarkly-server-sdk==9.20.0``). It requires
# launchdarkly-eventsource>=1.7.2,<2.0.0, which this checkout's version satisfies.
SDK_VERSION = "9.20.0"
# Every extra, as the SDK's own ``uv sync --all-extras`` installs them: its tests import them.
SDK_EXTRAS = "async,redis,consul,dynamodb,async-dynamodb,test-filesource"
REFERENCE = "launchdarkly-eventsource==1.7.4"

# What the SDK's tests import beyond the SDK and its extras (the part of its ``dev`` group that
# the tests use), and pytest-timeout for the per-test timeout. Then the SDK's runtime
# dependencies and its extras' packages, pinned to the versions this was last checked with,
# so that a new release of one of them cannot change the result between two runs.
PINS = [
    "pytest==9.2.0",
    "pytest-asyncio==1.5.0",
    "pytest-timeout==2.4.0",
    "mock==5.2.0",
    "jsonpickle==4.1.4",
    "certifi==2026.10.19.post1",
    "pyRFC3339==2.1.1",
    "semver==3.1.2",
    "urllib3==2.8.0",
    "aiohttp==3.14.5",
    "redis==8.1.0",
    "python-consul==1.1.0",
    "boto3==1.40.61",
    "aioboto3==15.5.0",
    "PyYAML==6.0.4",
    "watchdog==7.1.0",
]

PER_TEST_TIMEOUT = 300  # seconds; the slowest SDK test takes a few seconds
RUN_TIMEOUT = 1800  # seconds for one whole suite run


@dataclass
class Target:
    """One installation of the SDK's test environment, with one ld_eventsource."""

    name: str
    description: str

    @property
    def venv(self) -> Path:
        return WORK / self.name

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


OURS = Target("ours", "this checkout")
REF = Target("ref", REFERENCE)


def log(message: str) -> None:
    print(f"[test-downstream] {message}", flush=True)


def run(command: list[str], *, cwd: Path | None = None, logfile: Path) -> None:
    """Runs a setup command; its output goes to ``logfile``, shown only if it fails."""
    with logfile.open("a", encoding="utf-8") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        result = subprocess.run(
            command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=clean_env(), check=False
        )
    if result.returncode != 0:
        sys.stdout.write(logfile.read_text(encoding="utf-8")[-8000:])
        raise SystemExit(f"[test-downstream] failed ({result.returncode}): {' '.join(command)}")


def clean_env() -> dict[str, str]:
    # No PYTHONPATH: the venv must import the ld_eventsource installed in it, nothing else.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def our_version() -> str:
    text = (ROOT / "src" / "ld_eventsource" / "version.py").read_text(encoding="utf-8")
    match = re.search(r'^VERSION = "([^"]+)"', text, re.MULTILINE)
    if match is None:
        raise SystemExit("[test-downstream] no VERSION in src/ld_eventsource/version.py")
    return match.group(1)


def sdk_source(logfile: Path) -> Path:
    """The SDK's unpacked source distribution (downloaded once)."""
    source = WORK / "sdk" / f"launchdarkly_server_sdk-{SDK_VERSION}"
    if (source / "ldclient" / "testing").is_dir():
        return source
    dist = WORK / "sdk" / "dist"
    dist.mkdir(parents=True, exist_ok=True)
    log(f"downloading the source distribution of {SDK} {SDK_VERSION}")
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-binary",
            ":all:",
            "--no-deps",
            "-d",
            str(dist),
            f"{SDK}=={SDK_VERSION}",
        ],
        logfile=logfile,
    )
    archives = sorted(dist.glob(f"launchdarkly_server_sdk-{SDK_VERSION}.tar.gz"))
    if not archives:
        raise SystemExit(f"[test-downstream] no source distribution in {dist}")
    with tarfile.open(archives[0]) as archive:
        # The "data" filter (no absolute paths, links out of the tree...) where Python has it.
        if hasattr(tarfile, "data_filter"):
            archive.extractall(WORK / "sdk", filter="data")
        else:
            archive.extractall(WORK / "sdk")
    if not (source / "ldclient" / "testing").is_dir():
        raise SystemExit(f"[test-downstream] {source} has no ldclient/testing")
    return source


def setup(target: Target, source: Path, logfile: Path) -> None:
    """Makes (or reuses) the target's venv: the SDK from its sdist, its extras and test deps."""
    key = json.dumps(
        {"sdk": SDK_VERSION, "extras": SDK_EXTRAS, "pins": PINS, "target": target.name}
    )
    stamp = target.venv / ".installed"
    if not (stamp.is_file() and stamp.read_text(encoding="utf-8") == key):
        log(f"creating {target.venv.relative_to(ROOT)} ({target.description})")
        shutil.rmtree(target.venv, ignore_errors=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(target.venv)
        pip = [str(target.python), "-m", "pip", "install", "--quiet"]
        if target is OURS:
            # First, so that the SDK's launchdarkly-eventsource>=1.7.2,<2 is already met and
            # pip does not bring 1.7.4 in; this checkout is reinstalled below at every run.
            run([*pip, "--no-deps", str(ROOT)], logfile=logfile)
            eventsource = []
        else:
            eventsource = [REFERENCE]
        run([*pip, "-e", f"{source}[{SDK_EXTRAS}]", *eventsource, *PINS], logfile=logfile)
        stamp.write_text(key, encoding="utf-8")
    if target is OURS:
        # The checkout as it is now, built and installed like a release (so a module left out
        # of the wheel would show), without dependencies (urllib3 and aiohttp are pinned above).
        log(f"installing this checkout into {target.venv.relative_to(ROOT)}")
        run(
            [
                *(str(target.python), "-m", "pip", "install", "--quiet", "--no-deps"),
                *("--force-reinstall", str(ROOT)),
            ],
            logfile=logfile,
        )


CHECK = """
import importlib.metadata, importlib.util, json, ld_eventsource
print(json.dumps({
    "version": importlib.metadata.version("launchdarkly-eventsource"),
    "file": ld_eventsource.__file__,
    "ours": importlib.util.find_spec("ld_eventsource._parser") is not None,
}))
"""


def check_installed(target: Target, logfile: Path) -> str:
    """Makes sure the venv imports the ld_eventsource it should; returns its version."""
    output = subprocess.run(
        [str(target.python), "-c", CHECK],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=WORK,
        check=True,
    ).stdout
    info = json.loads(output)
    inside = Path(info["file"]).resolve().is_relative_to(target.venv.resolve())
    expected = (our_version(), True) if target is OURS else (REFERENCE.split("==")[1], False)
    if (info["version"], info["ours"]) != expected or not inside:
        raise SystemExit(f"[test-downstream] {target.name}: wrong ld_eventsource: {info}")
    # The SDK's requirement on launchdarkly-eventsource must hold as installed.
    result = subprocess.run(
        [str(target.python), "-m", "pip", "check"],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=False,
    )
    with logfile.open("a", encoding="utf-8") as out:
        out.write(f"\n$ pip check\n{result.stdout}{result.stderr}")
    broken = [line for line in result.stdout.splitlines() if "launchdarkly" in line]
    if broken:
        raise SystemExit(f"[test-downstream] {target.name}: {broken}")
    return str(info["version"])


def loopback_only_prefix() -> list[str]:
    """A command prefix that runs in a new network namespace with loopback up, if possible."""
    unshare = shutil.which("unshare")
    ip = shutil.which("ip") or next(
        (p for p in ("/usr/sbin/ip", "/sbin/ip") if os.access(p, os.X_OK)), None
    )
    if unshare is None or ip is None:
        return []
    probe = [unshare, "--net", ip, "link", "set", "lo", "up"]
    if subprocess.run(probe, capture_output=True, check=False).returncode != 0:
        return []
    return [unshare, "--net", "sh", "-c", f'{ip} link set lo up && exec "$@"', "sh"]


@dataclass
class Result:
    """The outcome of one suite run, per test id."""

    outcomes: dict[str, str]
    seconds: float
    summary: str

    def counts(self) -> Counter[str]:
        return Counter(self.outcomes.values())

    def line(self) -> str:
        c = self.counts()
        return (
            f"{c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped, "
            f"{c['error']} errors"
        )

    def closing_line(self) -> str:
        # The form that test runners close with ("N passed, N failed, N skipped"); errors
        # are in line() and in the exit status.
        c = self.counts()
        return f"{c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped"


def read_junit(path: Path) -> dict[str, str]:
    outcomes: dict[str, str] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        tags = {child.tag for child in case}
        # A test whose call failed and whose teardown errored counts once, as failed.
        if "failure" in tags:
            outcome = "failed"
        elif "error" in tags:
            outcome = "error"
        elif "skipped" in tags:
            outcome = "skipped"
        else:
            outcome = "passed"
        if outcomes.get(test_id) not in ("failed", "error"):
            outcomes[test_id] = outcome
    return outcomes


def run_suite(
    target: Target, source: Path, prefix: list[str], pytest_args: list[str], results: Path
) -> Result:
    junit = results / f"{target.name}.xml"
    output = results / f"{target.name}.log"
    junit.unlink(missing_ok=True)
    command = [
        *prefix,
        str(target.python),
        "-m",
        "pytest",
        "-W",
        "error::SyntaxWarning",
        "-p",
        "no:cacheprovider",
        f"--timeout={PER_TEST_TIMEOUT}",
        f"--junitxml={junit}",
        "-q",
        "-rfE",
        # A module that fails to import is counted as an error, and the rest still runs.
        "--continue-on-collection-errors",
        *pytest_args,
        "ldclient/testing",
    ]
    env = clean_env()
    env["LD_SKIP_DATABASE_TESTS"] = "1"
    log(f"running the {SDK} {SDK_VERSION} suite with {target.description} (log: {output})")
    start = time.monotonic()
    with output.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(
            command,
            cwd=source,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            process.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            message = f"[test-downstream] {target.name}: no result in {RUN_TIMEOUT} s"
            raise SystemExit(message) from None
    seconds = time.monotonic() - start
    lines = output.read_text(encoding="utf-8").splitlines()
    for line in lines:
        if line.startswith(("FAILED ", "ERROR ")):
            print(f"  {target.name}: {line}")
    summary = lines[-1] if lines else ""
    if not junit.is_file():
        sys.stdout.write("\n".join(lines[-40:]) + "\n")
        raise SystemExit(f"[test-downstream] {target.name}: pytest wrote no report")
    return Result(read_junit(junit), seconds, summary)


def main() -> int:
    """Sets up, runs and compares; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--ref", action="store_true", help=f"also run the suite with {REFERENCE}, and compare"
    )
    parser.add_argument(
        "--allow-network",
        action="store_true",
        help="do not run the suite in a loopback-only network namespace",
    )
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args()

    started = time.monotonic()
    results = WORK / "results"
    results.mkdir(parents=True, exist_ok=True)
    setup_log = results / "setup.log"
    setup_log.write_text("", encoding="utf-8")
    source = sdk_source(setup_log)
    targets = [OURS, REF] if args.ref else [OURS]
    versions: dict[str, str] = {}
    for target in targets:
        setup(target, source, setup_log)
        versions[target.name] = check_installed(target, setup_log)
    setup_seconds = time.monotonic() - started

    prefix = [] if args.allow_network else loopback_only_prefix()
    if prefix:
        log("the suite runs in a network namespace with only loopback")
    elif not args.allow_network:
        log("unshare --net is not available here: the suite runs with the machine's network")

    outcome: dict[str, Result] = {}
    for target in targets:
        outcome[target.name] = run_suite(target, source, prefix, args.pytest_args, results)

    print()
    log(f"{SDK} {SDK_VERSION}, setup {setup_seconds:.0f} s")
    for target in targets:
        result = outcome[target.name]
        log(
            f"{target.name:>4} (launchdarkly-eventsource {versions[target.name]}, "
            f"{target.description}): {result.line()} in {result.seconds:.0f} s"
        )
    status = 0
    ours = outcome[OURS.name]
    counts = ours.counts()
    if counts["failed"] or counts["error"] or not counts["passed"]:
        status = 1
    if args.ref:
        ref = outcome[REF.name]
        differ = sorted(
            test_id
            for test_id in set(ours.outcomes) | set(ref.outcomes)
            if ours.outcomes.get(test_id) != ref.outcomes.get(test_id)
        )
        for test_id in differ:
            log(
                f"differs: {test_id}: ours {ours.outcomes.get(test_id, 'absent')}, "
                f"1.7.4 {ref.outcomes.get(test_id, 'absent')}"
            )
        log(f"{len(differ)} tests with a different outcome than with {REFERENCE}")
        if differ:
            status = 1
    log(f"total {time.monotonic() - started:.0f} s")
    # The closing line, in the form test runners end with.
    print(f"downstream: {ours.closing_line()}")
    return status


if __name__ == "__main__":
    sys.exit(main())
