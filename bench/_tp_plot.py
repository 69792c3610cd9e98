"""
Draws the chart of ``bench/throughput.py``: per workload and framing, each client's wall time
as a ratio to the reference of its mode (sync clients and the baselines to ``ref-sync``, async
clients to ``ref-async``), on a log scale. Run by ``throughput.py --plot`` in the ``plot`` venv
(matplotlib is not a dependency of the project): ``python _tp_plot.py RESULTS.json OUT.png``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, LogLocator

from _tp_clients import ASYNC

COLORS = dict(
    zip(
        ["ours-sync", "ours-async", "ref-sync", "ref-async", "httpx-sse-sync", "httpx-sse-async",
         "sseclient-py", "requests-sse", "aiohttp-sse-client2", "naive-floor"],
        ["#1b7837", "#5aae61", "#2166ac", "#92c5de", "#b2182b", "#f4a582", "#8073ac", "#e08214",
         "#bf812d", "#404040"],
        strict=True,
    )
)  # fmt: skip


def main(source: str, target: str) -> int:
    report: dict[str, Any] = json.loads(Path(source).read_text())
    cases: dict[str, Any] = report["cases"]
    workloads = list(dict.fromkeys(case.split("/")[0] for case in cases))
    framings = list(dict.fromkeys(case.split("/")[1] for case in cases))
    ran = {name for case in cases.values() for name in case["clients"]}
    clients = [name for name in COLORS if name in ran and name not in ("ref-sync", "ref-async")]
    fig, axes = plt.subplots(
        len(workloads), 1, figsize=(13, 3.2 * len(workloads) + 1), squeeze=False
    )
    width = 0.8 / max(len(clients), 1)
    for row, workload in enumerate(workloads):
        ax = axes[row][0]
        top = 1.0
        for i, name in enumerate(clients):
            for j, framing in enumerate(framings):
                case = cases.get(f"{workload}/{framing}")
                x = j + (i - (len(clients) - 1) / 2) * width
                entry = case["clients"].get(name) if case else None
                if entry is None:
                    continue
                key = "ref_async" if name in ASYNC else "ref_sync"
                value = (entry.get("ratios") or {}).get(key)
                if entry["status"] != "OK" or value is None:
                    label = entry["status"] if entry["status"] != "OK" else "n/a"
                    ax.text(x, 1.0, label, rotation=90, ha="center", va="bottom", fontsize=6)
                    continue
                top = max(top, value)
                ours, legend = name.startswith("ours"), name if j == 0 else None
                if ours:
                    ax.text(x, value * 1.05, f"{value:.2f}", ha="center", va="bottom", fontsize=6)
                edge = "black" if ours else "none"
                ax.bar(x, value, width, color=COLORS[name], label=legend, edgecolor=edge, lw=0.6)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.axhline(0.67, color="#1b7837", linewidth=0.8, linestyle="--")
        ax.set_yscale("log")
        ax.set_ylim(0.1, max(2.0, top * 1.6))  # every bar starts at the same floor
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        ax.set_xticks(range(len(framings)))
        ax.set_xticklabels(framings)
        ax.set_ylabel("wall time / reference")
        ax.set_title(workload, loc="left", fontsize=10)
        ax.grid(axis="y", which="both", alpha=0.25)
    handles, labels = [], []
    for ax in axes[:, 0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    fig.suptitle(
        "Wall time relative to launchdarkly-eventsource 1.7.4 of the same mode "
        "(sync: ref-sync, async: ref-async)\nlower is faster; dashed line: the 0.67x target; "
        "ERR/FAIL/TIMEOUT: the client could not read that stream",
        fontsize=10, y=0.995,
    )  # fmt: skip
    ncol = min(len(labels), 8)
    fig.legend(
        handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.965), ncol=ncol, fontsize=8
    )
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(target, dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
