"""DraftStore's benchmark harness (run it through bench/run).

Every comparison is a ratio measured in the same run, every figure the median of several runs with its spread.
Servers run on CPU 0, load generators and clients on CPU 1. Results go to bench/results/<date>.md and .json.
"""

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import tempfile
import time

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


class SeaweedFs:
    """SeaweedFS on CPU 0, on free loopback ports; ready once a bucket can be written."""

    def __init__(self, weed):
        self.dir = tempfile.mkdtemp(prefix="bench-weed-")
        config = os.path.join(self.dir, "s3.json")
        with open(config, "w") as f:
            json.dump({"identities": [{"name": "admin", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                                       "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}, f)
        base = free_base()
        self.endpoint = f"http://127.0.0.1:{base}"
        args = ["taskset", "-c", "0", os.path.abspath(weed), "mini", f"-dir={self.dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                "-master.telemetry=false", "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
                "-s3.autoCreateBucket=false", f"-s3.config={config}", f"-s3.port={base}", f"-master.port={base + 1}",
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

    def stop(self):
        self.process.kill()
        self.process.wait()


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
            with concurrent.futures.ThreadPoolExecutor(64) as pool:
                list(pool.map(lambda i: weed.client.put_object(Bucket=draft, Key=f"d/{i % 100}/{i}.bin", Body=b"x" * 16),
                              range(count)))
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--weed", required=True)
    parser.add_argument("--draftstore", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=["cleaner"], default=None)
    parser.add_argument("--cleaner-counts", type=lambda s: [int(x) for x in s.split(",")], default=[1000, 10000, 100000])
    opts = parser.parse_args()
    opts.draftstore = os.path.abspath(opts.draftstore)

    results = {"date": datetime.date.today().isoformat(), "machine": machine(), "runs": opts.runs}
    sections = []
    weed = SeaweedFs(opts.weed)
    try:
        results["cleaner"] = bench_cleaner(opts, weed)
        sections.append(cleaner_markdown(results["cleaner"]))
    finally:
        weed.stop()

    out = os.path.join(ROOT, "bench", "results", results["date"])
    with open(out + ".json", "w") as f:
        json.dump(results, f, indent=2)
    with open(out + ".md", "w") as f:
        f.write(f"# DraftStore benchmarks, {results['date']}\n\nMachine: {results['machine']}. "
                f"Every figure is the median of {opts.runs} runs with the min–max spread.\n\n")
        f.write("\n\n".join(sections) + "\n")
    print(open(out + ".md").read())


if __name__ == "__main__":
    main()
