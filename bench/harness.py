"""The benchmarks' shared machinery: the machine's description, free ports, SeaweedFS and DraftStore as
servers pinned to CPU 0, load generators pinned to CPU 1, measured runs and their spread, the results files.
"""

import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request

import boto3
from botocore.config import Config


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ACCESS_KEY, SECRET_KEY = "bench", "bench-secret"


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


UPLOAD_BODY = json.dumps({"object_name": "bench/object.bin", "content_type": "application/octet-stream"})


def post_script(folder):
    """wrk's script for `POST /api/v1/upload-url` with UPLOAD_BODY, written in `folder`."""
    script = os.path.join(folder, "post.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f"wrk.body = '{UPLOAD_BODY}'\n")
    return script


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


def dd_seconds(source, target, block):
    """Seconds `dd` on CPU 1 takes to copy `source` to `target` with `conv=fsync`, from a synced page cache; the
    copy is removed."""
    os.sync()
    started = time.perf_counter()
    subprocess.run(["taskset", "-c", "1", "dd", f"if={source}", f"of={target}", f"bs={block}", "conv=fsync"],
                   capture_output=True, check=True)
    elapsed = time.perf_counter() - started
    os.remove(target)
    return elapsed


def write_results(out, results, sections, complete):
    """Writes the results so far to `<out>.json` and `<out>.md`: the sections measured, marked incomplete until the
    last one is in."""
    with open(out + ".json", "w") as f:
        json.dump(dict(results, complete=complete), f, indent=2)
    with open(out + ".md", "w") as f:
        f.write(f"# DraftStore benchmarks, {results['date']}\n\nMachine: {results['machine']}. "
                f"Every figure is the median of {results['runs']} runs with the min–max spread, unless its section says "
                "otherwise.\n\n")
        if not complete:
            f.write("**Incomplete: the run stopped before its last section.**\n\n")
        f.write("\n\n".join(sections) + "\n")
