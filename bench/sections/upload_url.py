"""The upload-url section: REST upload-url against the bare endpoint, Uppy Companion, and gRPC GetUploadURL."""

import json
import os
import socket
import subprocess
import tempfile
import time

from harness import ACCESS_KEY, SECRET_KEY, Server, draftstore, free_port, post_script, s3_env, spread, wrk


def load_runs(opts, measure):
    runs = [measure() for _ in range(opts.runs)]
    return {key: spread([run[key] for run in runs]) for key in runs[0]}


def measure(opts, weed):
    """REST upload-url against the bare endpoint, Uppy Companion, and gRPC GetUploadURL. The servers run side by side
    and are measured in turn, run after run (each run in another order): a machine that slows down during the section
    slows every side alike, and the ratios stay fair."""
    script = post_script(opts.scratch)
    results = {}
    local = draftstore(opts, {"DATA_DIR": tempfile.mkdtemp(prefix="bench-data-")})
    # The same call on the S3 backend (SigV4 presigning against this run's SeaweedFS): what Companion is compared
    # with, since Companion presigns for S3 too.
    s3 = draftstore(opts, s3_env(weed, f"presign-{os.getpid()}"))
    bare = Server([opts.bare], port_from=lambda p: {"http": int(p.stdout.readline())})

    def rest(server):
        return lambda: wrk(f"http://127.0.0.1:{server.port['http']}/api/v1/upload-url", opts.seconds, script)

    def grpc():
        out = json.loads(subprocess.run(
            ["taskset", "-c", "1", opts.grpc_load, f"http://127.0.0.1:{local.port['grpc']}", "8", "64",
             str(opts.seconds)], capture_output=True, text=True, check=True).stdout)
        if out["errors"]:
            raise SystemExit(f"GetUploadURL failed {out['errors']} calls under load: {out}")
        return {"rps": out["rps"], "p50_ms": out["p50_ms"], "p99_ms": out["p99_ms"], "failed": out["errors"]}

    sides = {"draftstore_rest": rest(local), "draftstore_grpc": grpc, "draftstore_rest_s3": rest(s3),
             "bare_endpoint": rest(bare)}
    runs = {name: [] for name in sides}
    try:
        for run in range(opts.runs):
            order = list(sides)[run % len(sides):] + list(sides)[:run % len(sides)]
            for name in order:
                runs[name].append(sides[name]())
                print(f"upload-url {name}, run {run}: {runs[name][-1]['rps']:.0f} req/s", flush=True)
    finally:
        for server in (local, s3, bare):
            server.stop()
    for name, measured in runs.items():
        results[name] = {key: spread([run[key] for run in measured]) for key in measured[0]}

    if opts.companion:
        port = free_port()
        weed.client.create_bucket(Bucket="companion-bench")
        env = dict(os.environ, COMPANION_PORT=str(port), COMPANION_DOMAIN=f"localhost:{port}", COMPANION_PROTOCOL="http",
                   COMPANION_DATADIR=tempfile.mkdtemp(prefix="bench-companion-"), COMPANION_SECRET="bench-secret",
                   COMPANION_AWS_KEY=ACCESS_KEY, COMPANION_AWS_SECRET=SECRET_KEY, COMPANION_AWS_BUCKET="companion-bench",
                   COMPANION_AWS_REGION="us-east-1", COMPANION_AWS_ENDPOINT=weed.endpoint,
                   COMPANION_AWS_FORCE_PATH_STYLE="true", COMPANION_CLIENT_ORIGINS="true", NODE_ENV="production",
                   COMPANION_UPLOAD_URLS=f"http://localhost:{port}/")

        def companion_port(process):
            deadline = time.time() + 60
            while time.time() < deadline:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        return {"http": port}
                except OSError:
                    if process.poll() is not None:
                        raise SystemExit("Companion exited:\n" + process.stderr.read())
                    time.sleep(0.2)
            raise SystemExit("Companion did not start")

        companion = Server(["node", opts.companion], env=env, port_from=companion_port)
        try:
            url = f"http://127.0.0.1:{port}/s3/params?filename=object.bin&type=application%2Foctet-stream"
            results["companion"] = load_runs(opts, lambda: wrk(url, opts.seconds, baseline=True))
            print("Companion", results["companion"], flush=True)
        finally:
            companion.stop()
    rest = results["draftstore_rest"]["rps"]["median"]
    rest_s3 = results["draftstore_rest_s3"]["rps"]["median"]
    results["ratios"] = {
        "rest_vs_bare": rest / results["bare_endpoint"]["rps"]["median"],
        "grpc_vs_rest": results["draftstore_grpc"]["rps"]["median"] / rest,
        "s3_vs_local": rest_s3 / rest,
    }
    if "companion" in results:
        results["ratios"]["rest_vs_companion"] = rest_s3 / results["companion"]["rps"]["median"]
    return results


def markdown(r):
    def row(name, m):
        return (f"| {name} | {m['rps']['median']:,.0f} ({m['rps']['min']:,.0f}–{m['rps']['max']:,.0f}) | "
                f"{m['p50_ms']['median']:.2f} | {m['p99_ms']['median']:.2f} ({m['p99_ms']['min']:.2f}–{m['p99_ms']['max']:.2f}) |")
    ratios = r["ratios"]
    lines = ["## Issuing upload URLs", "",
             "Servers on CPU 0, load on CPU 1, 64 connections (wrk for HTTP; for gRPC `grpc-load` with 8 connections and "
             "64 calls in flight). DraftStore runs the local backend with `RUST_LOG=warn` (no per-request log line, as the "
             "bare endpoint has none); it allocates with mimalloc, the bare endpoint with the system's allocator. The four "
             "servers run side by side, measured in turn, each run in another order.", "",
             "| server | req/s (median, min–max) | p50 ms | p99 ms (median, min–max) |", "|---|---|---|---|",
             row("DraftStore `POST /api/v1/upload-url`", r["draftstore_rest"]),
             row("DraftStore `POST /api/v1/upload-url`, S3 backend (SigV4, SeaweedFS)", r["draftstore_rest_s3"]),
             row("bare axum endpoint (same JSON in and out, no signing)", r["bare_endpoint"]),
             row("DraftStore gRPC `GetUploadURL`", r["draftstore_grpc"])]
    if "companion" in r:
        lines.append(row("Uppy Companion `GET /s3/params`", r["companion"]))
        failed = r["companion"]["failed"]["max"]
        if failed:
            lines += ["", f"Companion failed up to {failed:.0f} requests a run (wrk's 2 s timeout); DraftStore failed none."]
    p99 = r["draftstore_rest"]["p99_ms"]["max"]
    lines += ["", "| comparison | ratio | goal | verdict |", "|---|---|---|---|",
              f"| REST ÷ bare endpoint | {ratios['rest_vs_bare']:.2f} | ≥ 0.8 | {'met' if ratios['rest_vs_bare'] >= 0.8 else 'MISSED'} |",
              f"| REST p99, worst run | {p99:.2f} ms | ≤ 3 ms | {'met' if p99 <= 3 else 'MISSED'} |",
              f"| gRPC ÷ REST | {ratios['grpc_vs_rest']:.2f} | ≥ 0.8 | {'met' if ratios['grpc_vs_rest'] >= 0.8 else 'MISSED'} |"]
    v = ratios["s3_vs_local"]
    lines.append(f"| REST on S3 ÷ REST local | {v:.2f} | ≥ 0.9 | {'met' if v >= 0.9 else 'MISSED'} |")
    if "rest_vs_companion" in ratios:
        v = ratios["rest_vs_companion"]
        lines.append(f"| REST on S3 ÷ Companion (both SigV4 on the same store) | {v:.0f} | ≥ 100 | {'met' if v >= 100 else 'MISSED'} |")
    return "\n".join(lines)
