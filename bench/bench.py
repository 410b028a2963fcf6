"""DraftStore's benchmark harness (run it through bench/run).

Every comparison is a ratio measured in the same run, every figure the median of several runs with its spread.
Servers run on CPU 0, load generators and clients on CPU 1. Results go to bench/results/<date>.md and .json.
"""

import argparse
import base64
import datetime
import json
import os
import platform
import re
import shutil
import socket
import statistics
import sys
import subprocess
import tempfile
import time
import urllib.request

import boto3
from botocore.config import Config

ACCESS_KEY, SECRET_KEY = "bench", "bench-secret"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        mem_kib = int(meminfo.readline().split()[1])
    return f"{model}, {os.cpu_count()} CPUs, {mem_kib / 1024 / 1024:.0f} GiB, {platform.system()} {platform.release()}"


def free_base():
    """A base port with base..base+6 and base+10000..base+10004 free (SeaweedFS's listeners)."""
    for base in range(21000, 30000, 10):
        ports = list(range(base, base + 7)) + list(range(base + 10000, base + 10005))
        sockets = []
        try:
            for port in ports:
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                sockets.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise SystemExit("no free ports")


def s3_env(weed, bucket, **extra):
    """DraftStore's settings for this run's SeaweedFS, in buckets named after `bucket`."""
    return {"STORAGE_TYPE": "s3", "AWS_ENDPOINT_URL": weed.endpoint, "S3_FORCE_PATH_STYLE": "true",
            "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "BUCKET_NAME": bucket, **extra}


class SeaweedFs:
    """SeaweedFS on CPU 0, on free loopback ports; ready once a bucket can be written. Every bucket is a collection
    that takes volumes of its own at its first write: without a set `-volume.max` their number follows the free
    disk, and a full run's buckets exhausted it in the cleaner section (every write of a new bucket failed)."""

    def __init__(self, weed):
        self.dir = tempfile.mkdtemp(prefix="bench-weed-")
        config = os.path.join(self.dir, "s3.json")
        with open(config, "w") as f:
            json.dump({"identities": [{"name": "admin", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                                       "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}, f)
        base = free_base()
        self.endpoint = f"http://127.0.0.1:{base}"
        self.master = f"http://127.0.0.1:{base + 1}"
        args = ["taskset", "-c", "0", os.path.abspath(weed), "mini", f"-dir={self.dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                "-master.telemetry=false", "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
                "-s3.autoCreateBucket=false", "-volume.max=2000", f"-s3.config={config}", f"-s3.port={base}", f"-master.port={base + 1}",
                f"-volume.port={base + 2}", f"-filer.port={base + 3}", f"-admin.port={base + 4}",
                f"-metricsPort={base + 5}", f"-s3.metricsPort={base + 6}"]
        self.process = subprocess.Popen(args, stdout=open(os.path.join(self.dir, "weed.log"), "w"),
                                        stderr=subprocess.STDOUT, cwd=self.dir)
        self.client = boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
                                   aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
                                   config=Config(s3={"addressing_style": "path"}, max_pool_connections=64,
                                                 retries={"max_attempts": 3}))
        deadline = time.time() + 60
        while True:
            try:
                try:
                    self.client.create_bucket(Bucket="ready-probe")
                except self.client.exceptions.BucketAlreadyOwnedByYou:
                    pass
                self.client.put_object(Bucket="ready-probe", Key="probe", Body=b"ok")
                return
            except Exception as error:
                if time.time() > deadline:
                    log = open(os.path.join(self.dir, "weed.log")).read()[-3000:]
                    raise SystemExit(f"SeaweedFS did not become ready: {error}\n{log}")
                time.sleep(0.2)

    def vacuum(self):
        """Reclaims the space of deleted objects now rather than at SeaweedFS's next periodic pass: a section that
        writes and deletes gigabytes round after round would otherwise fill the disk (a full volume server answers
        InternalError)."""
        urllib.request.urlopen(f"{self.master}/vol/vacuum?garbageThreshold=0.01", timeout=900).read()

    def stop(self):
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def run_measured(args, env):
    """Runs a command on CPU 1; returns (seconds, peak RSS in KiB, stdout)."""
    started = time.perf_counter()
    process = subprocess.Popen(["taskset", "-c", "1"] + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    peak = 0
    while process.poll() is None:
        try:
            with open(f"/proc/{process.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except FileNotFoundError:
            pass
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"{args} failed ({process.returncode}):\n{stdout}\n{stderr}")
    return elapsed, peak, stdout


def spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": len(values)}


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Server:
    """A process pinned to CPU 0 that prints or logs its port."""

    def __init__(self, args, env=None, port_from=None):
        self.process = subprocess.Popen(["taskset", "-c", "0"] + args, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self.port = port_from(self.process)

    def rss_mib(self, field="VmRSS"):
        return status_kib(self.process.pid, field) / 1024

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def port_from_log(process):
    """DraftStore logs `DraftStore listening` with its addresses (LOG_FORMAT=json)."""
    deadline = time.time() + 60
    while time.time() < deadline:
        line = process.stderr.readline()
        if not line:
            raise SystemExit("draftstore exited before listening")
        if "DraftStore listening" in line:
            event = json.loads(line)
            return {"http": int(event["http"].rsplit(":", 1)[1]), "grpc": int(event["grpc"].rsplit(":", 1)[1])}
    raise SystemExit("draftstore did not start")


def draftstore(opts, env_extra):
    env = dict(os.environ, HTTP_PORT="0", GRPC_PORT="0", BIND_ADDRESS="127.0.0.1", LOG_FORMAT="json",
               RUST_LOG="draftstore::startup=info,warn", **env_extra)
    return Server([opts.draftstore, "serve"], env=env, port_from=port_from_log)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk(url, seconds, script=None, baseline=False):
    """wrk on CPU 1 with 64 connections; returns requests/s, p50 and p99 in ms, and the failed requests. A failed
    request stops the run, except for a baseline (another project's server), whose failures are reported."""
    args = ["taskset", "-c", "1", "wrk", "-t1", "-c64", f"-d{seconds}s", "--latency"]
    if script:
        args += ["-s", script]
    out = subprocess.run(args + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def quantile(q):
        value, unit = re.search(rf"\s{q}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    answered = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = (int(answered.group(1)) if answered else 0) + (sum(map(int, sockets.groups())) if sockets else 0)
    if failed and not baseline:
        raise SystemExit(f"{url} failed {failed} requests under load:\n{out}")
    return {"rps": rps, "p50_ms": quantile(50), "p99_ms": quantile(99), "failed": failed}


def load_runs(opts, measure):
    runs = [measure() for _ in range(opts.runs)]
    return {key: spread([run[key] for run in runs]) for key in runs[0]}


UPLOAD_BODY = json.dumps({"object_name": "bench/object.bin", "content_type": "application/octet-stream"})


def post_script(folder):
    """wrk's script for `POST /api/v1/upload-url` with UPLOAD_BODY, written in `folder`."""
    script = os.path.join(folder, "post.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f"wrk.body = '{UPLOAD_BODY}'\n")
    return script


def bench_upload_url(opts, weed):
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


class Receiver:
    """An HTTP server on a free loopback port, in threads of this process: every POST's body goes to `on_post`, whose
    `(status, content type or None)` is the answer, with no body."""

    def __init__(self, on_post):
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            # Connections kept alive, as by a real receiver or collector.
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                status, content_type = on_post(self.rfile.read(int(self.headers.get("content-length", 0))))
                self.send_response(status)
                if content_type:
                    self.send_header("content-type", content_type)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


class OtlpSink:
    """An OTLP/HTTP receiver that takes every trace export and keeps nothing (answers an empty
    ExportTraceServiceResponse), counting the bytes: the cost measured is DraftStore's, not a collector's."""

    def __init__(self):
        received = self.received = [0]

        def on_post(body):
            received[0] += len(body)
            return 200, "application/x-protobuf"

        self.receiver = Receiver(on_post)
        self.url = self.receiver.url

    def stop(self):
        self.receiver.stop()


def bench_tracing(opts, weed):
    """upload-url on the local backend with OpenTelemetry traces exported (every request sampled, over OTLP/HTTP to a
    receiver that discards them) and without, alternated."""
    script = post_script(opts.scratch)
    sink = OtlpSink()
    results = {"off": [], "on": []}
    try:
        for run in range(opts.runs):
            for mode in (("off", "on") if run % 2 == 0 else ("on", "off")):
                env = {"DATA_DIR": tempfile.mkdtemp(prefix="bench-data-", dir=opts.scratch)}
                if mode == "on":
                    env.update(OTEL_EXPORTER_OTLP_ENDPOINT=sink.url, OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
                               OTEL_TRACES_SAMPLER="always_on")
                server = draftstore(opts, env)
                try:
                    url = f"http://127.0.0.1:{server.port['http']}/api/v1/upload-url"
                    results[mode].append(wrk(url, opts.seconds, script))
                finally:
                    server.stop()
                # The exporter logs at shutdown how many spans it dropped (its queue full), if any.
                dropped = re.search(r'dropped_spans"?[=:](\d+)', server.process.stderr.read())
                results[mode][-1]["dropped_spans"] = int(dropped.group(1)) if dropped else 0
                print(f"tracing {mode}, run {run}: {results[mode][-1]['rps']:.0f} req/s, "
                      f"{results[mode][-1]['dropped_spans']} spans dropped", flush=True)
    finally:
        sink.stop()
    out = {mode: {"rps": spread([r["rps"] for r in runs]), "p99_ms": spread([r["p99_ms"] for r in runs])}
           for mode, runs in results.items()}
    out["exported_bytes"] = sink.received[0]
    out["dropped_spans"] = sum(r["dropped_spans"] for r in results["on"])
    out["requests_traced"] = sum(r["rps"] * opts.seconds for r in results["on"])
    out["ratio"] = out["on"]["rps"]["median"] / out["off"]["rps"]["median"]
    return out


def tracing_markdown(r):
    def cell(m, digits=0):
        return f"{m['median']:.{digits}f} ({m['min']:.{digits}f}–{m['max']:.{digits}f})"

    ratio = r["ratio"]
    return "\n".join([
        "## OpenTelemetry traces", "",
        "`POST /api/v1/upload-url` on the local backend as in the first section, with traces off and on "
        "(`OTEL_EXPORTER_OTLP_ENDPOINT` set, every request sampled, spans batched and exported over OTLP/HTTP to a "
        f"receiver that discards them: {r['exported_bytes'] / 1e6:.0f} MB received in all; "
        f"{r.get('dropped_spans', 0)} spans dropped by the exporter's queue, of about "
        f"{r.get('requests_traced', 0):.0f} requests traced), alternated.", "",
        "| traces | req/s | p99 ms |", "|---|---|---|",
        f"| off | {cell(r['off']['rps'])} | {cell(r['off']['p99_ms'], 2)} |",
        f"| on | {cell(r['on']['rps'])} | {cell(r['on']['p99_ms'], 2)} |", "",
        f"On ÷ off: **{ratio:.2f}**, goal ≥ 0.85: {'met' if ratio >= 0.85 else 'MISSED'}.",
    ])


def bench_connection_limits(opts, weed):
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


def bench_big_confirm(opts, weed):
    """A 1 GiB draft, uploaded in one PUT to SeaweedFS, confirmed with STORAGE_TIMEOUT=2 and the default copy
    settings, against boto3's managed copy of an object uploaded the same way; the two in turn, each run in the other
    order."""
    from boto3.s3.transfer import TransferConfig
    work = tempfile.mkdtemp(prefix="bench-big-confirm-", dir=opts.scratch)
    path = os.path.join(work, "draft.bin")
    size = 1 << 30
    subprocess.run(["head", "-c", str(size), "/dev/urandom"], stdout=open(path, "wb"), check=True)
    bucket = f"bigconfirm-{os.getpid()}"
    env = s3_env(weed, bucket, STORAGE_TIMEOUT="2")
    server = draftstore(opts, env)
    port = server.port["http"]

    def confirm(key):
        return http_json(port, "/api/v1/confirm-upload", {"object_name": key})[1]

    def boto3_copy(key):
        started = time.perf_counter()
        weed.client.copy({"Bucket": f"{bucket}-draft", "Key": key}, bucket, key, Config=TransferConfig())
        return time.perf_counter() - started

    copies = {"draftstore": confirm, "boto3": boto3_copy}
    times = {who: [] for who in copies}
    try:
        for run in range(opts.runs):
            uploaded = {}
            for who in copies:
                key = f"bench/{run}/{who}.bin"
                ticket, _ = http_json(port, "/api/v1/upload-url",
                                      {"object_name": key, "content_type": "application/octet-stream"})
                put_file(ticket["upload_url"], path)
                uploaded[who] = key
            # Each run in the other order: the copy that goes second meets the store still writing back the first.
            for who in list(copies)[::1 if run % 2 == 0 else -1]:
                times[who].append(copies[who](uploaded[who]))
            print(f"big confirm run {run}: DraftStore {times['draftstore'][-1]:.1f} s, "
                  f"boto3 {times['boto3'][-1]:.1f} s", flush=True)
            for key in uploaded.values():
                weed.client.delete_object(Bucket=bucket, Key=key)
            weed.client.delete_object(Bucket=f"{bucket}-draft", Key=uploaded["boto3"])
            weed.vacuum()
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    result = {who: spread(values) for who, values in times.items()}
    result["ratio"] = result["draftstore"]["median"] / result["boto3"]["median"]
    return result


def big_confirm_markdown(r):
    d, b = r["draftstore"], r["boto3"]
    return "\n".join([
        "## A 1 GiB confirm under a small timeout (SeaweedFS)", "",
        "A 1 GiB draft uploaded in one PUT, confirmed with `STORAGE_TIMEOUT=2` and the default copy settings (the parts "
        "sized to what the store copies in half a second), against boto3's managed copy (`TransferConfig()`: 8 MiB "
        "parts, 10 threads) of another 1 GiB object uploaded the same way; the two copies go in turn, each run in the "
        "other order.", "",
        "| copy | seconds (median, min–max) |", "|---|---|",
        f"| DraftStore confirm | {d['median']:.1f} ({d['min']:.1f}–{d['max']:.1f}) |",
        f"| boto3 managed copy | {b['median']:.1f} ({b['min']:.1f}–{b['max']:.1f}) |", "",
        f"DraftStore ÷ boto3: **{r['ratio']:.2f}**, goal ≤ 1.0: {'met' if r['ratio'] <= 1.0 else 'MISSED'}.",
    ])


def connection_limits_markdown(r):
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


def upload_url_markdown(r):
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


SIZES = {"1 KiB": 1024, "1 MiB": 1 << 20, "100 MiB": 100 << 20, "1 GiB": 1 << 30}


def http_json(port, path, body):
    import http.client
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    payload = json.loads(response.read())
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise SystemExit(f"{path} answered {response.status}: {payload}")
    return payload, elapsed


def put_file(url, path):
    # Start each measured write with no dirty pages left from the previous one, as dd below does.
    os.sync()
    started = time.perf_counter()
    out = subprocess.run(["taskset", "-c", "1", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT",
                          "-H", "Content-Type: application/octet-stream", "-T", path, url],
                         capture_output=True, text=True, check=True).stdout
    if out != "200":
        raise SystemExit(f"upload answered {out}")
    return time.perf_counter() - started


def bench_objects(opts, weed):
    """Confirm latency by object size on both backends; upload throughput and memory on the local backend."""
    work = tempfile.mkdtemp(prefix="bench-objects-", dir=opts.scratch)
    files = {}
    for name, size in SIZES.items():
        path = os.path.join(work, name.replace(" ", ""))
        subprocess.run(["head", "-c", str(size), "/dev/urandom"], stdout=open(path, "wb"), check=True)
        files[name] = path
    results = {"confirm": {}, "upload": {}}
    backends = {"local": {"DATA_DIR": os.path.join(work, "data")}}
    bucket = f"objects-{os.getpid()}"
    backends["seaweedfs"] = s3_env(weed, bucket, STORAGE_TIMEOUT="600")
    for backend, env in backends.items():
        server = draftstore(opts, env)
        port = server.port["http"]
        try:
            if backend == "local":
                results["idle_rss_mib"] = server.rss_mib()
            rows = {}
            for name, path in files.items():
                latencies, uploads = [], []
                for run in range(opts.runs):
                    key = f"bench/{name.replace(' ', '')}-{run}"
                    ticket, _ = http_json(port, "/api/v1/upload-url", {"object_name": key})
                    uploads.append(SIZES[name] / put_file(ticket["upload_url"], path) / (1 << 20))
                    _, elapsed = http_json(port, "/api/v1/confirm-upload", {"object_name": key})
                    latencies.append(elapsed * 1e3)
                rows[name] = {"confirm_ms": spread(latencies), "upload_mib_s": spread(uploads)}
                print(f"{backend} {name}: confirm {statistics.median(latencies):.2f} ms, "
                      f"upload {statistics.median(uploads):.0f} MiB/s", flush=True)
            results["confirm"][backend] = rows
            if backend == "local":
                results["peak_rss_mib"] = server.rss_mib("VmHWM")
        finally:
            server.stop()
    dd = []
    for run in range(opts.runs):
        target = os.path.join(work, f"dd-{run}.bin")
        os.sync()
        started = time.perf_counter()
        subprocess.run(["taskset", "-c", "1", "dd", f"if={files['1 GiB']}", f"of={target}", "bs=1M", "conv=fsync"],
                       capture_output=True, check=True)
        dd.append((1 << 30) / (time.perf_counter() - started) / (1 << 20))
        os.remove(target)
    local_gib = results["confirm"]["local"]["1 GiB"]["upload_mib_s"]
    results["upload"] = {"local_put_mib_s": local_gib, "dd_mib_s": spread(dd),
                         "ratio": local_gib["median"] / statistics.median(dd)}
    for backend, rows in results["confirm"].items():
        base = rows["1 KiB"]["confirm_ms"]["median"]
        for row in rows.values():
            row["ratio_to_1kib"] = row["confirm_ms"]["median"] / base
    subprocess.run(["rm", "-rf", work], check=True)
    return results


def objects_markdown(r):
    lines = ["## Confirm latency by object size", "",
             "Upload through the presigned URL (curl on CPU 1), then `POST /api/v1/confirm-upload`, timed by the client. "
             "On the local backend a confirm is a rename whatever the size; goal: the 1 GiB confirm within 2 × the 1 KiB "
             "confirm. On SeaweedFS a draft above `COPY_MULTIPART_THRESHOLD` (64 MiB) is copied by the store in parts, "
             "so its confirm grows with its size (no byte passes through DraftStore either way); the section on 1 GiB "
             "confirms compares that copy with boto3's.", "",
             "| backend | size | confirm ms (median, min–max) | ÷ 1 KiB | goal |", "|---|---|---|---|---|"]
    for backend, rows in r["confirm"].items():
        for name, row in rows.items():
            c = row["confirm_ms"]
            judged = name == "1 GiB" and backend == "local"
            verdict = ("met" if row["ratio_to_1kib"] <= 2 else "MISSED") if judged else ""
            lines.append(f"| {backend} | {name} | {c['median']:.2f} ({c['min']:.2f}–{c['max']:.2f}) | "
                         f"{row['ratio_to_1kib']:.2f} | {verdict} |")
    up = r["upload"]
    ratio = up["ratio"]
    lines += ["", "## Upload throughput and memory (local backend)", "",
              "A 1 GiB upload through the local backend's signed PUT (streamed to a staging file, fsync'd, renamed), "
              "against `dd` copying the same file to the same disk with `conv=fsync`.", "",
              "| measurement | value (median, min–max) | baseline | ratio | goal | verdict |", "|---|---|---|---|---|---|",
              f"| 1 GiB signed PUT | {up['local_put_mib_s']['median']:.0f} MiB/s ({up['local_put_mib_s']['min']:.0f}–"
              f"{up['local_put_mib_s']['max']:.0f}) | dd {up['dd_mib_s']['median']:.0f} MiB/s | {ratio:.2f} | ≥ 0.7 × dd | "
              f"{'met' if ratio >= 0.7 else 'MISSED'} |",
              f"| server peak RSS over all local uploads (VmHWM) | {r['peak_rss_mib']:.1f} MiB | | | ≤ 50 MiB | "
              f"{'met' if r['peak_rss_mib'] <= 50 else 'MISSED'} |",
              f"| server idle RSS | {r['idle_rss_mib']:.1f} MiB | | | ≤ 20 MiB | {'met' if r['idle_rss_mib'] <= 20 else 'MISSED'} |"]
    return "\n".join(lines)


def write_drafts(folder, count):
    """`count` one-byte drafts in `folder`, written as the local backend writes an object file: the bytes, a JSON
    trailer, its length (u32, little-endian) and the magic tag."""
    trailer = json.dumps({"content_type": "text/plain"}).encode()
    blob = b"x" + trailer + len(trailer).to_bytes(4, "little") + b"DSOBJv1\0"
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        with open(os.path.join(folder, f"draft-{i:06d}.txt"), "wb") as f:
            f.write(blob)


LISTED_DRAFTS = {"1,000": 1000, "200,000": 200_000}


def bench_local_store(opts, weed):
    """The local backend's write path and listing: a 1 GiB signed PUT against `dd bs=4M conv=fsync` of the same file
    to the same disk, alternated; the first page of `list-drafts` in a folder of 200,000 drafts against one of 1,000."""
    work = opts.scratch
    big = os.path.join(work, "1gib.bin")
    subprocess.run(["head", "-c", str(1 << 30), "/dev/urandom"], stdout=open(big, "wb"), check=True)
    data = os.path.join(work, "data")
    for name, count in LISTED_DRAFTS.items():
        write_drafts(os.path.join(data, "main-draft", f"folder-{count}"), count)
    server = draftstore(opts, {"DATA_DIR": data})
    port = server.port["http"]
    puts, dd, pages = [], [], {name: [] for name in LISTED_DRAFTS}
    try:
        for run in range(opts.runs):
            key = f"bench/put-{run}"
            ticket, _ = http_json(port, "/api/v1/upload-url", {"object_name": key})
            puts.append((1 << 30) / put_file(ticket["upload_url"], big) / (1 << 20))
            http_json(port, "/api/v1/discard-draft", {"object_name": key})
            target = os.path.join(work, f"dd-{run}.bin")
            os.sync()
            started = time.perf_counter()
            subprocess.run(["taskset", "-c", "1", "dd", f"if={big}", f"of={target}", "bs=4M", "conv=fsync"],
                           capture_output=True, check=True)
            dd.append((1 << 30) / (time.perf_counter() - started) / (1 << 20))
            os.remove(target)
            print(f"local store: 1 GiB PUT {puts[-1]:.0f} MiB/s, dd {dd[-1]:.0f} MiB/s", flush=True)
        for run in range(max(opts.runs, 5)):
            for name, count in LISTED_DRAFTS.items():
                page, elapsed = http_json(port, "/api/v1/list-drafts", {"prefix": f"folder-{count}/", "page_size": 100})
                if len(page["drafts"]) != 100 or not page.get("next_page_token"):
                    raise SystemExit(f"the first page of {name} drafts is not a full page with a next one")
                pages[name].append(elapsed * 1e3)
        print(f"local store: first page of 200,000 drafts {statistics.median(pages['200,000']):.1f} ms", flush=True)
    finally:
        server.stop()
    page = {name: spread(times) for name, times in pages.items()}
    return {"put_mib_s": spread(puts), "dd_mib_s": spread(dd),
            "put_ratio": statistics.median(puts) / statistics.median(dd), "first_page_ms": page,
            "page_ratio": page["200,000"]["median"] / page["1,000"]["median"]}


def local_store_markdown(r):
    put, dd, large, small = r["put_mib_s"], r["dd_mib_s"], r["first_page_ms"]["200,000"], r["first_page_ms"]["1,000"]
    return "\n".join([
        "## The local store: write path and listing", "",
        "A 1 GiB upload to a local signed URL (curl on CPU 1; written in short blocking sections, fsync'd, renamed) "
        "against `dd bs=4M conv=fsync` copying the same file to the same disk, alternated. Then the first page (100) of "
        "`list-drafts` in a folder of 200,000 drafts, against the same in a folder of 1,000, timed by the client.", "",
        "| measurement | value (median, min–max) | baseline | ratio | goal | verdict |", "|---|---|---|---|---|---|",
        f"| 1 GiB signed PUT | {put['median']:.0f} MiB/s ({put['min']:.0f}–{put['max']:.0f}) | dd {dd['median']:.0f} "
        f"MiB/s ({dd['min']:.0f}–{dd['max']:.0f}) | {r['put_ratio']:.2f} | ≥ 0.8 × dd | "
        f"{'met' if r['put_ratio'] >= 0.8 else 'MISSED'} |",
        f"| first page of 200,000 drafts | {large['median']:.1f} ms ({large['min']:.1f}–{large['max']:.1f}) | "
        f"1,000 drafts: {small['median']:.1f} ms | {r['page_ratio']:.2f} | < 50 ms | "
        f"{'met' if large['median'] < 50 else 'MISSED'} |",
    ])


MULTIPART_PART = 64 << 20
MULTIPART_PARALLEL = 4


def put_range(url, path, offset, length, headers=None):
    """PUTs `length` bytes of a file from `offset` with sendfile (no copy through Python); returns the ETag."""
    import http.client
    import urllib.parse
    parsed = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=600)
    target = parsed.path + ("?" + parsed.query if parsed.query else "")
    connection.putrequest("PUT", target, skip_accept_encoding=True)
    connection.putheader("Content-Length", str(length))
    for name, value in (headers or {}).items():
        if name.lower() != "content-length":
            connection.putheader(name, value)
    connection.endheaders()
    with open(path, "rb") as f:
        connection.sock.sendfile(f, offset, length)
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise SystemExit(f"part upload answered {response.status}: {body[:300]}")
    etag = response.getheader("ETag")
    connection.close()
    return etag


def draftstore_multipart(port, name, path, size):
    """Uploads a file through DraftStore's multipart API, MULTIPART_PARALLEL parts in flight; returns seconds."""
    from concurrent.futures import ThreadPoolExecutor
    started = time.perf_counter()
    start, _ = http_json(port, "/api/v1/multipart/start",
                         {"object_name": name, "content_length": size, "part_size": MULTIPART_PART})
    upload_id, part_size, count = start["upload_id"], start["part_size"], start["part_count"]
    signed, _ = http_json(port, "/api/v1/multipart/sign-parts", {
        "object_name": name, "upload_id": upload_id, "parts": [{"part_number": n} for n in range(1, count + 1)]})

    def one(part):
        n = part["part_number"]
        offset = (n - 1) * part_size
        return n, put_range(part["upload_url"], path, offset, min(part_size, size - offset), part["headers"])

    with ThreadPoolExecutor(MULTIPART_PARALLEL) as pool:
        etags = sorted(pool.map(one, signed["parts"]))
    http_json(port, "/api/v1/multipart/complete", {"object_name": name, "upload_id": upload_id,
                                                   "parts": [{"part_number": n, "etag": e} for n, e in etags]})
    return time.perf_counter() - started


def bench_multipart(opts, weed):
    """A large multipart upload on both backends against its baselines, and confirm of it against boto3's copy."""
    from boto3.s3.transfer import TransferConfig
    size = opts.multipart_gib << 30
    work = tempfile.mkdtemp(prefix="bench-multipart-", dir=opts.scratch)
    path = os.path.join(work, "big.bin")
    subprocess.run(["head", "-c", str(size), "/dev/urandom"], stdout=open(path, "wb"), check=True)
    mib = size / (1 << 20)
    results = {"size_gib": opts.multipart_gib, "part_mib": MULTIPART_PART >> 20, "parallel": MULTIPART_PARALLEL}

    # Local backend against dd writing the same file to the same disk.
    server = draftstore(opts, {"DATA_DIR": os.path.join(work, "data"), "MAX_UPLOAD_SIZE": str(size)})
    local, dd = [], []
    try:
        for run in range(opts.runs):
            os.sync()
            local.append(mib / draftstore_multipart(server.port["http"], f"bench/big-{run}", path, size))
            http_json(server.port["http"], "/api/v1/confirm-upload", {"object_name": f"bench/big-{run}"})
            os.remove(os.path.join(work, "data", "main", "bench", f"big-{run}"))
            target = os.path.join(work, "dd.bin")
            os.sync()
            started = time.perf_counter()
            subprocess.run(["taskset", "-c", "1", "dd", f"if={path}", f"of={target}", "bs=1M", "conv=fsync"],
                           capture_output=True, check=True)
            dd.append(mib / (time.perf_counter() - started))
            os.remove(target)
            print(f"multipart local: {local[-1]:.0f} MiB/s, dd {dd[-1]:.0f} MiB/s", flush=True)
    finally:
        server.stop()
    results["local"] = {"draftstore_mib_s": spread(local), "dd_mib_s": spread(dd),
                        "ratio": statistics.median(local) / statistics.median(dd)}

    # SeaweedFS: DraftStore's multipart upload against boto3's upload_file, same part size and concurrency; then
    # confirm (a parallel multipart copy) against boto3's managed copy of the same object.
    bucket = f"multipart-{os.getpid()}"
    env = s3_env(weed, bucket, MAX_UPLOAD_SIZE=str(size))
    server = draftstore(opts, env)
    transfer = TransferConfig(multipart_threshold=MULTIPART_PART, multipart_chunksize=MULTIPART_PART,
                              max_concurrency=MULTIPART_PARALLEL)
    ours, theirs, confirms, copies, retries = [], [], [], [], 0
    client = weed.client
    try:
        for run in range(opts.runs):
            key = f"bench/big-{run}"
            os.sync()
            ours.append(mib / draftstore_multipart(server.port["http"], key, path, size))
            os.sync()
            started = time.perf_counter()
            client.upload_file(path, bucket + "-draft", f"boto/{key}", Config=transfer)
            theirs.append(mib / (time.perf_counter() - started))
            # A 503 tells the client to confirm again (the draft is kept): done as a client would, and counted.
            elapsed, tries = 0.0, 0
            while True:
                tries += 1
                try:
                    _, took = http_json(server.port["http"], "/api/v1/confirm-upload", {"object_name": key})
                    elapsed += took
                    break
                except SystemExit as error:
                    if "answered 503" not in str(error) or tries == 3:
                        raise
                    print(f"multipart seaweedfs: confirm retried after {error}", flush=True)
                    retries += 1
            confirms.append(elapsed)
            started = time.perf_counter()
            client.copy({"Bucket": bucket + "-draft", "Key": f"boto/{key}"}, bucket, f"boto/{key}")
            copies.append(time.perf_counter() - started)
            for name in (key, f"boto/{key}"):
                client.delete_object(Bucket=bucket, Key=name)
            client.delete_object(Bucket=bucket + "-draft", Key=f"boto/{key}")
            weed.vacuum()
            print(f"multipart seaweedfs: {ours[-1]:.0f} MiB/s vs boto3 {theirs[-1]:.0f} MiB/s; "
                  f"confirm {confirms[-1]:.2f} s vs boto3 copy {copies[-1]:.2f} s", flush=True)
    finally:
        server.stop()
    results["seaweedfs"] = {"draftstore_mib_s": spread(ours), "boto3_mib_s": spread(theirs),
                            "ratio": statistics.median(ours) / statistics.median(theirs)}
    results["confirm"] = {"draftstore_s": spread(confirms), "boto3_copy_s": spread(copies),
                          "ratio": statistics.median(confirms) / statistics.median(copies), "retried_503": retries}
    shutil.rmtree(work, ignore_errors=True)
    return results


def multipart_markdown(r):
    def mibs(m):
        return f"{m['median']:.0f} MiB/s ({m['min']:.0f}–{m['max']:.0f})"

    def secs(m):
        return f"{m['median']:.2f} s ({m['min']:.2f}–{m['max']:.2f})"

    local, weed, confirm = r["local"], r["seaweedfs"], r["confirm"]
    return "\n".join([
        f"## Multipart uploads of {r['size_gib']} GiB", "",
        f"{r['part_mib']} MiB parts, {r['parallel']} in flight. DraftStore's client starts the upload, signs every part "
        "in one call, PUTs the parts with sendfile from CPU 1, and completes; the server is on CPU 0. Confirm on "
        "SeaweedFS is a parallel multipart copy with the default `COPY_PART_SIZE` and `COPY_CONCURRENCY`; boto3's "
        "managed `copy` uses its defaults (8 MiB parts, 10 threads).", "",
        "| measurement | DraftStore (median, min–max) | baseline | ratio | goal | verdict |", "|---|---|---|---|---|---|",
        f"| upload, local backend | {mibs(local['draftstore_mib_s'])} | `dd conv=fsync` {mibs(local['dd_mib_s'])} | "
        f"{local['ratio']:.2f} | ≥ 0.7 × dd | {'met' if local['ratio'] >= 0.7 else 'MISSED'} |",
        f"| upload, SeaweedFS | {mibs(weed['draftstore_mib_s'])} | boto3 `upload_file` {mibs(weed['boto3_mib_s'])} | "
        f"{weed['ratio']:.2f} | ≥ 0.8 × boto3 | {'met' if weed['ratio'] >= 0.8 else 'MISSED'} |",
        f"| confirm, SeaweedFS | {secs(confirm['draftstore_s'])} | boto3 managed `copy` {secs(confirm['boto3_copy_s'])} | "
        f"{confirm['ratio']:.2f} | ≤ 1.0 × boto3 | {'met' if confirm['ratio'] <= 1.0 else 'MISSED'} |",
        "", f"Confirms that answered 503 and were sent again, as a client is told to: {confirm['retried_503']} "
        "(the time shown includes every try).",
    ])


def bench_cli(opts, weed):
    """`draftstore upload` of a large file to the local backend against `curl -T` of the same file to a presigned
    URL, and the client's peak RSS at two file sizes."""
    size = opts.cli_gib << 30
    small = 256 << 20
    work = tempfile.mkdtemp(prefix="bench-cli-", dir=opts.scratch)
    path, small_path = os.path.join(work, "big.bin"), os.path.join(work, "small.bin")
    subprocess.run(["head", "-c", str(size), "/dev/urandom"], stdout=open(path, "wb"), check=True)
    subprocess.run(["head", "-c", str(small), path], stdout=open(small_path, "wb"), check=True)
    mib = size / (1 << 20)
    server = draftstore(opts, {"DATA_DIR": os.path.join(work, "data"), "MAX_UPLOAD_SIZE": str(size)})
    port = server.port["http"]
    env = dict(os.environ, DRAFTSTORE_URL=f"http://127.0.0.1:{port}", DRAFTSTORE_STATE_DIR=os.path.join(work, "state"))
    import base64
    import hashlib
    with open(path, "rb") as f:
        checksum = base64.b64encode(hashlib.file_digest(f, "sha256").digest()).decode()
    ours, curl, curl_sha, peaks, small_peaks = [], [], [], [], []

    def curl_upload(name, declared):
        ticket, _ = http_json(port, "/api/v1/upload-url", dict({"object_name": name, "content_length": size}, **declared))
        headers = [arg for key, value in ticket["headers"].items() if key.lower() != "content-length"
                   for arg in ("-H", f"{key}: {value}")]
        os.sync()
        started = time.perf_counter()
        out = subprocess.run(["taskset", "-c", "1", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", *headers,
                              "-T", path, ticket["upload_url"]], capture_output=True, text=True, check=True).stdout
        if out != "200":
            raise SystemExit(f"curl upload answered {out}")
        elapsed = time.perf_counter() - started
        http_json(port, "/api/v1/discard-draft", {"object_name": name})
        return mib / elapsed

    try:
        for run in range(opts.runs):
            curl.append(curl_upload(f"curl/{run}", {}))
            curl_sha.append(curl_upload(f"curl-sha/{run}", {"checksum_sha256": checksum}))
            os.sync()
            elapsed, peak, _ = run_measured([opts.draftstore, "upload", path, "--name", f"cli/{run}", "--quiet"], env)
            ours.append(mib / elapsed)
            peaks.append(peak / 1024)
            http_json(port, "/api/v1/discard-draft", {"object_name": f"cli/{run}"})
            _, peak, _ = run_measured([opts.draftstore, "upload", small_path, "--name", f"cli/small-{run}", "--quiet"], env)
            small_peaks.append(peak / 1024)
            http_json(port, "/api/v1/discard-draft", {"object_name": f"cli/small-{run}"})
            print(f"cli: draftstore upload {ours[-1]:.0f} MiB/s ({peaks[-1]:.1f} MiB peak RSS; "
                  f"{small_peaks[-1]:.1f} MiB at 256 MiB), curl -T {curl[-1]:.0f} MiB/s, "
                  f"with SHA-256 declared {curl_sha[-1]:.0f} MiB/s", flush=True)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return {"size_gib": opts.cli_gib, "draftstore_mib_s": spread(ours), "curl_mib_s": spread(curl),
            "ratio": statistics.median(ours) / statistics.median(curl), "curl_sha256_mib_s": spread(curl_sha),
            "ratio_sha256": statistics.median(ours) / statistics.median(curl_sha), "peak_rss_mib": spread(peaks),
            "peak_rss_256mib_file_mib": spread(small_peaks)}


def cli_markdown(r):
    def mibs(m):
        return f"{m['median']:.0f} MiB/s ({m['min']:.0f}–{m['max']:.0f})"

    rss, rss_small = r["peak_rss_mib"], r["peak_rss_256mib_file_mib"]
    worst = max(rss["max"], rss_small["max"])
    # Flat: the peak for a file four times larger is within 10% (and 2 MiB) of the smaller file's.
    flat = rss["max"] <= rss_small["max"] * 1.1 + 2
    return "\n".join([
        f"## Command-line upload of {r['size_gib']} GiB, local backend", "",
        "`draftstore upload FILE --quiet` (defaults: 16 MiB parts, 8 in flight, the SHA-256 of every part computed by "
        "the client, signed in and verified by the store) against `curl -T` of the same file to a presigned URL from "
        "`upload-url`: once with the size and the file's SHA-256 declared (the store verifies it as it does for "
        "DraftStore's parts; the checksum is computed beforehand, outside the timing), once with the size only (no "
        "hashing on either side). All on CPU 1, the server on CPU 0, dirty pages flushed before each. Peak RSS is "
        "the client's VmHWM.", "",
        "| measurement | DraftStore | baseline | ratio | goal | verdict |", "|---|---|---|---|---|---|",
        f"| upload throughput | {mibs(r['draftstore_mib_s'])} | `curl -T`, SHA-256 declared {mibs(r['curl_sha256_mib_s'])} | "
        f"{r['ratio_sha256']:.2f} | ≥ 0.8 × curl | {'met' if r['ratio_sha256'] >= 0.8 else 'MISSED'} |",
        f"| upload throughput | {mibs(r['draftstore_mib_s'])} | `curl -T`, size only {mibs(r['curl_mib_s'])} | "
        f"{r['ratio']:.2f} | ≥ 0.8 × curl | {'met' if r['ratio'] >= 0.8 else 'MISSED'} |",
        f"| client peak RSS, {r['size_gib']} GiB file | {rss['median']:.1f} MiB ({rss['min']:.1f}–{rss['max']:.1f}) | | | "
        f"< 64 MiB | {'met' if rss['max'] < 64 else 'MISSED'} |",
        f"| client peak RSS, 256 MiB file | {rss_small['median']:.1f} MiB ({rss_small['min']:.1f}–{rss_small['max']:.1f}) "
        f"| | | < 64 MiB, flat | {'met' if worst < 64 and flat else 'MISSED'} "
        f"({'flat' if flat else 'grows'}: {rss['max']:.1f} MiB at {r['size_gib']} GiB) |",
    ])


def bench_soak(opts, weed):
    """Mixed load at a fixed rate for a long time on both backends: 5xx count, latency percentiles, and the
    server's RSS at minute 1 and at the end (a leak shows as growth)."""
    import http.client
    import threading
    import urllib.parse
    from concurrent.futures import ThreadPoolExecutor

    body = os.urandom(64 << 10)
    results = {"seconds": opts.soak_seconds, "rate": opts.soak_rate}
    backends = {
        "local": lambda work: {"DATA_DIR": os.path.join(work, "data")},
        "seaweedfs": lambda work: s3_env(weed, f"soak-{os.getpid()}"),
    }
    for label, env_of in backends.items():
        work = tempfile.mkdtemp(prefix="bench-soak-", dir=opts.scratch)
        # The cleaner runs every 5 s inside the server and removes drafts older than 20 s: a third of the uploads
        # are never confirmed, so it always has work.
        server = draftstore(opts, dict(env_of(work), CLEANUP_INTERVAL="5", OBJECT_LIFETIME="20"))
        port = server.port["http"]
        lock = threading.Lock()
        latencies, statuses, errors = [], {}, []

        def call(method, url, payload=None, headers=None):
            parsed = urllib.parse.urlsplit(url)
            connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
            target = parsed.path + ("?" + parsed.query if parsed.query else "")
            started = time.perf_counter()
            try:
                connection.request(method, target, body=payload, headers=headers or {})
                response = connection.getresponse()
                data = response.read()
                status = response.status
            except Exception as error:
                with lock:
                    errors.append(str(error))
                return None, None
            finally:
                connection.close()
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1
            return status, data

        def api(route, payload):
            status, data = call("POST", f"http://127.0.0.1:{port}{route}", json.dumps(payload),
                                {"Content-Type": "application/json"})
            return json.loads(data) if status == 200 else None

        def session(n):
            name = f"soak/{n}"
            ticket = api("/api/v1/upload-url", {"object_name": name, "content_type": "application/octet-stream",
                                                "content_length": len(body)})
            if not ticket:
                return
            status, _ = call("PUT", ticket["upload_url"], body, ticket["headers"])
            if status != 200 or n % 3 == 0:
                return
            if api("/api/v1/confirm-upload", {"object_name": name}):
                ticket = api("/api/v1/download-url", {"object_name": name, "stage": "main"})
                if ticket:
                    call("GET", ticket["download_url"])

        rss = {}
        started = time.time()
        sessions = []
        with ThreadPoolExecutor(32) as pool:
            n = 0
            while (elapsed := time.time() - started) < opts.soak_seconds:
                target = started + n / opts.soak_rate
                if target > time.time():
                    time.sleep(target - time.time())
                sessions.append(pool.submit(session, n))
                n += 1
                if "minute 1" not in rss and elapsed >= 60:
                    rss["minute 1"] = server.rss_mib()
        rss["end"] = server.rss_mib()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
        latencies.sort()

        def pct(q):
            return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else float("nan")

        failed_sessions = [repr(f.exception()) for f in sessions if f.exception() is not None]
        errors_5xx = sum(count for status, count in statuses.items() if status >= 500)
        results[label] = {"sessions": n, "requests": len(latencies), "statuses": {str(k): v for k, v in statuses.items()},
                          "5xx": errors_5xx, "transport_errors": len(errors), "failed_sessions": len(failed_sessions),
                          "session_errors": failed_sessions[:5], "p50_ms": pct(0.50), "p99_ms": pct(0.99),
                          "rss_minute_1_mib": rss.get("minute 1", float("nan")), "rss_end_mib": rss["end"],
                          "rss_growth": rss["end"] / rss["minute 1"] - 1 if "minute 1" in rss else float("nan")}
        print(f"soak {label}: {results[label]}", flush=True)
    return results


def soak_markdown(r):
    lines = [f"## Soak: {r['seconds'] // 60} minutes of mixed load at {r['rate']} sessions/s (one run)", "",
             "Each session asks for an upload URL and PUTs 64 KiB; two sessions in three then confirm and download the "
             "object, the third leaves its draft to the cleaner (inside the server every 5 s, drafts older than 20 s). "
             "Latency is per HTTP request (API calls, uploads and downloads alike); RSS is the server's, at minute 1 "
             "and at the end.", "",
             "The soak runs once whatever `--runs` says: it is long, and one run of it is the measurement.", "",
             "| backend | sessions | requests | 5xx (goal 0) | transport errors | failed sessions | p50 | p99 | RSS at minute 1 | RSS at the end | growth (goal ≤ 10%) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for label in ("local", "seaweedfs"):
        x = r[label]
        lines.append(f"| {label} | {x['sessions']} | {x['requests']} | {x['5xx']} | {x['transport_errors']} | "
                     f"{x['failed_sessions']} | "
                     f"{x['p50_ms']:.1f} ms | {x['p99_ms']:.1f} ms | {x['rss_minute_1_mib']:.1f} MiB | "
                     f"{x['rss_end_mib']:.1f} MiB | {x['rss_growth'] * 100:+.1f}% |")
    return "\n".join(lines)


def bench_cleaner(opts, weed):
    """Drafts removed per second and peak RSS of `draftstore clean`, for growing draft buckets on SeaweedFS."""
    rows = {}
    for count in opts.cleaner_counts:
        rates, peaks = [], []
        for run in range(opts.runs):
            bucket = f"clean-{count}-{run}-{os.getpid()}"
            draft = f"{bucket}-draft"
            for name in (bucket, draft):
                weed.client.create_bucket(Bucket=name)
            subprocess.run([opts.populate, weed.endpoint, ACCESS_KEY, SECRET_KEY, draft, str(count), "64"], check=True)
            time.sleep(1.5)
            env = dict(os.environ, STORAGE_TYPE="s3", AWS_ENDPOINT_URL=weed.endpoint, S3_FORCE_PATH_STYLE="true",
                       AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, BUCKET_NAME=bucket,
                       OBJECT_LIFETIME="1", RUST_LOG="warn")
            elapsed, peak, stdout = run_measured([opts.draftstore, "clean"], env)
            removed = int(re.search(r"Cleaned up (\d+) expired objects", stdout).group(1))
            if removed != count:
                raise SystemExit(f"cleaner removed {removed} of {count}: {stdout}")
            rates.append(count / elapsed)
            peaks.append(peak / 1024)
            print(f"cleaner {count}: run {run + 1}: {count / elapsed:,.0f} drafts/s, peak RSS {peak / 1024:.1f} MiB",
                  flush=True)
        rows[count] = {"drafts_per_second": spread(rates), "peak_rss_mib": spread(peaks)}
    base = rows[min(rows)]
    for count, row in rows.items():
        row["throughput_ratio_to_smallest"] = row["drafts_per_second"]["median"] / base["drafts_per_second"]["median"]
        row["rss_ratio_to_smallest"] = row["peak_rss_mib"]["median"] / base["peak_rss_mib"]["median"]
    return rows


def cleaner_markdown(rows):
    lines = ["## Cleaner on SeaweedFS", "",
             "`draftstore clean` (CPU 1) against SeaweedFS (CPU 0), every draft expired. Goal: at least 2,000 drafts/s, "
             "and a peak RSS that does not grow with the count (ratio to the smallest run).", "",
             "| drafts | drafts/s (median, min–max) | peak RSS MiB (median, min–max) | throughput ÷ smallest | RSS ÷ smallest | goal |",
             "|---|---|---|---|---|---|"]
    for count, row in sorted(rows.items()):
        rate, rss = row["drafts_per_second"], row["peak_rss_mib"]
        met = rate["median"] >= 2000 and row["rss_ratio_to_smallest"] <= 1.5
        lines.append(f"| {count:,} | {rate['median']:,.0f} ({rate['min']:,.0f}–{rate['max']:,.0f}) | "
                     f"{rss['median']:.1f} ({rss['min']:.1f}–{rss['max']:.1f}) | {row['throughput_ratio_to_smallest']:.2f} | "
                     f"{row['rss_ratio_to_smallest']:.2f} | {'met' if met else 'MISSED'} |")
    return "\n".join(lines)



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


def bench_store_probe(opts, weed):
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


def store_probe_markdown(r):
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

class EventSink:
    """An HTTP receiver that answers 204 and notes when each event arrived, by its object name."""

    def __init__(self):
        arrived = self.arrived = {}

        def on_post(body):
            arrived.setdefault(json.loads(body)["data"]["object_name"], time.perf_counter())
            return 204, None

        self.receiver = Receiver(on_post)
        self.url = self.receiver.url + "/events"

    def stop(self):
        self.receiver.stop()


def bench_events(opts, weed):
    """Confirm latency on SeaweedFS with the event outbox on and off, in the same run, and how soon events arrive."""
    sink = EventSink()
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    confirms = 100
    latencies = {"off": [], "on": []}
    lag = []
    try:
        for run in range(opts.runs):
            for mode in ("off", "on"):
                # One bucket per mode for every run: each new bucket makes SeaweedFS allocate volumes.
                bucket = f"events-{os.getpid()}-{mode}"
                env = s3_env(weed, bucket)
                if mode == "on":
                    env.update(EVENTS_URL=sink.url, WEBHOOK_SECRET=secret)
                server = draftstore(opts, env)
                port = server.port["http"]
                try:
                    timings, confirmed_at = [], {}
                    for i in range(confirms):
                        key = f"bench/{run}/{i}.bin"
                        ticket, _ = http_json(port, "/api/v1/upload-url", {"object_name": key})
                        request = urllib.request.Request(ticket["upload_url"], data=b"x" * 1024, method="PUT",
                                                         headers=ticket["headers"])
                        urllib.request.urlopen(request).read()
                        _, elapsed = http_json(port, "/api/v1/confirm-upload", {"object_name": key})
                        confirmed_at[key] = time.perf_counter()
                        timings.append(elapsed * 1e3)
                    latencies[mode].append(statistics.median(timings))
                    if mode == "on":
                        deadline = time.time() + 60
                        while time.time() < deadline and not all(k in sink.arrived for k in confirmed_at):
                            time.sleep(0.05)
                        missing = [k for k in confirmed_at if k not in sink.arrived]
                        if missing:
                            raise SystemExit(f"{len(missing)} events never arrived")
                        lag.append(statistics.median((sink.arrived.pop(k) - t) * 1e3 for k, t in confirmed_at.items()))
                    print(f"events {mode} run {run}: confirm median {latencies[mode][-1]:.2f} ms", flush=True)
                finally:
                    server.stop()
    finally:
        sink.stop()
    off, on = spread(latencies["off"]), spread(latencies["on"])
    return {"confirms_per_run": confirms, "confirm_ms_off": off, "confirm_ms_on": on,
            "ratio": on["median"] / off["median"], "delivery_lag_ms": spread(lag)}


def events_markdown(r):
    return "\n".join([
        "## Confirm latency with events on and off (SeaweedFS)", "",
        f"{r['confirms_per_run']} confirms of 1 KiB drafts per run, timed by the client; each run's median. With "
        "EVENTS_URL set, every confirm first writes its `draft.confirmed` entry to the outbox in the store, and a "
        "worker delivers it to a local receiver. Goal: confirm with events within 2 × confirm without.", "",
        "| events | confirm ms (median, min–max) |", "|---|---|",
        f"| off | {r['confirm_ms_off']['median']:.2f} ({r['confirm_ms_off']['min']:.2f}–{r['confirm_ms_off']['max']:.2f}) |",
        f"| on | {r['confirm_ms_on']['median']:.2f} ({r['confirm_ms_on']['min']:.2f}–{r['confirm_ms_on']['max']:.2f}) |",
        "",
        f"On ÷ off: **{r['ratio']:.2f}** ({'met' if r['ratio'] <= 2 else 'missed'}). From the confirm's answer to the "
        f"event's arrival: median {r['delivery_lag_ms']['median']:.1f} ms.",
    ])


class Clamd:
    """clamd on CPU 1 (where the load runs), on a free loopback port, with a signature database of its own: a marker
    that only a scan of every byte finds when it ends a file."""

    MARKER = b"DRAFTSTORE-BENCH-MARKER-5d2e"

    def __init__(self):
        clamd = shutil.which("clamd") or "/usr/sbin/clamd"
        self.dir = tempfile.mkdtemp(prefix="bench-clamd-")
        os.mkdir(os.path.join(self.dir, "db"))
        with open(os.path.join(self.dir, "db", "bench.ndb"), "w") as f:
            f.write(f"DraftStore.Bench.Marker:0:*:{self.MARKER.hex()}\n")
        self.port = free_port()
        self.config = os.path.join(self.dir, "clamd.conf")
        with open(self.config, "w") as f:
            f.write(f"Foreground yes\nTCPSocket {self.port}\nTCPAddr 127.0.0.1\nDatabaseDirectory {self.dir}/db\n"
                    f"PidFile {self.dir}/clamd.pid\nTemporaryDirectory {self.dir}\nLogFile {self.dir}/clamd.log\n"
                    "StreamMaxLength 1100M\nMaxFileSize 1100M\nMaxScanSize 1100M\nAlertExceedsMax yes\n")
        self.process = subprocess.Popen(["taskset", "-c", "1", clamd, "-c", self.config], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    s.sendall(b"zPING\0")
                    if s.recv(16) == b"PONG\0":
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit("clamd did not answer PING within 60 s")

    def stop(self):
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def bench_checks(opts, weed):
    """Confirm latency on SeaweedFS with CONTENT_CHECKS on and off, for 1 KiB and 100 MiB drafts; and a 1 GiB draft
    scanned through DraftStore (store to DraftStore to clamd) against `clamdscan --stream` of the same local file."""
    work = tempfile.mkdtemp(prefix="bench-checks-", dir=opts.scratch)
    sizes = {"1 KiB": (1 << 10, 50), "100 MiB": (100 << 20, 3)}
    files = {}
    for label, (size, _) in sizes.items():
        files[label] = os.path.join(work, f"{size}.bin")
        subprocess.run(["head", "-c", str(size), "/dev/urandom"], stdout=open(files[label], "wb"), check=True)
    latencies = {(label, mode): [] for label in sizes for mode in ("off", "on")}
    clamd = Clamd()
    try:
        for run in range(opts.runs):
            for mode in ("off", "on"):
                bucket = f"checks-{os.getpid()}-{mode}"
                server = draftstore(opts, s3_env(weed, bucket, CONTENT_CHECKS=mode))
                port = server.port["http"]
                try:
                    for label, (size, count) in sizes.items():
                        timings = []
                        for i in range(count):
                            key = f"bench/{run}/{label.replace(' ', '')}/{i}.bin"
                            ticket, _ = http_json(port, "/api/v1/upload-url",
                                                  {"object_name": key, "content_type": "application/octet-stream"})
                            put_file(ticket["upload_url"], files[label])
                            _, elapsed = http_json(port, "/api/v1/confirm-upload", {"object_name": key})
                            timings.append(elapsed * 1e3)
                            weed.client.delete_object(Bucket=bucket, Key=key)
                        latencies[(label, mode)].append(statistics.median(timings))
                        print(f"checks {mode}, {label}, run {run}: confirm median {latencies[(label, mode)][-1]:.2f} "
                              "ms", flush=True)
                finally:
                    server.stop()

        # 1 GiB ending in the marker: the confirm is refused once clamd has had every byte, and nothing is moved.
        big = os.path.join(work, "scan.bin")
        subprocess.run(["head", "-c", str((1 << 30) - len(Clamd.MARKER)), "/dev/urandom"], stdout=open(big, "wb"),
                       check=True)
        with open(big, "ab") as f:
            f.write(Clamd.MARKER)
        bucket = f"scan-{os.getpid()}"
        server = draftstore(opts, s3_env(weed, bucket, CLAMD_ADDRESS=f"tcp://127.0.0.1:{clamd.port}",
                                         SCAN_MAX_SIZE=str(1100 << 20), CONTENT_CHECKS="off"))
        port = server.port["http"]
        scans = {"draftstore": [], "clamdscan": []}
        try:
            for run in range(opts.runs):
                key = f"bench/{run}/scan.bin"
                ticket, _ = http_json(port, "/api/v1/upload-url",
                                      {"object_name": key, "content_type": "application/octet-stream"})
                put_file(ticket["upload_url"], big)
                started = time.perf_counter()
                answer = subprocess.run(["curl", "-sS", "-X", "POST", "-H", "Content-Type: application/json", "-d",
                                         json.dumps({"object_name": key}),
                                         f"http://127.0.0.1:{port}/api/v1/confirm-upload"],
                                        capture_output=True, text=True, check=True).stdout
                scans["draftstore"].append(time.perf_counter() - started)
                if "UPLOAD_INFECTED" not in answer:
                    raise SystemExit(f"the scan through DraftStore missed the marker: {answer}")
                started = time.perf_counter()
                found = subprocess.run(["taskset", "-c", "1", "clamdscan", f"--config-file={clamd.config}", "--stream",
                                        "--no-summary", big], capture_output=True, text=True).stdout
                scans["clamdscan"].append(time.perf_counter() - started)
                if "FOUND" not in found:
                    raise SystemExit(f"clamdscan missed the marker: {found}")
                print(f"scan run {run}: DraftStore {scans['draftstore'][-1]:.1f} s, clamdscan "
                      f"{scans['clamdscan'][-1]:.1f} s", flush=True)
        finally:
            server.stop()
    finally:
        clamd.stop()
        shutil.rmtree(work, ignore_errors=True)
    result = {"confirms": {label: count for label, (_, count) in sizes.items()}, "confirm_ms": {}, "ratios": {}}
    for label in sizes:
        off, on = spread(latencies[(label, "off")]), spread(latencies[(label, "on")])
        result["confirm_ms"][label] = {"off": off, "on": on}
        result["ratios"][label] = on["median"] / off["median"]
    result["scan_seconds"] = {who: spread(values) for who, values in scans.items()}
    result["scan_ratio"] = result["scan_seconds"]["clamdscan"]["median"] / result["scan_seconds"]["draftstore"]["median"]
    return result


def checks_markdown(r):
    def cell(m):
        return f"{m['median']:.2f} ({m['min']:.2f}–{m['max']:.2f})"

    lines = ["## Content checks and scanning (SeaweedFS)", "",
             "Confirm latency with `CONTENT_CHECKS` on and off, timed by the client, each run's median of "
             + " and ".join(f"{n} confirms of {label}" for label, n in r["confirms"].items())
             + " drafts (random bytes, so detection reads the head and finds no type). Goal: on ÷ off ≤ 1.2 for both: "
             "only the head is read.", "",
             "| draft | off, ms | on, ms | on ÷ off |", "|---|---|---|---|"]
    for label, m in r["confirm_ms"].items():
        ratio = r["ratios"][label]
        lines.append(f"| {label} | {cell(m['off'])} | {cell(m['on'])} | **{ratio:.2f}** "
                     f"({'met' if ratio <= 1.2 else 'MISSED'}) |")
    d, c = r["scan_seconds"]["draftstore"], r["scan_seconds"]["clamdscan"]
    lines += ["",
              "A 1 GiB draft ending in a marker of the benchmark's signature database, confirmed with `CLAMD_ADDRESS` "
              "(the confirm answers `UPLOAD_INFECTED` once clamd has had every byte from the store through DraftStore), "
              "against `clamdscan --stream` of the same local file to the same clamd (pinned to CPU 1).", "",
              "| scan of 1 GiB | seconds (median, min–max) |", "|---|---|",
              f"| through DraftStore, from SeaweedFS | {cell(d)} |", f"| `clamdscan --stream`, local file | {cell(c)} |", "",
              f"Throughput, DraftStore ÷ clamdscan: **{r['scan_ratio']:.2f}**, goal ≥ 0.8: "
              f"{'met' if r['scan_ratio'] >= 0.8 else 'MISSED'}."]
    return "\n".join(lines)


def bench_sets(opts, weed):
    """A set of 100 drafts of 1 KiB confirmed in one confirm-set, against the same 100 confirmed one by one, 8 at a
    time, on SeaweedFS; both under final names. Wall time of each, alternated, five rounds a run."""
    import concurrent.futures
    import urllib.request
    count, parallel, rounds = 100, 8, 5
    bucket = f"sets-{os.getpid()}"
    server = draftstore(opts, s3_env(weed, bucket))
    port = server.port["http"]
    body = os.urandom(1024)

    def upload(name):
        ticket, _ = http_json(port, "/api/v1/upload-url", {"object_name": name, "content_type": "application/octet-stream"})
        request = urllib.request.Request(ticket["upload_url"], data=body, method="PUT", headers=ticket["headers"])
        with urllib.request.urlopen(request) as answer:
            if answer.status != 200:
                raise SystemExit(f"upload of {name} answered {answer.status}")

    timings = {"set": [], "singles": []}
    try:
        with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
            for run in range(opts.runs):
                for round_ in range(rounds):
                    names = {side: [f"{side}/{run}-{round_}/{i}.bin" for i in range(count)] for side in timings}
                    list(pool.map(upload, names["set"] + names["singles"]))
                    sides = ["set", "singles"] if (run + round_) % 2 == 0 else ["singles", "set"]
                    for side in sides:
                        started = time.perf_counter()
                        if side == "set":
                            drafts = [{"object_name": n, "final_name": "done/" + n} for n in names["set"]]
                            http_json(port, "/api/v1/confirm-set",
                                      {"idempotency_key": f"bench-{run}-{round_}", "drafts": drafts})
                        else:
                            list(pool.map(lambda n: http_json(port, "/api/v1/confirm-upload",
                                                              {"object_name": n, "final_name": "done/" + n}),
                                          names["singles"]))
                        timings[side].append((time.perf_counter() - started) * 1e3)
                    print(f"sets run {run} round {round_}: set {timings['set'][-1]:.1f} ms, 100 singles "
                          f"{timings['singles'][-1]:.1f} ms", flush=True)
    finally:
        server.stop()
    result = {"drafts": count, "parallel": parallel, "rounds": rounds,
              "ms": {side: spread(values) for side, values in timings.items()}}
    result["ratio"] = result["ms"]["set"]["median"] / result["ms"]["singles"]["median"]
    return result


def sets_markdown(r):
    def cell(m):
        return f"{m['median']:.1f} ({m['min']:.1f}–{m['max']:.1f})"

    ratio = r["ratio"]
    return "\n".join([
        "## Sets (SeaweedFS)", "",
        f"{r['drafts']} drafts of 1 KiB confirmed under final names in one `confirm-set`, against the same number "
        f"confirmed one by one, {r['parallel']} requests in flight; wall time, alternated, {r['rounds']} rounds a run "
        "(median of every round, min–max).", "",
        "| confirm | ms |", "|---|---|",
        f"| one set of {r['drafts']} | {cell(r['ms']['set'])} |",
        f"| {r['drafts']} single confirms, {r['parallel']} at a time | {cell(r['ms']['singles'])} |", "",
        f"Set ÷ singles: **{ratio:.2f}**, goal ≤ 1.0: {'met' if ratio <= 1.0 else 'MISSED'}.",
    ])


def bench_clients(opts, weed):
    """A 1 GiB file uploaded to SeaweedFS as a draft by the Python client, the TypeScript client and DraftStore's own
    CLI, each with its default settings, pinned to CPU 1; wall time, alternated."""
    size = opts.clients_gib << 30
    path = os.path.join(opts.scratch, "big.bin")
    subprocess.run(["head", "-c", str(size), "/dev/urandom"], stdout=open(path, "wb"), check=True)
    bucket = f"clients-{os.getpid()}"
    server = draftstore(opts, s3_env(weed, bucket))
    url = f"http://127.0.0.1:{server.port['http']}"
    state = tempfile.mkdtemp(prefix="bench-clients-state-", dir=opts.scratch)
    dist = os.path.join(ROOT, "clients", "typescript", "dist", "index.js")
    commands = {
        "cli": lambda name: [opts.draftstore, "upload", path, "--name", name, "--quiet"],
        "python": lambda name: [sys.executable, "-c", "import sys; from draftstore import Client; "
                                "Client(sys.argv[1]).upload_file(sys.argv[2], sys.argv[3])", url, path, name],
        "typescript": lambda name: ["node", "--input-type=module", "-e",
                                    f"import {{ DraftStore }} from {json.dumps(dist)}; "
                                    "const [url, path, name] = process.argv.slice(1); "
                                    "await new DraftStore(url).uploadFile(path, name)", url, path, name],
    }
    env = dict(os.environ, DRAFTSTORE_URL=url, DRAFTSTORE_STATE_DIR=state,
               PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "clients", "python", "src"),
                                           os.path.join(ROOT, ".tools", "clients-python")]))
    seconds = {side: [] for side in commands}
    try:
        for run in range(opts.runs):
            sides = list(commands)[run % 3:] + list(commands)[:run % 3]
            for side in sides:
                name = f"bench/{run}/{side}.bin"
                os.sync()
                started = time.perf_counter()
                subprocess.run(["taskset", "-c", "1", *commands[side](name)], env=env, check=True)
                seconds[side].append(time.perf_counter() - started)
                print(f"clients run {run}: {side} {seconds[side][-1]:.1f} s", flush=True)
                weed.client.delete_object(Bucket=f"{bucket}-draft", Key=name)
            weed.vacuum()
    finally:
        server.stop()
    result = {"gib": opts.clients_gib, "seconds": {side: spread(values) for side, values in seconds.items()}}
    cli = result["seconds"]["cli"]["median"]
    result["ratios"] = {side: cli / result["seconds"][side]["median"] for side in ("python", "typescript")}
    return result


def clients_markdown(r):
    def cell(m):
        return f"{m['median']:.1f} ({m['min']:.1f}–{m['max']:.1f})"

    lines = ["## The Python and TypeScript clients (SeaweedFS)", "",
             f"One {r['gib']} GiB file uploaded as a draft, in parts with their SHA-256, by each client's upload "
             "helper with its default settings (Python `Client.upload_file`, TypeScript `uploadFile` on Node) and by "
             "DraftStore's own CLI (`draftstore upload`), each pinned to CPU 1; wall time of the whole command.", "",
             "| uploader | seconds | throughput ÷ CLI |", "|---|---|---|",
             f"| `draftstore upload` | {cell(r['seconds']['cli'])} | 1.00 |"]
    for side, label in (("python", "Python client"), ("typescript", "TypeScript client")):
        ratio = r["ratios"][side]
        lines.append(f"| {label} | {cell(r['seconds'][side])} | **{ratio:.2f}** (goal ≥ 0.8: "
                     f"{'met' if ratio >= 0.8 else 'MISSED'}) |")
    return "\n".join(lines)


def cpu_seconds(pid):
    """User and system CPU time a process has used, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_end_to_end(opts, weed):
    """The whole flow a user sees, on the same SeaweedFS: many small files by DraftStore (upload-url, PUT to the
    store, confirm), by the tus server (create, PATCH) and by the AWS SDK for JavaScript sending the same S3 calls
    itself, from one Node client on CPU 1; one 1 GiB file by DraftStore's CLI and by tus-js-client; each server's
    CPU time (both pinned to CPU 0, as SeaweedFS is), and SeaweedFS's on every side."""
    tools = os.path.join(ROOT, ".tools", "tus")
    client = os.path.join(ROOT, "bench", "tus", "client.mjs")
    count, size, parallel = opts.e2e_files, 64 << 10, 16
    bucket = f"e2e-{os.getpid()}"
    env = dict(os.environ, DRAFTSTORE_TUS_TOOLS=tools, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    weed.client.create_bucket(Bucket=f"{bucket}-tus")
    server = draftstore(opts, s3_env(weed, bucket, MAX_UPLOAD_SIZE=str(2 << 30)))
    port = server.port["http"]
    tus = subprocess.Popen(["taskset", "-c", "0", "node", os.path.join(ROOT, "bench", "tus", "server.mjs"),
                            weed.endpoint, f"{bucket}-tus"], env=env, stdout=subprocess.PIPE, text=True)
    line = tus.stdout.readline()
    if not line.startswith("listening "):
        raise SystemExit(f"the tus server did not start: {line}")
    tus_url = f"http://127.0.0.1:{int(line.split()[1])}/files"
    servers = {"draftstore": server.process.pid, "tus": tus.pid, "s3": None}
    rates = {who: [] for who in servers}
    cpu_per_file = {"draftstore": [], "tus": []}
    store_cpu_per_file = {who: [] for who in servers}

    def node(*args):
        out = subprocess.run(["taskset", "-c", "1", "node", client, *args], env=env, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"the client failed: {out.stderr}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if result["failed"]:
            raise SystemExit(f"{args[0]}: {result['failed']} of {result['files']} failed:\n{out.stderr}")
        return result

    work = tempfile.mkdtemp(prefix="bench-e2e-", dir=opts.scratch)
    try:
        for run in range(opts.runs):
            for who, target, extra in (("draftstore", f"http://127.0.0.1:{port}", []), ("tus", tus_url, []),
                                       ("s3", weed.endpoint, [bucket])):
                before = cpu_seconds(servers[who]) if servers[who] else 0
                store_before = cpu_seconds(weed.process.pid)
                result = node(who, target, str(count), str(size), str(parallel), *extra)
                rates[who].append(result["files"] / result["seconds"])
                if servers[who]:
                    cpu_per_file[who].append((cpu_seconds(servers[who]) - before) / count)
                store_cpu_per_file[who].append((cpu_seconds(weed.process.pid) - store_before) / count)
                print(f"end to end {who}, run {run}: {rates[who][-1]:.0f} files/s", flush=True)
            weed.vacuum()

        # One 1 GiB file: DraftStore's CLI to SeaweedFS (multipart, parts straight to the store) and tus-js-client
        # to the tus server (which proxies every byte to the store).
        path = os.path.join(work, "big.bin")
        gib = 1 << 30
        subprocess.run(["head", "-c", str(gib), "/dev/urandom"], stdout=open(path, "wb"), check=True)
        cli_env = dict(os.environ, DRAFTSTORE_URL=f"http://127.0.0.1:{port}",
                       DRAFTSTORE_STATE_DIR=os.path.join(work, "state"))
        big = {"draftstore": [], "tus": []}
        cpu_per_gib = {"draftstore": [], "tus": []}
        for run in range(opts.runs):
            before = cpu_seconds(servers["draftstore"])
            os.sync()
            elapsed, _, _ = run_measured([opts.draftstore, "upload", path, "--name", f"e2e/big-{run}", "--quiet"],
                                         cli_env)
            big["draftstore"].append(elapsed)
            cpu_per_gib["draftstore"].append(cpu_seconds(servers["draftstore"]) - before)
            http_json(port, "/api/v1/discard-draft", {"object_name": f"e2e/big-{run}"})
            before = cpu_seconds(servers["tus"])
            os.sync()
            result = node("tus-file", tus_url, path)
            big["tus"].append(result["seconds"])
            cpu_per_gib["tus"].append(cpu_seconds(servers["tus"]) - before)
            print(f"end to end 1 GiB, run {run}: DraftStore CLI {big['draftstore'][-1]:.1f} s, tus-js-client "
                  f"{big['tus'][-1]:.1f} s", flush=True)
            weed.vacuum()
    finally:
        server.stop()
        tus.kill()
        tus.wait()
        shutil.rmtree(work, ignore_errors=True)
    result = {"files": count, "file_kib": size >> 10, "parallel": parallel,
              "files_per_s": {who: spread(values) for who, values in rates.items()},
              "cpu_ms_per_file": {who: spread([v * 1e3 for v in values]) for who, values in cpu_per_file.items()},
              "store_cpu_ms_per_file": {who: spread([v * 1e3 for v in values])
                                        for who, values in store_cpu_per_file.items()},
              "gib_seconds": {who: spread(values) for who, values in big.items()},
              "cpu_s_per_gib": {who: spread(values) for who, values in cpu_per_gib.items()}}
    med = lambda group, who: result[group][who]["median"]  # noqa: E731
    result["ratios"] = {
        "files_vs_tus": med("files_per_s", "draftstore") / med("files_per_s", "tus"),
        "files_vs_s3": med("files_per_s", "draftstore") / med("files_per_s", "s3"),
        "gib_vs_tus": med("gib_seconds", "tus") / med("gib_seconds", "draftstore"),
        "cpu_file_vs_tus": med("cpu_ms_per_file", "draftstore") / med("cpu_ms_per_file", "tus"),
        "cpu_gib_vs_tus": med("cpu_s_per_gib", "draftstore") / max(med("cpu_s_per_gib", "tus"), 1e-9),
    }
    return result


def end_to_end_markdown(r):
    def cell(m, digits=1):
        return f"{m['median']:.{digits}f} ({m['min']:.{digits}f}–{m['max']:.{digits}f})"

    f, c, g, cg, x = r["files_per_s"], r["cpu_ms_per_file"], r["gib_seconds"], r["cpu_s_per_gib"], r["ratios"]
    store = r["store_cpu_ms_per_file"]

    def verdict(value, goal, at_least=True):
        met = value >= goal if at_least else value <= goal
        return f"**{value:.2f}** (goal {'≥' if at_least else '≤'} {goal}: {'met' if met else 'MISSED'})"

    return "\n".join([
        "## End to end against the tus server and against doing it by hand (SeaweedFS)", "",
        f"{r['files']} files of {r['file_kib']} KiB, {r['parallel']} in flight, from one Node client on CPU 1: "
        "DraftStore (upload-url, PUT to the store, confirm), the tus protocol's official Node server (`@tus/server` "
        "with `@tus/s3-store`: create, PATCH; it proxies every byte), and the AWS SDK for JavaScript sending the same "
        "S3 calls itself (PutObject, CopyObject, DeleteObject). Both servers on CPU 0, with SeaweedFS; CPU times "
        "from `/proc`, the server's without SeaweedFS's.", "",
        "| side | files/s | server CPU ms per file | SeaweedFS CPU ms per file |", "|---|---|---|---|",
        f"| DraftStore | {cell(f['draftstore'])} | {cell(c['draftstore'], 3)} | {cell(store['draftstore'], 3)} |",
        f"| tus server | {cell(f['tus'])} | {cell(c['tus'], 3)} | {cell(store['tus'], 3)} |",
        f"| AWS SDK, by hand | {cell(f['s3'])} | none | {cell(store['s3'], 3)} |", "",
        "One 1 GiB file: DraftStore's CLI (multipart, parts straight to the store) and `tus-js-client` to the tus "
        "server (64 MiB PATCHes).", "",
        "| side | seconds | server CPU s per GiB |", "|---|---|---|",
        f"| DraftStore CLI | {cell(g['draftstore'])} | {cell(cg['draftstore'], 2)} |",
        f"| tus-js-client | {cell(g['tus'])} | {cell(cg['tus'], 2)} |", "",
        f"- files/s, DraftStore ÷ tus: {verdict(x['files_vs_tus'], 4)}",
        f"- files/s, DraftStore ÷ the AWS SDK by hand: {verdict(x['files_vs_s3'], 1.2)}",
        f"- 1 GiB speed, DraftStore CLI ÷ tus-js-client: {verdict(x['gib_vs_tus'], 1.5)}",
        f"- server CPU per file, DraftStore ÷ tus: {verdict(x['cpu_file_vs_tus'], 0.05, at_least=False)}",
        f"- server CPU per GiB, DraftStore ÷ tus: {verdict(x['cpu_gib_vs_tus'], 0.05, at_least=False)}",
    ])


def bench_proxy(opts, weed):
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


def proxy_markdown(r):
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


# The sections, in the order they run: the name `--only` takes, the key of the results, the measurement, its text.
SECTIONS = {
    "upload-url": ("upload_url", bench_upload_url, upload_url_markdown),
    "connection-limits": ("connection_limits", bench_connection_limits, connection_limits_markdown),
    "tracing": ("tracing", bench_tracing, tracing_markdown),
    "proxy": ("proxy", bench_proxy, proxy_markdown),
    "big-confirm": ("big_confirm", bench_big_confirm, big_confirm_markdown),
    "objects": ("objects", bench_objects, objects_markdown),
    "local-store": ("local_store", bench_local_store, local_store_markdown),
    "multipart": ("multipart", bench_multipart, multipart_markdown),
    "cli": ("cli", bench_cli, cli_markdown),
    "soak": ("soak", bench_soak, soak_markdown),
    "events": ("events", bench_events, events_markdown),
    "checks": ("checks", bench_checks, checks_markdown),
    "sets": ("sets", bench_sets, sets_markdown),
    "clients": ("clients", bench_clients, clients_markdown),
    "end-to-end": ("end_to_end", bench_end_to_end, end_to_end_markdown),
    "cleaner": ("cleaner", bench_cleaner, cleaner_markdown),
    "store-probe": ("store_probe", bench_store_probe, store_probe_markdown),
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--weed", required=True)
    parser.add_argument("--draftstore", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=list(SECTIONS), action="append",
                        default=None)
    parser.add_argument("--multipart-gib", type=int, default=4, help="size of the multipart upload, GiB")
    parser.add_argument("--cli-gib", type=int, default=1, help="size of the command-line upload, GiB")
    parser.add_argument("--clients-gib", type=int, default=1, help="size of the clients' upload, GiB")
    parser.add_argument("--e2e-files", type=int, default=2000, help="small files per side in the end-to-end section")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--soak-seconds", type=int, default=600, help="length of each soak run")
    parser.add_argument("--soak-rate", type=float, default=20, help="soak sessions started per second")
    parser.add_argument("--bare", required=True)
    parser.add_argument("--grpc-load", required=True)
    parser.add_argument("--populate", required=True)
    parser.add_argument("--haproxy", default="/usr/sbin/haproxy")
    parser.add_argument("--companion", default=None, help="Companion's bin/companion script; omitted: not measured")
    parser.add_argument("--scratch", default=None, help="folder for large temporary files (default: the system's)")
    parser.add_argument("--cleaner-counts", type=lambda s: [int(x) for x in s.split(",")], default=[1000, 10000, 100000])
    opts = parser.parse_args()
    opts.draftstore = os.path.abspath(opts.draftstore)
    opts.bare, opts.grpc_load = os.path.abspath(opts.bare), os.path.abspath(opts.grpc_load)
    opts.populate = os.path.abspath(opts.populate)
    opts.companion = opts.companion and os.path.abspath(opts.companion)
    wanted = set(opts.only or SECTIONS)

    results = {"date": datetime.date.today().isoformat(), "machine": machine(), "runs": opts.runs}
    sections = []
    # A partial run (--only) gets a file of its own, so it never replaces a full run's results.
    suffix = "-" + "-".join(sorted(wanted)) if opts.only else ""
    out = os.path.join(ROOT, "bench", "results", results["date"] + suffix)

    def write(complete):
        with open(out + ".json", "w") as f:
            json.dump(dict(results, complete=complete), f, indent=2)
        with open(out + ".md", "w") as f:
            f.write(f"# DraftStore benchmarks, {results['date']}\n\nMachine: {results['machine']}. "
                    f"Every figure is the median of {opts.runs} runs with the min–max spread, unless its section says "
                    "otherwise.\n\n")
            if not complete:
                f.write("**Incomplete: the run stopped before its last section.**\n\n")
            f.write("\n\n".join(sections) + "\n")

    weed = SeaweedFs(opts.weed)
    scratch = opts.scratch
    try:
        for name, (key, measure, markdown) in SECTIONS.items():
            if name in wanted:
                # Each section's large files in a folder of its own, removed even when the section fails.
                opts.scratch = tempfile.mkdtemp(prefix=f"bench-{name}-", dir=scratch)
                try:
                    results[key] = measure(opts, weed)
                finally:
                    shutil.rmtree(opts.scratch, ignore_errors=True)
                sections.append(markdown(results[key]))
                # Written after every section, so that a run cut off keeps what it measured (marked incomplete).
                write(complete=False)
    finally:
        weed.stop()
    write(complete=True)
    print(open(out + ".md").read())


if __name__ == "__main__":
    main()
