"""The cleaner section: drafts removed per second and peak RSS of `draftstore clean`, for growing draft buckets on
SeaweedFS.
"""

import os
import re
import subprocess
import time

from harness import ACCESS_KEY, SECRET_KEY, run_measured, spread


def measure(opts, weed):
    """Drafts removed per second and peak RSS of `draftstore clean`, for growing draft buckets on SeaweedFS."""
    rows = {}
    for count in opts.cleaner_counts:
        rates, peaks = [], []
        for run in range(opts.runs):
            bucket = f"clean-{count}-{run}-{os.getpid()}"
            draft = f"{bucket}-draft"
            for name in (bucket, draft):
                weed.client.create_bucket(Bucket=name)
            subprocess.run([opts.populate, weed.endpoint, ACCESS_KEY, SECRET_KEY, draft, str(count), "64"], check=True)
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


def markdown(rows):
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
