"""The proxy section: upload-url through HAProxy in front of one replica, with the config scripts/cluster runs (HTTP
mode, X-Forwarded-For, health checks on /ready), ÷ straight to that replica; alternated in each run.
"""

import os
import subprocess
import tempfile
import time

from harness import ROOT, draftstore, free_port, post_script, spread, wrk


def measure(opts, weed):
    """upload-url through HAProxy in front of one replica, with the config scripts/cluster runs (HTTP mode,
    X-Forwarded-For, health checks on /ready), ÷ straight to that replica; alternated in each run. The replica on
    CPU 0, HAProxy and wrk on CPU 1 (HAProxy starts one thread per CPU it may use: one)."""
    script = post_script(opts.scratch)
    server = draftstore(opts, {"DATA_DIR": tempfile.mkdtemp(prefix="bench-data-", dir=opts.scratch),
                               "TRUSTED_PROXIES": "127.0.0.1"})
    port = free_port()
    config = os.path.join(opts.scratch, "haproxy.cfg")
    with open(config, "w") as f:
        subprocess.run([os.path.join(ROOT, "scripts", "cluster"), "haproxy-config", str(port), str(free_port()),
                        str(free_port()), f"replica:{server.port['http']}:{server.port['grpc']}"], stdout=f,
                       check=True)
    proxy = subprocess.Popen(["taskset", "-c", "1", opts.haproxy, "-f", config, "-db"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    urls = {"direct": f"http://127.0.0.1:{server.port['http']}/api/v1/upload-url",
            "haproxy": f"http://127.0.0.1:{port}/api/v1/upload-url"}
    runs = {mode: [] for mode in urls}
    try:
        deadline = time.time() + 30
        while subprocess.run(["curl", "-fsS", "-o", "/dev/null", f"http://127.0.0.1:{port}/ready"],
                             stderr=subprocess.DEVNULL).returncode:
            if time.time() > deadline:
                raise SystemExit("HAProxy did not serve within 30 s")
            time.sleep(0.2)
        for run in range(opts.runs):
            for mode in (("direct", "haproxy") if run % 2 == 0 else ("haproxy", "direct")):
                runs[mode].append(wrk(urls[mode], opts.seconds, script))
                print(f"proxy {mode} run {run}", runs[mode][-1], flush=True)
    finally:
        proxy.terminate()
        proxy.wait()
        server.stop()
    result = {mode: {key: spread([r[key] for r in rs]) for key in rs[0]} for mode, rs in runs.items()}
    result["ratio"] = result["haproxy"]["rps"]["median"] / result["direct"]["rps"]["median"]
    return result


def markdown(r):
    def cell(m, digits=0):
        return f"{m['median']:.{digits}f} ({m['min']:.{digits}f}–{m['max']:.{digits}f})"

    return "\n".join([
        "## Behind a load balancer", "",
        "`POST /api/v1/upload-url` on the local backend, through HAProxy configured as `scripts/cluster` configures "
        "it (one replica behind it), and straight to that replica, alternated. The replica on CPU 0; HAProxy (one "
        "thread) and wrk share CPU 1, so the proxy's CPU is taken from the load generator's.", "",
        "| path | req/s | p50 ms | p99 ms |", "|---|---|---|---|",
        f"| straight to the replica | {cell(r['direct']['rps'])} | {cell(r['direct']['p50_ms'], 2)} | "
        f"{cell(r['direct']['p99_ms'], 2)} |",
        f"| through HAProxy | {cell(r['haproxy']['rps'])} | {cell(r['haproxy']['p50_ms'], 2)} | "
        f"{cell(r['haproxy']['p99_ms'], 2)} |", "",
        f"Through HAProxy ÷ straight: **{r['ratio']:.2f}** (the proxy's cost, reported; no goal).",
    ])
