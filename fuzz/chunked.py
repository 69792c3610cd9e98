"""
Fuzz target of the chunked transfer decoder (``ChunkedDecoder``); the properties are in
:func:`fuzz.checks.check_chunked`.

Run by ``make fuzz``, or by hand: ``python -m fuzz.chunked [libFuzzer options] CORPUS...``.
"""

from __future__ import annotations

import sys

import atheris

# Coverage is measured in the library only: the reference decoder is not the target.
with atheris.instrument_imports(include=["ld_eventsource"]):
    import ld_eventsource._chunked  # noqa: F401

from fuzz.checks import check_chunked


def main() -> None:
    """Hands ``sys.argv`` to libFuzzer and fuzzes until it stops."""
    atheris.Setup(sys.argv, check_chunked)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
