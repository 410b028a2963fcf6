"""The tracing section: upload-url on the local backend with OpenTelemetry traces exported (every request sampled, over
OTLP/HTTP to a receiver that discards them) and without, alternated.
"""

import re
import tempfile

from harness import Receiver, draftstore, post_script, spread, wrk


class OtlpSink:
    """An OTLP/HTTP receiver that takes every trace export and keeps nothing (answers an empty
    ExportTraceServiceResponse), counting the bytes: the cost measured is DraftStore's, not a collector's."""

    def __init__(self):
        received = self.received = [0]

        def on_post(body):
            received[0] += len(body)
            return 200, "application/x-protobuf"

        self.receiver = Receiver(on_post)
        self.url = self.receiver.url

    def stop(self):
        self.receiver.stop()


def measure(opts, weed):
    """upload-url on the local backend with OpenTelemetry traces exported (every request sampled, over OTLP/HTTP to a
    receiver that discards them) and without, alternated."""
    script = post_script(opts.scratch)
    sink = OtlpSink()
    results = {"off": [], "on": []}
    try:
        for run in range(opts.runs):
            for mode in (("off", "on") if run % 2 == 0 else ("on", "off")):
                env = {"DATA_DIR": tempfile.mkdtemp(prefix="bench-data-", dir=opts.scratch)}
                if mode == "on":
                    env.update(OTEL_EXPORTER_OTLP_ENDPOINT=sink.url, OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
                               OTEL_TRACES_SAMPLER="always_on")
                server = draftstore(opts, env)
                try:
                    url = f"http://127.0.0.1:{server.port['http']}/api/v1/upload-url"
                    results[mode].append(wrk(url, opts.seconds, script))
                finally:
                    server.stop()
                # The exporter logs at shutdown how many spans it dropped (its queue full), if any.
                dropped = re.search(r'dropped_spans"?[=:](\d+)', server.process.stderr.read())
                results[mode][-1]["dropped_spans"] = int(dropped.group(1)) if dropped else 0
                print(f"tracing {mode}, run {run}: {results[mode][-1]['rps']:.0f} req/s, "
                      f"{results[mode][-1]['dropped_spans']} spans dropped", flush=True)
    finally:
        sink.stop()
    out = {mode: {"rps": spread([r["rps"] for r in runs]), "p99_ms": spread([r["p99_ms"] for r in runs])}
           for mode, runs in results.items()}
    out["exported_bytes"] = sink.received[0]
    out["dropped_spans"] = sum(r["dropped_spans"] for r in results["on"])
    out["requests_traced"] = sum(r["rps"] * opts.seconds for r in results["on"])
    out["ratio"] = out["on"]["rps"]["median"] / out["off"]["rps"]["median"]
    return out


def markdown(r):
    def cell(m, digits=0):
        return f"{m['median']:.{digits}f} ({m['min']:.{digits}f}–{m['max']:.{digits}f})"

    ratio = r["ratio"]
    return "\n".join([
        "## OpenTelemetry traces", "",
        "`POST /api/v1/upload-url` on the local backend as in the first section, with traces off and on "
        "(`OTEL_EXPORTER_OTLP_ENDPOINT` set, every request sampled, spans batched and exported over OTLP/HTTP to a "
        f"receiver that discards them: {r['exported_bytes'] / 1e6:.0f} MB received in all; "
        f"{r.get('dropped_spans', 0)} spans dropped by the exporter's queue, of about "
        f"{r.get('requests_traced', 0):.0f} requests traced), alternated.", "",
        "| traces | req/s | p99 ms |", "|---|---|---|",
        f"| off | {cell(r['off']['rps'])} | {cell(r['off']['p99_ms'], 2)} |",
        f"| on | {cell(r['on']['rps'])} | {cell(r['on']['p99_ms'], 2)} |", "",
        f"On ÷ off: **{ratio:.2f}**, goal ≥ 0.85: {'met' if ratio >= 0.85 else 'MISSED'}.",
    ])
