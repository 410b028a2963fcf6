"""The cli section: `draftstore upload` of a large file to the local backend against `curl -T` of the same file to a
presigned URL, and the client's peak RSS at two file sizes.
"""

import base64
import os
import shutil
import statistics
import subprocess
import tempfile
import time

from harness import draftstore, http_json, run_measured, spread


def measure(opts, weed):
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


def markdown(r):
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
