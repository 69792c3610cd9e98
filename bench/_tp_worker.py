"""
One timed run of one client, for ``bench/throughput.py``: run under the client's interpreter,
it imports the client's modules (before the clock starts), reads the stream once and prints one
line, ``@@RESULT {json}``. Kept to the standard library's cheapest modules, since it starts
afresh for every run.

    python _tp_worker.py CLIENT URL EVENTS KIND PRELOAD [DIST,...]

KIND is ``ours`` (``src/`` goes first on the path, and ``ld_eventsource`` must come from
there), ``ref`` (``ld_eventsource`` must be launchdarkly-eventsource 1.7.4, not ours) or
anything else; PRELOAD a comma-separated list of modules; the versions of the DISTs are
reported when given.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from resource import RUSAGE_SELF, getrusage

BENCH_DIR = Path(__file__).resolve().parent
SRC_DIR = BENCH_DIR.parent / "src"
REF_VERSION = "1.7.4"
RESULT_MARK = "@@RESULT "


def main(argv: list[str]) -> int:
    import importlib

    name, url, events, kind, preload = argv[:5]
    dists = [d for d in argv[5].split(",") if d] if len(argv) > 5 else []
    if kind == "ours":
        sys.path.insert(0, str(SRC_DIR))
    for module in preload.split(","):
        if module:
            importlib.import_module(module)
    if kind in ("ours", "ref"):
        import ld_eventsource
        from ld_eventsource.version import VERSION

        origin = Path(ld_eventsource.__file__).resolve()
        if (kind == "ours") != origin.is_relative_to(SRC_DIR) or (
            kind == "ref" and VERSION != REF_VERSION
        ):
            raise RuntimeError(f"{name} imported ld_eventsource {VERSION} from {origin}")

    import _tp_clients as tc

    host, _, rest = url.removeprefix("http://").partition(":")
    port, _, path = rest.partition("/")
    target = tc.Target(url, host, int(port), "/" + path, int(events))
    out: dict[str, object] = {}
    try:
        if name == "raw-socket":
            out["bytes"], timing = tc.raw_socket(target)
        else:
            timing = tc.run(name, target)
        out.update(ok=True, events=timing.events, crc=timing.crc, wall=timing.wall, cpu=timing.cpu)
    except Exception as e:  # reported, not raised: the driver shows it as ERR
        out.update(ok=False, error=f"{type(e).__name__}: {e}"[:300])
    out["maxrss_mb"] = getrusage(RUSAGE_SELF).ru_maxrss / 1024
    if dists:
        import importlib.metadata
        import platform

        versions = {}
        for dist in dists:
            try:
                versions[dist] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                versions[dist] = "?"
        out["versions"] = versions
        out["python"] = f"{platform.python_implementation()} {platform.python_version()}"
    print(RESULT_MARK + json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
