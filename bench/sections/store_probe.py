"""The store-probe section: start-up with the store probe (STORE_PROBE=enforce) and without (off), alternated, on
SeaweedFS and on the local backend.
"""

import json
import os
import statistics
import subprocess
import tempfile
import time

from harness import s3_env, spread


def start_up(opts, env_extra):
    """Starts `draftstore serve` (CPU 0) until it listens; returns the seconds that took and the store probe's log
    event (None with STORE_PROBE=off)."""
    env = dict(os.environ, HTTP_PORT="0", GRPC_PORT="0", BIND_ADDRESS="127.0.0.1", LOG_FORMAT="json",
               RUST_LOG="draftstore::startup=info,draftstore::probe=info,warn", **env_extra)
    started = time.perf_counter()
    process = subprocess.Popen(["taskset", "-c", "0", opts.draftstore, "serve"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    probe = None
    try:
        while True:
            line = process.stderr.readline()
            if not line:
                raise SystemExit(f"draftstore exited before listening ({env_extra})")
            event = json.loads(line)
            if event.get("fields", event).get("message") == "store probe" or event.get("message") == "store probe":
                probe = event
            if "DraftStore listening" in line:
                return time.perf_counter() - started, probe
    finally:
        process.terminate()
        process.wait()


def measure(opts, weed):
    """Start-up with the store probe (STORE_PROBE=enforce) and without (off), alternated, on SeaweedFS and on the
    local backend: the probe's own time from its log line, and start-up to listening with ÷ without."""
    results = {}
    data_dir = tempfile.mkdtemp(prefix="bench-probe-", dir=opts.scratch)
    backends = {
        "seaweedfs": s3_env(weed, f"probe-{os.getpid()}"),
        "local": {"STORAGE_TYPE": "local", "DATA_DIR": data_dir},
    }
    for backend, env in backends.items():
        # A first start creates the buckets; the measured ones find them.
        start_up(opts, dict(env, STORE_PROBE="off"))
        probe_ms, with_probe, without = [], [], []
        for run in range(max(opts.runs, 5)):
            took, event = start_up(opts, dict(env, STORE_PROBE="enforce"))
            if event is None or event.get("verdict") != "passed":
                raise SystemExit(f"the store probe did not pass on {backend}: {event}")
            with_probe.append(took * 1000)
            probe_ms.append(float(event["elapsed_ms"]))
            took, _ = start_up(opts, dict(env, STORE_PROBE="off"))
            without.append(took * 1000)
            print(f"store probe on {backend}: run {run + 1}: probe {probe_ms[-1]:.0f} ms, start-up {with_probe[-1]:.0f} "
                  f"ms with it, {without[-1]:.0f} ms without", flush=True)
        results[backend] = {"probe_ms": spread(probe_ms), "start_up_ms": spread(with_probe),
                            "start_up_without_ms": spread(without),
                            "ratio": statistics.median(with_probe) / statistics.median(without)}
    return results


def markdown(r):
    def cell(m):
        return f"{m['median']:.0f} ({m['min']:.0f}–{m['max']:.0f})"
    lines = ["## Store probe at start-up", "",
             "`draftstore serve` (release, CPU 0) started with `STORE_PROBE=enforce` and with `off`, alternated, until it "
             "listens; the buckets exist. The probe's own time is the `elapsed_ms` of its log line (every promise held). "
             "Goal: the probe under 300 ms on SeaweedFS.", "",
             "| store | probe ms | start-up ms with it | start-up ms without | with ÷ without | goal |", "|---|---|---|---|---|---|"]
    for backend, row in r.items():
        goal = ("met" if row["probe_ms"]["median"] < 300 else "MISSED") if backend == "seaweedfs" else "–"
        lines.append(f"| {backend} | {cell(row['probe_ms'])} | {cell(row['start_up_ms'])} | "
                     f"{cell(row['start_up_without_ms'])} | {row['ratio']:.2f} | {goal} |")
    return "\n".join(lines)
