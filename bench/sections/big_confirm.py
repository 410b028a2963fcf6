"""The big-confirm section: a 1 GiB draft, uploaded in one PUT to SeaweedFS, confirmed with STORAGE_TIMEOUT=2 and the
default copy settings, against boto3's managed copy of an object uploaded the same way; the two in turn, each run in
the other order.
"""

import os
import shutil
import subprocess
import tempfile
import time

from harness import draftstore, http_json, put_file, s3_env, spread


def measure(opts, weed):
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


def markdown(r):
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
