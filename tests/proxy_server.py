"""
A real HTTP proxy on 127.0.0.1 for the tests: proxy.py (PyPI, in the dev dependency group),
run as a subprocess. It forwards plain requests, tunnels ``CONNECT``, checks basic
authentication when given credentials, and logs one access line per connection it served.
"""

from __future__ import annotations

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
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
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
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(10)

    def stop(self) -> None:
        """Ends the proxy in order, if it still runs."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if process.stderr is not None:
            process.stderr.close()

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
