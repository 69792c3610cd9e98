"""
``--state-file``: the last event id, kept in a small JSON file so that a restarted ``sse``
resumes where the last run stopped.

The file holds ``{"last_event_id": ..., "url": ...}``. It is replaced atomically (a temporary
file in the same directory, then ``os.replace``), so that a run killed at any moment leaves
either the old content or the new one. A file that is not one of these is never
overwritten: ``sse`` stops and says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile

__all__ = ["StateFile", "StateFileError"]


class StateFileError(Exception):
    """The state file cannot be read, is not a state file, or cannot be written."""


class StateFile:
    """
    The state file at ``path``, for the stream at ``url`` (recorded for the people who read
    the file; a file written for another URL is used all the same).
    """

    def __init__(self, path: str, url: str):
        self.path = path
        """Where the state is kept."""
        self._url = url
        self._mode: int | None = None
        self._saved: str | None = None
        self._has_saved = False

    def load(self) -> str | None:
        """
        The last event id saved, or ``None`` if the file does not exist or is empty; also
        checks that the file can be written.

        :raises StateFileError: the file cannot be read, holds something else, or its
            directory cannot be written to
        """
        try:
            with open(self.path, "rb") as f:
                mode = os.fstat(f.fileno()).st_mode
                if not stat.S_ISREG(mode):
                    raise StateFileError(f"state file {self.path}: not a regular file")
                self._mode = stat.S_IMODE(mode)
                content = f.read()
        except FileNotFoundError:
            content = b""
        except IsADirectoryError:
            raise StateFileError(f"state file {self.path}: is a directory") from None
        except OSError as e:
            raise StateFileError(f"state file {self.path}: cannot read: {e.strerror or e}") from e
        last_event_id = self._parse(content)
        self._check_writable()
        self._saved, self._has_saved = last_event_id, True
        return last_event_id

    def _parse(self, content: bytes) -> str | None:
        if not content.strip():
            return None
        try:
            state = json.loads(content)
        except ValueError as e:
            raise self._corrupt(f"not JSON ({e})") from None
        if not isinstance(state, dict) or "last_event_id" not in state:
            raise self._corrupt('no "last_event_id"')
        value = state["last_event_id"]
        if value is not None and not isinstance(value, str):
            raise self._corrupt('"last_event_id" is not a string')
        return value

    def _corrupt(self, reason: str) -> StateFileError:
        return StateFileError(
            f"state file {self.path} is not an sse state file: {reason}; "
            "fix or delete it (sse does not overwrite it)"
        )

    def _check_writable(self) -> None:
        # The directory must take the temporary file that every save goes through.
        try:
            fd, temp = tempfile.mkstemp(dir=self._directory(), prefix=".sse-state-", suffix=".tmp")
        except OSError as e:
            raise StateFileError(f"state file {self.path}: cannot write: {e.strerror or e}") from e
        os.close(fd)
        os.unlink(temp)

    def _directory(self) -> str:
        return os.path.dirname(os.path.abspath(self.path))

    def save(self, last_event_id: str | None) -> None:
        """
        Records ``last_event_id`` (nothing is written when it did not change).

        :raises StateFileError: the file cannot be written
        """
        if self._has_saved and last_event_id == self._saved:
            return
        content = json.dumps({"last_event_id": last_event_id, "url": self._url}, ensure_ascii=False)
        temp: str | None = None
        try:
            fd, temp = tempfile.mkstemp(dir=self._directory(), prefix=".sse-state-", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(content.encode("utf-8") + b"\n")
            if self._mode is not None:
                os.chmod(temp, self._mode)
            os.replace(temp, self.path)
            temp = None
        except OSError as e:
            raise StateFileError(f"state file {self.path}: cannot write: {e.strerror or e}") from e
        finally:
            if temp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
        self._saved, self._has_saved = last_event_id, True
