"""
A real HTTP proxy on 127.0.0.1 for the tests: proxy.py (PyPI, in the dev dependency group),
run as a subprocess. It forwards plain requests, tunnels ``CONNECT``, checks basic
authentication when given credentials, and logs one access line per connection it served.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType


class ProxyServer:
    """
    ``with ProxyServer(tmp_path, auth="user:password") as proxy:`` then ``proxy.url``;
    :meth:`kill` ends it abruptly, :meth:`log` is what it logged so far.
    """

    def __init__(self, directory: Path, *, auth: str | None = None) -> None:
        self._directory = directory
        self._auth = auth
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The proxy's URL, without credentials."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ProxyServer:
        port_file = self._directory / f"proxy-{id(self)}.port"
        self._log_path = self._directory / f"proxy-{id(self)}.log"
        command = [
            sys.executable,
            "-m",
            "proxy",
            "--hostname",
            "127.0.0.1",
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--num-acceptors",
            "1",
            "--num-workers",
            "1",
            "--log-level",
            "INFO",
            "--log-file",
            str(self._log_path),
        ]
        if self._auth is not None:
            command += ["--basic-auth", self._auth]
        # A process group of its own: proxy.py runs its acceptors and workers as child
        # processes, which hold the listening socket too, and go with the group.
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = port_file.read_text().strip() if port_file.exists() else ""
            if text.isdigit():
                self.port = int(text)
                break
            if self._process.poll() is not None:
                break
            time.sleep(0.05)
        if not self.port:
            self.stop()
            raise RuntimeError("proxy.py did not start")
        return self

    def kill(self) -> None:
        """Ends the proxy abruptly (SIGKILL): its connections are reset or closed."""
        process = self._process
        if process is not None:
            self._signal(process, signal.SIGKILL)
            process.wait(10)

    @staticmethod
    def _signal(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        """Sends ``sig`` to the proxy's process group (the proxy and its children)."""
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        """Ends the proxy in order, if it still runs."""
        process, self._process = self._process, None
        if process is None:
            return
        self._signal(process, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self._signal(process, signal.SIGKILL)  # what is left of the group
        process.wait(10)

    def log(self) -> str:
        """What the proxy logged so far (an access line per connection once it ended)."""
        return self._log_path.read_text() if self._log_path.exists() else ""

    def wait_log(self, text: str, timeout: float = 10.0) -> bool:
        """Whether ``text`` appears in the log within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return True
            time.sleep(0.05)
        return text in self.log()

    def __enter__(self) -> ProxyServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
