"""The images section (issue 42): a 256 px WebP and JPEG thumbnail of a 12-megapixel JPEG made by DraftStore's image
pipeline against `vipsthumbnail` and ImageMagick's `convert -thumbnail` on the same file and the same core, and the
two-variant case (a 256 px WebP and a 1600 px JPEG), reported.
"""

import json
import os
import shutil
import subprocess
import tempfile
import time

from harness import spread

# Every program runs on this CPU, as the harness pins load and clients.
CPU = "1"


def whole_command(args):
    """Seconds one run of a command takes on CPU 1, from its start to its exit (process start-up included)."""
    started = time.perf_counter()
    subprocess.run(["taskset", "-c", CPU, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    return time.perf_counter() - started


def in_process(opts, spec, path, repeat):
    """The pipeline's own timing of `repeat` runs on CPU 1 (one process: no start-up, no file read or write), in
    seconds."""
    out = subprocess.run(["taskset", "-c", CPU, opts.image_thumb, "--variants", spec, "--repeat", str(repeat), path],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)[0]


def ms(values):
    return {"best": min(values) * 1000, **{k: v * 1000 if k != "runs" else v for k, v in spread(values).items()}}


def measure(opts, weed):
    """Best of N, every program on CPU 1, the runs of the programs interleaved: the pipeline in-process (the
    binary's own timing) and as a whole command, `vipsthumbnail` and `convert` as whole commands."""
    runs = max(opts.runs, 5)
    work = tempfile.mkdtemp(prefix="bench-images-", dir=opts.scratch)
    path = os.path.join(work, "12mp.jpg")
    # A deterministic 12 MP photo-like picture (plasma with a fixed seed), quality 90, as the pipeline's tests make.
    subprocess.run([opts.convert, "-size", "4000x3000", "-seed", "1", "plasma:", "-quality", "90", path], check=True)
    results = {"image": {"width": 4000, "height": 3000, "bytes": os.path.getsize(path)}, "runs": runs}
    try:
        for fmt, ext in (("webp", "webp"), ("jpeg", "jpg")):
            spec = f"thumb=256x256,contain,{fmt}"
            out = os.path.join(work, f"out.{ext}")
            whole, vips, magick = [], [], []
            for _ in range(runs):
                whole.append(whole_command([opts.image_thumb, "--variants", spec, "--repeat", "1", path]))
                vips.append(whole_command([opts.vipsthumbnail, path, "-s", "256", "-o", out]))
                magick.append(whole_command([opts.convert, path, "-thumbnail", "256x256", out]))
            timing = in_process(opts, spec, path, runs)
            row = {"spec": spec, "variants": timing["variants"], "in_process_ms": ms(timing["runs"]),
                   "whole_command_ms": ms(whole), "vipsthumbnail_ms": ms(vips), "convert_ms": ms(magick)}
            for base in ("vipsthumbnail", "convert"):
                row[f"in_process_vs_{base}"] = min(timing["runs"]) / min(vips if base == "vipsthumbnail" else magick)
                row[f"whole_command_vs_{base}"] = min(whole) / min(vips if base == "vipsthumbnail" else magick)
            results[fmt] = row
            print(f"images: 256 px {fmt}: pipeline {row['in_process_ms']['best']:.1f} ms in-process, "
                  f"{row['whole_command_ms']['best']:.1f} ms as a command; vipsthumbnail "
                  f"{row['vipsthumbnail_ms']['best']:.1f} ms, convert {row['convert_ms']['best']:.1f} ms", flush=True)
        spec = "thumb=256x256,contain,webp;preview=1600x1600,contain,jpeg"
        whole = [whole_command([opts.image_thumb, "--variants", spec, "--repeat", "1", path]) for _ in range(runs)]
        timing = in_process(opts, spec, path, runs)
        results["two_variants"] = {"spec": spec, "variants": timing["variants"], "in_process_ms": ms(timing["runs"]),
                                   "whole_command_ms": ms(whole)}
        print(f"images: two variants: {results['two_variants']['in_process_ms']['best']:.1f} ms in-process, "
              f"{results['two_variants']['whole_command_ms']['best']:.1f} ms as a command", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def markdown(r):
    def cell(m):
        return f"{m['best']:.1f} (median {m['median']:.1f})"

    def verdict(ratio, goal):
        return f"{ratio:.2f} ({'met' if ratio <= goal else 'MISSED'})"

    image = r["image"]
    lines = [
        "## Images: thumbnails of a 12-megapixel JPEG", "",
        f"A {image['width']} × {image['height']} JPEG ({image['bytes'] / (1 << 20):.1f} MiB, ImageMagick's `plasma:` "
        "with a fixed seed, quality 90). DraftStore's image pipeline (`image-thumb`: one worker, "
        "`IMAGE_METADATA=keep`, the placeholder made too) against `vipsthumbnail in.jpg -s 256 -o out.webp` (or "
        "`.jpg`) and ImageMagick's `convert in.jpg -thumbnail 256x256 out.webp`, every program on CPU 1, their runs "
        f"interleaved. Best of {r['runs']} runs in ms (median beside it). The pipeline is timed twice: *in-process* "
        "is its own timing of `process()` on bytes already read (no process start-up, no file read or write); "
        "*command* is `image-thumb` as a whole command, as the baselines are. Ratios are best ÷ best; goals: "
        "≤ 1.5 × vipsthumbnail, ≤ 0.5 × convert. Default qualities differ: the pipeline's JPEG 82 and WebP 80, "
        "vipsthumbnail's 75, convert's the input's (90).", "",
        "| thumbnail | pipeline in-process | pipeline command | vipsthumbnail | convert | in-process ÷ vips | "
        "command ÷ vips | in-process ÷ convert | command ÷ convert |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for fmt in ("webp", "jpeg"):
        row = r[fmt]
        lines.append(
            f"| 256 px {fmt} | {cell(row['in_process_ms'])} | {cell(row['whole_command_ms'])} | "
            f"{cell(row['vipsthumbnail_ms'])} | {cell(row['convert_ms'])} | "
            f"{verdict(row['in_process_vs_vipsthumbnail'], 1.5)} | "
            f"{verdict(row['whole_command_vs_vipsthumbnail'], 1.5)} | "
            f"{verdict(row['in_process_vs_convert'], 0.5)} | {verdict(row['whole_command_vs_convert'], 0.5)} |")
    two = r["two_variants"]
    lines += ["", f"Two variants (`{two['spec']}`: {'; '.join(two['variants'])}), reported, best ms (median): "
              f"{cell(two['in_process_ms'])} in-process, {cell(two['whole_command_ms'])} as a command."]
    return "\n".join(lines)
