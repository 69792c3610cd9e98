"""
Fuzz target of the event-stream parser (``SSEParser``); the properties are in
:func:`fuzz.checks.check_parser`.

Run by ``make fuzz``, or by hand: ``python -m fuzz.parser [libFuzzer options] CORPUS...``.
"""

from __future__ import annotations

import sys

import atheris

# Coverage is measured in the library only: the model it is compared with is not the target.
with atheris.instrument_imports(include=["ld_eventsource"]):
    import ld_eventsource._parser  # noqa: F401

from fuzz.checks import check_parser


def main() -> None:
    """Hands ``sys.argv`` to libFuzzer and fuzzes until it stops."""
    atheris.Setup(sys.argv, check_parser)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
