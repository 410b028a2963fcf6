"""The end-to-end section: the whole flow a user sees, on the same SeaweedFS."""

import json
import os
import shutil
import subprocess
import tempfile

from harness import ACCESS_KEY, ROOT, SECRET_KEY, draftstore, http_json, run_measured, s3_env, spread


def cpu_seconds(pid):
    """User and system CPU time a process has used, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(opts, weed):
    """The whole flow a user sees, on the same SeaweedFS: many small files by DraftStore (upload-url, PUT to the
    store, confirm), by the tus server (create, PATCH) and by the AWS SDK for JavaScript sending the same S3 calls
    itself, from one Node client on CPU 1; one 1 GiB file by DraftStore's CLI and by tus-js-client; each server's
    CPU time (both pinned to CPU 0, as SeaweedFS is), and SeaweedFS's on every side."""
    tools = os.path.join(ROOT, ".tools", "tus")
    client = os.path.join(ROOT, "bench", "tus", "client.mjs")
    count, size, parallel = opts.e2e_files, 64 << 10, 16
    bucket = f"e2e-{os.getpid()}"
    env = dict(os.environ, DRAFTSTORE_TUS_TOOLS=tools, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    weed.client.create_bucket(Bucket=f"{bucket}-tus")
    server = draftstore(opts, s3_env(weed, bucket, MAX_UPLOAD_SIZE=str(2 << 30)))
    port = server.port["http"]
    tus = subprocess.Popen(["taskset", "-c", "0", "node", os.path.join(ROOT, "bench", "tus", "server.mjs"),
                            weed.endpoint, f"{bucket}-tus"], env=env, stdout=subprocess.PIPE, text=True)
    line = tus.stdout.readline()
    if not line.startswith("listening "):
        raise SystemExit(f"the tus server did not start: {line}")
    tus_url = f"http://127.0.0.1:{int(line.split()[1])}/files"
    servers = {"draftstore": server.process.pid, "tus": tus.pid, "s3": None}
    rates = {who: [] for who in servers}
    cpu_per_file = {"draftstore": [], "tus": []}
    store_cpu_per_file = {who: [] for who in servers}

    def node(*args):
        out = subprocess.run(["taskset", "-c", "1", "node", client, *args], env=env, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"the client failed: {out.stderr}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if result["failed"]:
            raise SystemExit(f"{args[0]}: {result['failed']} of {result['files']} failed:\n{out.stderr}")
        return result

    work = tempfile.mkdtemp(prefix="bench-e2e-", dir=opts.scratch)
    try:
        for run in range(opts.runs):
            for who, target, extra in (("draftstore", f"http://127.0.0.1:{port}", []), ("tus", tus_url, []),
                                       ("s3", weed.endpoint, [bucket])):
                before = cpu_seconds(servers[who]) if servers[who] else 0
                store_before = cpu_seconds(weed.process.pid)
                result = node(who, target, str(count), str(size), str(parallel), *extra)
                rates[who].append(result["files"] / result["seconds"])
                if servers[who]:
                    cpu_per_file[who].append((cpu_seconds(servers[who]) - before) / count)
                store_cpu_per_file[who].append((cpu_seconds(weed.process.pid) - store_before) / count)
                print(f"end to end {who}, run {run}: {rates[who][-1]:.0f} files/s", flush=True)
            weed.vacuum()

        # One 1 GiB file: DraftStore's CLI to SeaweedFS (multipart, parts straight to the store) and tus-js-client
        # to the tus server (which proxies every byte to the store).
        path = os.path.join(work, "big.bin")
        gib = 1 << 30
        subprocess.run(["head", "-c", str(gib), "/dev/urandom"], stdout=open(path, "wb"), check=True)
        cli_env = dict(os.environ, DRAFTSTORE_URL=f"http://127.0.0.1:{port}",
                       DRAFTSTORE_STATE_DIR=os.path.join(work, "state"))
        big = {"draftstore": [], "tus": []}
        cpu_per_gib = {"draftstore": [], "tus": []}
        for run in range(opts.runs):
            before = cpu_seconds(servers["draftstore"])
            os.sync()
            elapsed, _, _ = run_measured([opts.draftstore, "upload", path, "--name", f"e2e/big-{run}", "--quiet"],
                                         cli_env)
            big["draftstore"].append(elapsed)
            cpu_per_gib["draftstore"].append(cpu_seconds(servers["draftstore"]) - before)
            http_json(port, "/api/v1/discard-draft", {"object_name": f"e2e/big-{run}"})
            before = cpu_seconds(servers["tus"])
            os.sync()
            result = node("tus-file", tus_url, path)
            big["tus"].append(result["seconds"])
            cpu_per_gib["tus"].append(cpu_seconds(servers["tus"]) - before)
            print(f"end to end 1 GiB, run {run}: DraftStore CLI {big['draftstore'][-1]:.1f} s, tus-js-client "
                  f"{big['tus'][-1]:.1f} s", flush=True)
            weed.vacuum()
    finally:
        server.stop()
        tus.kill()
        tus.wait()
        shutil.rmtree(work, ignore_errors=True)
    result = {"files": count, "file_kib": size >> 10, "parallel": parallel,
              "files_per_s": {who: spread(values) for who, values in rates.items()},
              "cpu_ms_per_file": {who: spread([v * 1e3 for v in values]) for who, values in cpu_per_file.items()},
              "store_cpu_ms_per_file": {who: spread([v * 1e3 for v in values])
                                        for who, values in store_cpu_per_file.items()},
              "gib_seconds": {who: spread(values) for who, values in big.items()},
              "cpu_s_per_gib": {who: spread(values) for who, values in cpu_per_gib.items()}}
    med = lambda group, who: result[group][who]["median"]  # noqa: E731
    result["ratios"] = {
        "files_vs_tus": med("files_per_s", "draftstore") / med("files_per_s", "tus"),
        "files_vs_s3": med("files_per_s", "draftstore") / med("files_per_s", "s3"),
        "gib_vs_tus": med("gib_seconds", "tus") / med("gib_seconds", "draftstore"),
        "cpu_file_vs_tus": med("cpu_ms_per_file", "draftstore") / med("cpu_ms_per_file", "tus"),
        "cpu_gib_vs_tus": med("cpu_s_per_gib", "draftstore") / max(med("cpu_s_per_gib", "tus"), 1e-9),
    }
    return result


def markdown(r):
    def cell(m, digits=1):
        return f"{m['median']:.{digits}f} ({m['min']:.{digits}f}–{m['max']:.{digits}f})"

    f, c, g, cg, x = r["files_per_s"], r["cpu_ms_per_file"], r["gib_seconds"], r["cpu_s_per_gib"], r["ratios"]
    store = r["store_cpu_ms_per_file"]

    def verdict(value, goal, at_least=True):
        met = value >= goal if at_least else value <= goal
        return f"**{value:.2f}** (goal {'≥' if at_least else '≤'} {goal}: {'met' if met else 'MISSED'})"

    return "\n".join([
        "## End to end against the tus server and against doing it by hand (SeaweedFS)", "",
        f"{r['files']} files of {r['file_kib']} KiB, {r['parallel']} in flight, from one Node client on CPU 1: "
        "DraftStore (upload-url, PUT to the store, confirm), the tus protocol's official Node server (`@tus/server` "
        "with `@tus/s3-store`: create, PATCH; it proxies every byte), and the AWS SDK for JavaScript sending the same "
        "S3 calls itself (PutObject, CopyObject, DeleteObject). Both servers on CPU 0, with SeaweedFS; CPU times "
        "from `/proc`, the server's without SeaweedFS's.", "",
        "| side | files/s | server CPU ms per file | SeaweedFS CPU ms per file |", "|---|---|---|---|",
        f"| DraftStore | {cell(f['draftstore'])} | {cell(c['draftstore'], 3)} | {cell(store['draftstore'], 3)} |",
        f"| tus server | {cell(f['tus'])} | {cell(c['tus'], 3)} | {cell(store['tus'], 3)} |",
        f"| AWS SDK, by hand | {cell(f['s3'])} | none | {cell(store['s3'], 3)} |", "",
        "One 1 GiB file: DraftStore's CLI (multipart, parts straight to the store) and `tus-js-client` to the tus "
        "server (64 MiB PATCHes).", "",
        "| side | seconds | server CPU s per GiB |", "|---|---|---|",
        f"| DraftStore CLI | {cell(g['draftstore'])} | {cell(cg['draftstore'], 2)} |",
        f"| tus-js-client | {cell(g['tus'])} | {cell(cg['tus'], 2)} |", "",
        f"- files/s, DraftStore ÷ tus: {verdict(x['files_vs_tus'], 4)}",
        f"- files/s, DraftStore ÷ the AWS SDK by hand: {verdict(x['files_vs_s3'], 1.2)}",
        f"- 1 GiB speed, DraftStore CLI ÷ tus-js-client: {verdict(x['gib_vs_tus'], 1.5)}",
        f"- server CPU per file, DraftStore ÷ tus: {verdict(x['cpu_file_vs_tus'], 0.05, at_least=False)}",
        f"- server CPU per GiB, DraftStore ÷ tus: {verdict(x['cpu_gib_vs_tus'], 0.05, at_least=False)}",
    ])
