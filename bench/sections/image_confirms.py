"""The image-confirms section (issue 42): what the image pipeline adds to a confirm on SeaweedFS. Confirm latency of a
12-megapixel JPEG with two variants ÷ without variants (the placeholder and the metadata stripping run in both), and
the throughput of confirms of 1 MiB phone photos with two variants, with the server's CPU time per image.
"""

import http.client
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.parse

from harness import draftstore, http_json, s3_env, spread

TWO_VARIANTS = "thumb=256x256,cover,webp;preview=1600x1600,contain,jpeg"
# Confirms in flight in the throughput run: more than the server's one core, so that it is never idle.
IN_FLIGHT = 4


def make_photo(opts, path, size, seed, quality):
    """A photo-like JPEG (ImageMagick's plasma with a fixed seed) tagged as a phone tags it: a GPS position and
    orientation 6, so that stripping has work to do."""
    subprocess.run([opts.convert, "-size", size, "-seed", str(seed), "plasma:", "-quality", str(quality), path],
                   check=True)
    subprocess.run([opts.exiftool, "-q", "-overwrite_original", "-Make=BenchPhone", "-GPSLatitude=48.8584",
                    "-GPSLatitudeRef=N", "-GPSLongitude=2.2945", "-GPSLongitudeRef=E", "-Orientation=6", "-n", path],
                   check=True)


def put_image(url, headers, body):
    """Uploads `body` to a signed URL with the headers it was signed with."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    connection.request("PUT", parts.path + ("?" + parts.query if parts.query else ""), body=body, headers=headers)
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise SystemExit(f"upload answered {response.status}")


def upload(port, name, body):
    ticket, _ = http_json(port, "/api/v1/upload-url", {"object_name": name, "content_type": "image/jpeg",
                                                       "content_length": len(body)})
    put_image(ticket["upload_url"], ticket["headers"], body)


def cpu_seconds(pid):
    """User and system CPU time the process has used, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def latency(opts, weed, photo, runs):
    """Median confirm latency of the 12 MP photo per run, without variants and with two, the servers interleaved."""
    body = open(photo, "rb").read()
    per_run = {"none": [], "two": []}
    variants = []
    for run in range(runs):
        for label, spec in (("none", None), ("two", TWO_VARIANTS)):
            bucket = f"imgconfirm-{os.getpid()}-{label}-{run}"
            extra = {"IMAGE_VARIANTS": spec} if spec else {}
            server = draftstore(opts, s3_env(weed, bucket, **extra))
            port = server.port["http"]
            try:
                timings = []
                for i in range(5):
                    name = f"bench/{run}/{i}.jpg"
                    upload(port, name, body)
                    answer, elapsed = http_json(port, "/api/v1/confirm-upload", {"object_name": name})
                    timings.append(elapsed * 1e3)
                    if spec:
                        variants = [f"{v['name']} {v['width']}×{v['height']} {v['content_type']} {v['size']} B"
                                    for v in answer["image"]["variants"]]
                per_run[label].append(statistics.median(timings))
                print(f"image confirms: 12 MP, {label} variants, run {run}: median {per_run[label][-1]:.1f} ms",
                      flush=True)
            finally:
                server.stop()
    return per_run, variants


def throughput(opts, weed, photos, count):
    """Confirms of `count` 1 MiB photos with two variants, IN_FLIGHT at a time: images a second and the server's CPU
    time per image. The drafts are uploaded first, untimed."""
    bucket = f"imgthroughput-{os.getpid()}"
    server = draftstore(opts, s3_env(weed, bucket, IMAGE_VARIANTS=TWO_VARIANTS))
    port = server.port["http"]
    bodies = [open(p, "rb").read() for p in photos]
    try:
        names = [f"bench/phone/{i}.jpg" for i in range(count)]
        for i, name in enumerate(names):
            upload(port, name, bodies[i % len(bodies)])
        queue, failures, lock = list(names), [], threading.Lock()

        def work():
            while True:
                with lock:
                    if not queue:
                        return
                    name = queue.pop()
                try:
                    answer, _ = http_json(port, "/api/v1/confirm-upload", {"object_name": name})
                    if len(answer["image"]["variants"]) != 2:
                        raise SystemExit(f"{name}: {answer}")
                except BaseException as e:  # noqa: BLE001 - reported below, the run fails
                    failures.append(f"{name}: {e}")

        cpu_before, started = cpu_seconds(server.process.pid), time.perf_counter()
        workers = [threading.Thread(target=work) for _ in range(IN_FLIGHT)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed, cpu = time.perf_counter() - started, cpu_seconds(server.process.pid) - cpu_before
        if failures:
            raise SystemExit(f"{len(failures)} confirms failed, the first: {failures[0]}")
        return {"count": count, "seconds": elapsed, "per_second": count / elapsed, "cpu_ms_per_image": cpu / count * 1e3,
                "peak_rss_mib": server.rss_mib("VmHWM")}
    finally:
        server.stop()


def measure(opts, weed):
    work = tempfile.mkdtemp(prefix="bench-image-confirms-", dir=opts.scratch)
    try:
        big = os.path.join(work, "12mp.jpg")
        make_photo(opts, big, "4000x3000", 1, 90)
        photos = []
        for seed in range(8):
            path = os.path.join(work, f"phone-{seed}.jpg")
            # 2000 × 1500 plasma at quality 92: about 1 MiB, as a phone's resized share is.
            make_photo(opts, path, "2000x1500", 100 + seed, 92)
            photos.append(path)
        runs = max(opts.runs, 3)
        per_run, variants = latency(opts, weed, big, runs)
        rate = throughput(opts, weed, photos, 200)
        print(f"image confirms: {rate['per_second']:.1f} photos/s, {rate['cpu_ms_per_image']:.0f} ms of server CPU "
              "each", flush=True)
        return {
            "photo": {"bytes": os.path.getsize(big), "width": 4000, "height": 3000},
            "phone_bytes": statistics.median(os.path.getsize(p) for p in photos),
            "spec": TWO_VARIANTS, "variants": variants,
            "confirm_ms": {label: spread(values) for label, values in per_run.items()},
            "ratio": statistics.median(per_run["two"]) / statistics.median(per_run["none"]),
            "throughput": rate, "in_flight": IN_FLIGHT,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def markdown(r):
    def cell(m):
        return f"{m['median']:.1f} ({m['min']:.1f}–{m['max']:.1f})"

    t = r["throughput"]
    return "\n".join([
        "## Images at confirm (SeaweedFS)", "",
        f"Confirm latency of a 4000 × 3000 JPEG ({r['photo']['bytes'] / (1 << 20):.1f} MiB, plasma at quality 90, "
        "tagged with a GPS position and orientation 6 by exiftool), timed by the client, each run's median of 5 "
        "confirms, the server pinned to CPU 0 with its default IMAGE_WORKERS (one core: one worker). Without variants "
        "the pipeline still decodes the image for its placeholder and strips the GPS position; with two it makes "
        f"`{r['spec']}` ({'; '.join(r['variants'])}).", "",
        "| 12 MP JPEG | confirm, ms (median of runs, min–max) |", "|---|---|",
        f"| no variants | {cell(r['confirm_ms']['none'])} |",
        f"| two variants | {cell(r['confirm_ms']['two'])} |", "",
        f"Two variants ÷ none: **{r['ratio']:.2f}** (reported).", "",
        f"Throughput: {t['count']} phone photos of about {r['phone_bytes'] / (1 << 20):.2f} MiB (2000 × 1500, quality "
        f"92, GPS and orientation tags), uploaded first, then confirmed {r['in_flight']} at a time with the same two "
        f"variants: **{t['per_second']:.1f} photos a second**, **{t['cpu_ms_per_image']:.0f} ms of server CPU per "
        f"photo** (user + system, from /proc), the server's peak RSS {t['peak_rss_mib']:.0f} MiB.",
    ])
