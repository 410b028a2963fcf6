"""The resumable section (issue 43): DraftStore's tus endpoint (`/files/`) against the tus protocol's official Node
server (`@tus/server` with `@tus/s3-store`) on the same SeaweedFS, and against DraftStore's own presigned path
(upload-url and one PUT) on the local backend. The same tus-js-client, with the same options, drives both tus servers.
"""

import json
import os
import subprocess
import urllib.parse

from harness import ACCESS_KEY, ROOT, SECRET_KEY, draftstore, http_json, s3_env, spread
from sections.end_to_end import cpu_seconds

GIB = 1 << 30
SMALL = 64 << 10
IN_FLIGHT = 16


def empty(weed, bucket):
    """Deletes every object of `bucket`: each round's uploads go, so that a full run does not fill the disk."""
    paginator = weed.client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            weed.client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


class Client:
    """bench/tus/client.mjs on CPU 1, one JSON line per call."""

    def __init__(self):
        self.script = os.path.join(ROOT, "bench", "tus", "client.mjs")
        self.env = dict(os.environ, DRAFTSTORE_TUS_TOOLS=os.path.join(ROOT, ".tools", "tus"),
                        AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)

    def __call__(self, *args):
        out = subprocess.run(["taskset", "-c", "1", "node", self.script, *args], env=self.env, capture_output=True,
                             text=True)
        if out.returncode != 0:
            raise SystemExit(f"the client ({args[0]}) failed: {out.stderr}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if result["failed"]:
            raise SystemExit(f"{args[0]}: {result['failed']} of {result['files']} failed:\n{out.stderr}")
        return result


class Side:
    """One way of uploading, measured run after run: seconds, the server's CPU seconds and SeaweedFS's."""

    def __init__(self, pid, weed=None):
        self.pid, self.weed = pid, weed
        self.seconds, self.cpu, self.store_cpu = [], [], []

    def measure(self, upload):
        """Runs `upload()` (which returns the client's result) between two readings of the CPU times."""
        os.sync()
        before = cpu_seconds(self.pid)
        store_before = cpu_seconds(self.weed.process.pid) if self.weed else 0
        result = upload()
        self.cpu.append(cpu_seconds(self.pid) - before)
        if self.weed:
            self.store_cpu.append(cpu_seconds(self.weed.process.pid) - store_before)
        self.seconds.append(result["seconds"])
        return result

    def summary(self, total_bytes):
        out = {"seconds": spread(self.seconds),
               "mib_s": spread([total_bytes / s / (1 << 20) for s in self.seconds]),
               "cpu_s_per_gib": spread([c * GIB / total_bytes for c in self.cpu])}
        if self.store_cpu:
            out["store_cpu_s_per_gib"] = spread([c * GIB / total_bytes for c in self.store_cpu])
        return out


def tus_server(weed, bucket, env):
    """@tus/server with @tus/s3-store on CPU 0 (bench/tus/server.mjs), storing into `bucket`; (process, endpoint)."""
    process = subprocess.Popen(["taskset", "-c", "0", "node", os.path.join(ROOT, "bench", "tus", "server.mjs"),
                                weed.endpoint, bucket], env=env, stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    if not line.startswith("listening "):
        raise SystemExit(f"the tus server did not start: {line}")
    return process, f"http://127.0.0.1:{int(line.split()[1])}/files"


def against_tus(opts, weed, client, big):
    """DraftStore's tus endpoint ÷ @tus/server on the same SeaweedFS, both on CPU 0, the same client on CPU 1: 2,000
    uploads of 64 KiB with 16 in flight, then one 1 GiB upload in 64 MiB PATCHes; every round's uploads removed
    after it. The two servers take turns going first."""
    bucket = f"resumable-{os.getpid()}"
    weed.client.create_bucket(Bucket=f"{bucket}-tus")
    server = draftstore(opts, s3_env(weed, bucket, MAX_UPLOAD_SIZE=str(2 * GIB)))
    tus, tus_url = tus_server(weed, f"{bucket}-tus", client.env)
    targets = {"draftstore": f"http://127.0.0.1:{server.port['http']}/files/", "tus": tus_url}
    buckets = {"draftstore": f"{bucket}-draft", "tus": f"{bucket}-tus"}
    small = {"draftstore": Side(server.process.pid, weed), "tus": Side(tus.pid, weed)}
    large = {"draftstore": Side(server.process.pid, weed), "tus": Side(tus.pid, weed)}
    try:
        for run in range(opts.runs):
            order = ["draftstore", "tus"] if run % 2 == 0 else ["tus", "draftstore"]
            for who in order:
                result = small[who].measure(lambda: client("tus", targets[who], str(opts.e2e_files), str(SMALL),
                                                           str(IN_FLIGHT)))
                print(f"resumable {who}, run {run}: {result['files'] / result['seconds']:.0f} uploads/s", flush=True)
                empty(weed, buckets[who])
            weed.vacuum()
            for who in order:
                result = large[who].measure(lambda: client("tus-file", targets[who], big))
                print(f"resumable {who}, run {run}: 1 GiB in {result['seconds']:.1f} s", flush=True)
                empty(weed, buckets[who])
                weed.vacuum()
    finally:
        server.stop()
        tus.kill()
        tus.wait()
    small_bytes = opts.e2e_files * SMALL
    return {"small": {who: side.summary(small_bytes) for who, side in small.items()},
            "large": {who: side.summary(GIB) for who, side in large.items()}}


def against_presigned(opts, client, big):
    """DraftStore's tus endpoint ÷ its presigned path (upload-url, then the PUT to the signed URL, which the local
    backend serves itself), on the local backend, the same server: the same 2,000 × 64 KiB and 1 GiB. Neither is
    confirmed; the 1 GiB drafts are discarded after each round."""
    data = os.path.join(opts.scratch, "data")
    server = draftstore(opts, {"STORAGE_TYPE": "local", "DATA_DIR": data, "MAX_UPLOAD_SIZE": str(2 * GIB)})
    port = server.port["http"]
    base = f"http://127.0.0.1:{port}"
    small = {"tus": Side(server.process.pid), "presigned": Side(server.process.pid)}
    large = {"tus": Side(server.process.pid), "presigned": Side(server.process.pid)}
    count = str(opts.e2e_files)
    try:
        for run in range(opts.runs):
            order = ["tus", "presigned"] if run % 2 == 0 else ["presigned", "tus"]
            for who in order:
                mode, target = ("tus", f"{base}/files/") if who == "tus" else ("presigned", base)
                result = small[who].measure(lambda: client(mode, target, count, str(SMALL), str(IN_FLIGHT)))
                print(f"resumable local {who}, run {run}: {result['files'] / result['seconds']:.0f} uploads/s",
                      flush=True)
            for who in order:
                if who == "tus":
                    result = large[who].measure(lambda: client("tus-file", f"{base}/files/", big))
                    # A tus upload with a filename and no object_name is the draft uploads/<id>/<filename>.
                    upload_id = urllib.parse.urlsplit(result["url"]).path.rstrip("/").rsplit("/", 1)[1]
                    name = f"uploads/{upload_id}/{os.path.basename(big)}"
                else:
                    name = f"bench/presigned/big-{run}.bin"
                    result = large[who].measure(lambda: client("presigned-file", base, big, name))
                print(f"resumable local {who}, run {run}: 1 GiB in {result['seconds']:.1f} s", flush=True)
                http_json(port, "/api/v1/discard-draft", {"object_name": name})
    finally:
        server.stop()
    small_bytes = opts.e2e_files * SMALL
    return {"small": {who: side.summary(small_bytes) for who, side in small.items()},
            "large": {who: side.summary(GIB) for who, side in large.items()}}


def measure(opts, weed):
    client = Client()
    big = os.path.join(opts.scratch, "big.bin")
    subprocess.run(["head", "-c", str(GIB), "/dev/urandom"], stdout=open(big, "wb"), check=True)
    s3 = against_tus(opts, weed, client, big)
    local = against_presigned(opts, client, big)
    med = lambda group, size, who, what: group[size][who][what]["median"]  # noqa: E731
    ratios = {}
    for size in ("small", "large"):
        ratios[f"{size}_speed_vs_tus"] = med(s3, size, "tus", "seconds") / med(s3, size, "draftstore", "seconds")
        ratios[f"{size}_cpu_vs_tus"] = (med(s3, size, "draftstore", "cpu_s_per_gib")
                                        / max(med(s3, size, "tus", "cpu_s_per_gib"), 1e-9))
        ratios[f"{size}_speed_vs_presigned"] = (med(local, size, "presigned", "seconds")
                                                / med(local, size, "tus", "seconds"))
        ratios[f"{size}_cpu_vs_presigned"] = (med(local, size, "tus", "cpu_s_per_gib")
                                              / max(med(local, size, "presigned", "cpu_s_per_gib"), 1e-9))
    return {"files": opts.e2e_files, "file_kib": SMALL >> 10, "in_flight": IN_FLIGHT, "big_gib": 1,
            "seaweedfs": s3, "local": local, "ratios": ratios}


def markdown(r):
    def cell(m, digits=1):
        return f"{m['median']:.{digits}f} ({m['min']:.{digits}f}–{m['max']:.{digits}f})"

    def verdict(value, goal, at_least=True):
        met = value >= goal if at_least else value <= goal
        return f"**{value:.2f}** (goal {'≥' if at_least else '≤'} {goal}: {'met' if met else 'MISSED'})"

    def rows(group, labels, store):
        lines = []
        for size, what in (("small", f"{r['files']} × {r['file_kib']} KiB"), ("large", "1 GiB")):
            for who, label in labels.items():
                m = group[size][who]
                lines.append(f"| {what} | {label} | {cell(m['seconds'])} | {cell(m['mib_s'])} | "
                             f"{cell(m['cpu_s_per_gib'], 2)} |" + (f" {cell(m['store_cpu_s_per_gib'], 2)} |"
                                                                    if store else ""))
        return lines

    x = r["ratios"]
    return "\n".join([
        "## Resumable uploads: DraftStore's tus endpoint (SeaweedFS and the local backend)", "",
        f"The same `tus-js-client` on CPU 1 (`retryDelays: null`; {r['files']} uploads of {r['file_kib']} KiB, "
        f"{r['in_flight']} in flight, a POST and one PATCH each; one 1 GiB file streamed in 64 MiB PATCHes) "
        "against DraftStore's `/files/` and against `@tus/server` with `@tus/s3-store` (8 MiB parts), both on "
        "CPU 0 with SeaweedFS, on the same SeaweedFS; the servers take turns going first. CPU is user + system "
        "time from `/proc`, per GiB uploaded; the server's without SeaweedFS's, which has a column of its own.", "",
        "| uploads | server | seconds | MiB/s | server CPU s per GiB | SeaweedFS CPU s per GiB |",
        "|---|---|---|---|---|---|",
        *rows(r["seaweedfs"], {"draftstore": "DraftStore `/files/`", "tus": "`@tus/server`"}, True), "",
        f"- {r['files']} × {r['file_kib']} KiB, speed, DraftStore ÷ `@tus/server`: "
        f"{verdict(x['small_speed_vs_tus'], 1.5)}",
        f"- {r['files']} × {r['file_kib']} KiB, server CPU per byte, DraftStore ÷ `@tus/server`: "
        f"{verdict(x['small_cpu_vs_tus'], 0.5, at_least=False)}",
        f"- 1 GiB, speed, DraftStore ÷ `@tus/server`: {verdict(x['large_speed_vs_tus'], 1.5)}",
        f"- 1 GiB, server CPU per byte, DraftStore ÷ `@tus/server`: "
        f"{verdict(x['large_cpu_vs_tus'], 0.5, at_least=False)}",
        "",
        "On the local backend, one DraftStore: the same uploads by `tus-js-client` to `/files/` and by the presigned "
        "path (upload-url, then one PUT to the signed URL, which the local backend serves itself: `fetch` for the "
        "small files, a streamed `node:http` PUT for 1 GiB), none confirmed.", "",
        "| uploads | path | seconds | MiB/s | server CPU s per GiB |", "|---|---|---|---|---|",
        *rows(r["local"], {"tus": "tus `/files/`", "presigned": "presigned"}, False), "",
        f"- {r['files']} × {r['file_kib']} KiB, speed, tus ÷ presigned: **{x['small_speed_vs_presigned']:.2f}**, "
        f"server CPU per byte: **{x['small_cpu_vs_presigned']:.2f}** (reported)",
        f"- 1 GiB, speed, tus ÷ presigned: **{x['large_speed_vs_presigned']:.2f}**, server CPU per byte: "
        f"**{x['large_cpu_vs_presigned']:.2f}** (reported)",
    ])
