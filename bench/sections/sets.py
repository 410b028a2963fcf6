"""The sets section: a set of 100 drafts of 1 KiB confirmed in one confirm-set, against the same 100 confirmed one by
one, 8 at a time, on SeaweedFS; both under final names.
"""

import os
import time
import urllib.request

from harness import draftstore, http_json, s3_env, spread


def measure(opts, weed):
    """A set of 100 drafts of 1 KiB confirmed in one confirm-set, against the same 100 confirmed one by one, 8 at a
    time, on SeaweedFS; both under final names. Wall time of each, alternated, five rounds a run."""
    import concurrent.futures
    import urllib.request
    count, parallel, rounds = 100, 8, 5
    bucket = f"sets-{os.getpid()}"
    server = draftstore(opts, s3_env(weed, bucket))
    port = server.port["http"]
    body = os.urandom(1024)

    def upload(name):
        ticket, _ = http_json(port, "/api/v1/upload-url", {"object_name": name, "content_type": "application/octet-stream"})
        request = urllib.request.Request(ticket["upload_url"], data=body, method="PUT", headers=ticket["headers"])
        with urllib.request.urlopen(request) as answer:
            if answer.status != 200:
                raise SystemExit(f"upload of {name} answered {answer.status}")

    timings = {"set": [], "singles": []}
    try:
        with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
            for run in range(opts.runs):
                for round_ in range(rounds):
                    names = {side: [f"{side}/{run}-{round_}/{i}.bin" for i in range(count)] for side in timings}
                    list(pool.map(upload, names["set"] + names["singles"]))
                    sides = ["set", "singles"] if (run + round_) % 2 == 0 else ["singles", "set"]
                    for side in sides:
                        started = time.perf_counter()
                        if side == "set":
                            drafts = [{"object_name": n, "final_name": "done/" + n} for n in names["set"]]
                            http_json(port, "/api/v1/confirm-set",
                                      {"idempotency_key": f"bench-{run}-{round_}", "drafts": drafts})
                        else:
                            list(pool.map(lambda n: http_json(port, "/api/v1/confirm-upload",
                                                              {"object_name": n, "final_name": "done/" + n}),
                                          names["singles"]))
                        timings[side].append((time.perf_counter() - started) * 1e3)
                    print(f"sets run {run} round {round_}: set {timings['set'][-1]:.1f} ms, 100 singles "
                          f"{timings['singles'][-1]:.1f} ms", flush=True)
    finally:
        server.stop()
    result = {"drafts": count, "parallel": parallel, "rounds": rounds,
              "ms": {side: spread(values) for side, values in timings.items()}}
    result["ratio"] = result["ms"]["set"]["median"] / result["ms"]["singles"]["median"]
    return result


def markdown(r):
    def cell(m):
        return f"{m['median']:.1f} ({m['min']:.1f}–{m['max']:.1f})"

    ratio = r["ratio"]
    return "\n".join([
        "## Sets (SeaweedFS)", "",
        f"{r['drafts']} drafts of 1 KiB confirmed under final names in one `confirm-set`, against the same number "
        f"confirmed one by one, {r['parallel']} requests in flight; wall time, alternated, {r['rounds']} rounds a run "
        "(median of every round, min–max).", "",
        "| confirm | ms |", "|---|---|",
        f"| one set of {r['drafts']} | {cell(r['ms']['set'])} |",
        f"| {r['drafts']} single confirms, {r['parallel']} at a time | {cell(r['ms']['singles'])} |", "",
        f"Set ÷ singles: **{ratio:.2f}**, goal ≤ 1.0: {'met' if ratio <= 1.0 else 'MISSED'}.",
    ])
