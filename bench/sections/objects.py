"""The objects section: confirm latency by object size on both backends; upload throughput and memory on the local
backend.
"""

import os
import statistics
import subprocess
import tempfile

from harness import dd_seconds, draftstore, http_json, put_file, s3_env, spread


SIZES = {"1 KiB": 1024, "1 MiB": 1 << 20, "100 MiB": 100 << 20, "1 GiB": 1 << 30}


def measure(opts, weed):
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
        dd.append((1 << 30) / dd_seconds(files["1 GiB"], os.path.join(work, f"dd-{run}.bin"), "1M") / (1 << 20))
    local_gib = results["confirm"]["local"]["1 GiB"]["upload_mib_s"]
    results["upload"] = {"local_put_mib_s": local_gib, "dd_mib_s": spread(dd),
                         "ratio": local_gib["median"] / statistics.median(dd)}
    for backend, rows in results["confirm"].items():
        base = rows["1 KiB"]["confirm_ms"]["median"]
        for row in rows.values():
            row["ratio_to_1kib"] = row["confirm_ms"]["median"] / base
    subprocess.run(["rm", "-rf", work], check=True)
    return results


def markdown(r):
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
