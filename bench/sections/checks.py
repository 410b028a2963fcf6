"""The checks section: confirm latency on SeaweedFS with CONTENT_CHECKS on and off, for 1 KiB and 100 MiB drafts; and a
1 GiB draft scanned through DraftStore (store to DraftStore to clamd) against `clamdscan --stream` of the same local
file.
"""

import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time

from harness import draftstore, free_port, http_json, put_file, s3_env, spread


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


def measure(opts, weed):
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


def markdown(r):
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
