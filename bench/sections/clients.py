"""The clients section: a 1 GiB file uploaded to SeaweedFS as a draft by the Python client, the TypeScript client and
DraftStore's own CLI, each with its default settings, pinned to CPU 1; wall time, alternated.
"""

import json
import os
import sys
import subprocess
import tempfile
import time

from harness import ROOT, draftstore, s3_env, spread


def measure(opts, weed):
    """A 1 GiB file uploaded to SeaweedFS as a draft by the Python client, the TypeScript client and DraftStore's own
    CLI, each with its default settings, pinned to CPU 1; wall time, alternated."""
    size = opts.clients_gib << 30
    path = os.path.join(opts.scratch, "big.bin")
    subprocess.run(["head", "-c", str(size), "/dev/urandom"], stdout=open(path, "wb"), check=True)
    bucket = f"clients-{os.getpid()}"
    server = draftstore(opts, s3_env(weed, bucket))
    url = f"http://127.0.0.1:{server.port['http']}"
    state = tempfile.mkdtemp(prefix="bench-clients-state-", dir=opts.scratch)
    dist = os.path.join(ROOT, "clients", "typescript", "dist", "index.js")
    commands = {
        "cli": lambda name: [opts.draftstore, "upload", path, "--name", name, "--quiet"],
        "python": lambda name: [sys.executable, "-c", "import sys; from draftstore import Client; "
                                "Client(sys.argv[1]).upload_file(sys.argv[2], sys.argv[3])", url, path, name],
        "typescript": lambda name: ["node", "--input-type=module", "-e",
                                    f"import {{ DraftStore }} from {json.dumps(dist)}; "
                                    "const [url, path, name] = process.argv.slice(1); "
                                    "await new DraftStore(url).uploadFile(path, name)", url, path, name],
    }
    env = dict(os.environ, DRAFTSTORE_URL=url, DRAFTSTORE_STATE_DIR=state,
               PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "clients", "python", "src"),
                                           os.path.join(ROOT, ".tools", "clients-python")]))
    seconds = {side: [] for side in commands}
    try:
        for run in range(opts.runs):
            sides = list(commands)[run % 3:] + list(commands)[:run % 3]
            for side in sides:
                name = f"bench/{run}/{side}.bin"
                os.sync()
                started = time.perf_counter()
                subprocess.run(["taskset", "-c", "1", *commands[side](name)], env=env, check=True)
                seconds[side].append(time.perf_counter() - started)
                print(f"clients run {run}: {side} {seconds[side][-1]:.1f} s", flush=True)
                weed.client.delete_object(Bucket=f"{bucket}-draft", Key=name)
            weed.vacuum()
    finally:
        server.stop()
    result = {"gib": opts.clients_gib, "seconds": {side: spread(values) for side, values in seconds.items()}}
    cli = result["seconds"]["cli"]["median"]
    result["ratios"] = {side: cli / result["seconds"][side]["median"] for side in ("python", "typescript")}
    return result


def markdown(r):
    def cell(m):
        return f"{m['median']:.1f} ({m['min']:.1f}–{m['max']:.1f})"

    lines = ["## The Python and TypeScript clients (SeaweedFS)", "",
             f"One {r['gib']} GiB file uploaded as a draft, in parts with their SHA-256, by each client's upload "
             "helper with its default settings (Python `Client.upload_file`, TypeScript `uploadFile` on Node) and by "
             "DraftStore's own CLI (`draftstore upload`), each pinned to CPU 1; wall time of the whole command.", "",
             "| uploader | seconds | throughput ÷ CLI |", "|---|---|---|",
             f"| `draftstore upload` | {cell(r['seconds']['cli'])} | 1.00 |"]
    for side, label in (("python", "Python client"), ("typescript", "TypeScript client")):
        ratio = r["ratios"][side]
        lines.append(f"| {label} | {cell(r['seconds'][side])} | **{ratio:.2f}** (goal ≥ 0.8: "
                     f"{'met' if ratio >= 0.8 else 'MISSED'}) |")
    return "\n".join(lines)
