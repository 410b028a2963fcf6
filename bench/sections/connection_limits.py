"""The connection-limits section: upload-url with the connection limits on (the defaults) and off, alternated in each
run.
"""

import tempfile

from harness import draftstore, post_script, spread, wrk


def measure(opts, weed):
    """upload-url with the connection limits on (the defaults) and off, alternated in each run."""
    script = post_script(opts.scratch)
    modes = {"on": {}, "off": {"HTTP_HEADER_TIMEOUT": "0", "HTTP_IDLE_TIMEOUT": "0", "BODY_IDLE_TIMEOUT": "0",
                            "MAX_CONNECTIONS": "0"}}
    runs = {mode: [] for mode in modes}
    for run in range(opts.runs):
        for mode, env in modes.items():
            server = draftstore(opts, {"DATA_DIR": tempfile.mkdtemp(prefix="bench-data-"), **env})
            try:
                url = f"http://127.0.0.1:{server.port['http']}/api/v1/upload-url"
                runs[mode].append(wrk(url, opts.seconds, script))
                print(f"connection limits {mode} run {run}", runs[mode][-1], flush=True)
            finally:
                server.stop()
    result = {mode: {key: spread([r[key] for r in rs]) for key in rs[0]} for mode, rs in runs.items()}
    result["ratio"] = result["on"]["rps"]["median"] / result["off"]["rps"]["median"]
    return result


def markdown(r):
    def row(name, m):
        return (f"| {name} | {m['rps']['median']:,.0f} ({m['rps']['min']:,.0f}–{m['rps']['max']:,.0f}) | "
                f"{m['p50_ms']['median']:.2f} | {m['p99_ms']['max']:.2f} |")
    return "\n".join([
        "## The cost of the connection limits", "",
        "`POST /api/v1/upload-url` on the local backend, server on CPU 0, wrk on CPU 1 with 64 connections, the two "
        "builds' settings alternated in each run: the defaults (`HTTP_HEADER_TIMEOUT=10`, `HTTP_IDLE_TIMEOUT=120`, "
        "`BODY_IDLE_TIMEOUT=30`, `MAX_CONNECTIONS=4096`) against all four set to `0`. No request failed (wrk's errors fail the run).", "",
        "| limits | req/s (median, min–max) | p50 ms (median) | p99 ms (worst run) |", "|---|---|---|---|",
        row("on (defaults)", r["on"]), row("off", r["off"]), "",
        f"On ÷ off: **{r['ratio']:.3f}**, goal ≥ 0.97: {'met' if r['ratio'] >= 0.97 else 'MISSED'}.",
    ])
