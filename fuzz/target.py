"""
The fuzz targets: ``python -m fuzz.target parser|chunked [libFuzzer options] CORPUS...``.

``parser`` fuzzes ``SSEParser`` (:func:`fuzz.checks.check_parser`), ``chunked`` the
``ChunkedDecoder`` (:func:`fuzz.checks.check_chunked`). ``make fuzz`` runs both.
"""

from __future__ import annotations

import sys

import atheris

TARGETS = {"parser": "ld_eventsource._parser", "chunked": "ld_eventsource._chunked"}


def main() -> None:
    """Instruments the target's module, hands the rest of ``sys.argv`` to libFuzzer."""
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: python -m fuzz.target {'|'.join(TARGETS)} [libFuzzer options]")
    name = sys.argv.pop(1)
    # Coverage is measured in the library only, not in the model it is compared with.
    with atheris.instrument_imports(include=["ld_eventsource"]):
        __import__(TARGETS[name])
    from fuzz import checks

    atheris.Setup(sys.argv, checks.check_parser if name == "parser" else checks.check_chunked)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
