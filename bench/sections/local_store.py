"""The local-store section: the local backend's write path and listing."""

import json
import os
import statistics
import subprocess

from harness import dd_seconds, draftstore, http_json, put_file, spread


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


def measure(opts, weed):
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
            dd.append((1 << 30) / dd_seconds(big, os.path.join(work, f"dd-{run}.bin"), "4M") / (1 << 20))
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


def markdown(r):
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
