"""DraftStore's benchmark harness (run it through bench/run).

Every comparison is a ratio measured in the same run, every figure the median of several runs with its spread.
Servers run on CPU 0, load generators and clients on CPU 1. Results go to bench/results/<date>.md and .json.
The shared machinery (servers, pinning, measured runs, the results files) is in harness.py; each section is a
module of sections/, run in the order SECTIONS gives.
"""

import argparse
import datetime
import os
import shutil
import tempfile

from harness import ROOT, SeaweedFs, machine, write_results
from sections import (
    big_confirm,
    checks,
    cleaner,
    cli,
    clients,
    connection_limits,
    end_to_end,
    events,
    image_confirms,
    images,
    local_store,
    multipart,
    objects,
    proxy,
    resumable,
    sets,
    soak,
    store_probe,
    tracing,
    upload_url,
)


# The sections, in the order they run: the name `--only` takes, the key of the results, the module that measures
# it (`measure(opts, weed)`) and writes its text (`markdown(results)`).
SECTIONS = {
    "upload-url": ("upload_url", upload_url),
    "connection-limits": ("connection_limits", connection_limits),
    "tracing": ("tracing", tracing),
    "proxy": ("proxy", proxy),
    "big-confirm": ("big_confirm", big_confirm),
    "objects": ("objects", objects),
    "local-store": ("local_store", local_store),
    "multipart": ("multipart", multipart),
    "cli": ("cli", cli),
    "soak": ("soak", soak),
    "events": ("events", events),
    "checks": ("checks", checks),
    "sets": ("sets", sets),
    "clients": ("clients", clients),
    "end-to-end": ("end_to_end", end_to_end),
    "cleaner": ("cleaner", cleaner),
    "store-probe": ("store_probe", store_probe),
    "images": ("images", images),
    "image-confirms": ("image_confirms", image_confirms),
    "resumable": ("resumable", resumable),
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--weed", required=True)
    parser.add_argument("--draftstore", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=list(SECTIONS), action="append",
                        default=None)
    parser.add_argument("--multipart-gib", type=int, default=4, help="size of the multipart upload, GiB")
    parser.add_argument("--cli-gib", type=int, default=1, help="size of the command-line upload, GiB")
    parser.add_argument("--clients-gib", type=int, default=1, help="size of the clients' upload, GiB")
    parser.add_argument("--e2e-files", type=int, default=2000, help="small files per side in the end-to-end section")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--soak-seconds", type=int, default=600, help="length of each soak run")
    parser.add_argument("--soak-rate", type=float, default=20, help="soak sessions started per second")
    parser.add_argument("--bare", required=True)
    parser.add_argument("--grpc-load", required=True)
    parser.add_argument("--populate", required=True)
    parser.add_argument("--haproxy", default="/usr/sbin/haproxy")
    parser.add_argument("--image-thumb", required=True, help="the image pipeline's timer (bench/tools)")
    parser.add_argument("--vipsthumbnail", default="/usr/bin/vipsthumbnail")
    parser.add_argument("--convert", default="/usr/bin/convert", help="ImageMagick's convert")
    parser.add_argument("--exiftool", default="/usr/bin/exiftool")
    parser.add_argument("--companion", default=None, help="Companion's bin/companion script; omitted: not measured")
    parser.add_argument("--scratch", default=None, help="folder for large temporary files (default: the system's)")
    parser.add_argument("--cleaner-counts", type=lambda s: [int(x) for x in s.split(",")], default=[1000, 10000, 100000])
    opts = parser.parse_args()
    opts.draftstore = os.path.abspath(opts.draftstore)
    opts.bare, opts.grpc_load = os.path.abspath(opts.bare), os.path.abspath(opts.grpc_load)
    opts.populate, opts.image_thumb = os.path.abspath(opts.populate), os.path.abspath(opts.image_thumb)
    opts.companion = opts.companion and os.path.abspath(opts.companion)
    wanted = set(opts.only or SECTIONS)

    results = {"date": datetime.date.today().isoformat(), "machine": machine(), "runs": opts.runs}
    sections = []
    # A partial run (--only) gets a file of its own, so it never replaces a full run's results.
    suffix = "-" + "-".join(sorted(wanted)) if opts.only else ""
    out = os.path.join(ROOT, "bench", "results", results["date"] + suffix)

    weed = SeaweedFs(opts.weed)
    scratch = opts.scratch
    try:
        for name, (key, section) in SECTIONS.items():
            if name in wanted:
                # Each section's large files in a folder of its own, removed even when the section fails.
                opts.scratch = tempfile.mkdtemp(prefix=f"bench-{name}-", dir=scratch)
                try:
                    results[key] = section.measure(opts, weed)
                finally:
                    shutil.rmtree(opts.scratch, ignore_errors=True)
                sections.append(section.markdown(results[key]))
                # Written after every section, so that a run cut off keeps what it measured (marked incomplete).
                write_results(out, results, sections, complete=False)
    finally:
        weed.stop()
    write_results(out, results, sections, complete=True)
    print(open(out + ".md").read())


if __name__ == "__main__":
    main()
