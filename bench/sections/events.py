"""The events section: confirm latency on SeaweedFS with the event outbox on and off, in the same run, and how soon
events arrive.
"""

import base64
import json
import os
import statistics
import time
import urllib.request

from harness import Receiver, draftstore, http_json, s3_env, spread


class EventSink:
    """An HTTP receiver that answers 204 and notes when each event arrived, by its object name."""

    def __init__(self):
        arrived = self.arrived = {}

        def on_post(body):
            arrived.setdefault(json.loads(body)["data"]["object_name"], time.perf_counter())
            return 204, None

        self.receiver = Receiver(on_post)
        self.url = self.receiver.url + "/events"

    def stop(self):
        self.receiver.stop()


def measure(opts, weed):
    """Confirm latency on SeaweedFS with the event outbox on and off, in the same run, and how soon events arrive."""
    sink = EventSink()
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    confirms = 100
    latencies = {"off": [], "on": []}
    lag = []
    try:
        for run in range(opts.runs):
            for mode in ("off", "on"):
                # One bucket per mode for every run: each new bucket makes SeaweedFS allocate volumes.
                bucket = f"events-{os.getpid()}-{mode}"
                env = s3_env(weed, bucket)
                if mode == "on":
                    env.update(EVENTS_URL=sink.url, WEBHOOK_SECRET=secret)
                server = draftstore(opts, env)
                port = server.port["http"]
                try:
                    timings, confirmed_at = [], {}
                    for i in range(confirms):
                        key = f"bench/{run}/{i}.bin"
                        ticket, _ = http_json(port, "/api/v1/upload-url", {"object_name": key})
                        request = urllib.request.Request(ticket["upload_url"], data=b"x" * 1024, method="PUT",
                                                         headers=ticket["headers"])
                        urllib.request.urlopen(request).read()
                        _, elapsed = http_json(port, "/api/v1/confirm-upload", {"object_name": key})
                        confirmed_at[key] = time.perf_counter()
                        timings.append(elapsed * 1e3)
                    latencies[mode].append(statistics.median(timings))
                    if mode == "on":
                        deadline = time.time() + 60
                        while time.time() < deadline and not all(k in sink.arrived for k in confirmed_at):
                            time.sleep(0.05)
                        missing = [k for k in confirmed_at if k not in sink.arrived]
                        if missing:
                            raise SystemExit(f"{len(missing)} events never arrived")
                        lag.append(statistics.median((sink.arrived.pop(k) - t) * 1e3 for k, t in confirmed_at.items()))
                    print(f"events {mode} run {run}: confirm median {latencies[mode][-1]:.2f} ms", flush=True)
                finally:
                    server.stop()
    finally:
        sink.stop()
    off, on = spread(latencies["off"]), spread(latencies["on"])
    return {"confirms_per_run": confirms, "confirm_ms_off": off, "confirm_ms_on": on,
            "ratio": on["median"] / off["median"], "delivery_lag_ms": spread(lag)}


def markdown(r):
    return "\n".join([
        "## Confirm latency with events on and off (SeaweedFS)", "",
        f"{r['confirms_per_run']} confirms of 1 KiB drafts per run, timed by the client; each run's median. With "
        "EVENTS_URL set, every confirm first writes its `draft.confirmed` entry to the outbox in the store, and a "
        "worker delivers it to a local receiver. Goal: confirm with events within 2 × confirm without.", "",
        "| events | confirm ms (median, min–max) |", "|---|---|",
        f"| off | {r['confirm_ms_off']['median']:.2f} ({r['confirm_ms_off']['min']:.2f}–{r['confirm_ms_off']['max']:.2f}) |",
        f"| on | {r['confirm_ms_on']['median']:.2f} ({r['confirm_ms_on']['min']:.2f}–{r['confirm_ms_on']['max']:.2f}) |",
        "",
        f"On ÷ off: **{r['ratio']:.2f}** ({'met' if r['ratio'] <= 2 else 'missed'}). From the confirm's answer to the "
        f"event's arrival: median {r['delivery_lag_ms']['median']:.1f} ms.",
    ])
