"""The soak section: mixed load at a fixed rate for a long time on both backends."""

import json
import os
import shutil
import tempfile
import time
import urllib.request

from harness import draftstore, s3_env


def measure(opts, weed):
    """Mixed load at a fixed rate for a long time on both backends: 5xx count, latency percentiles, and the
    server's RSS at minute 1 and at the end (a leak shows as growth)."""
    import http.client
    import threading
    import urllib.parse
    from concurrent.futures import ThreadPoolExecutor

    body = os.urandom(64 << 10)
    results = {"seconds": opts.soak_seconds, "rate": opts.soak_rate}
    backends = {
        "local": lambda work: {"DATA_DIR": os.path.join(work, "data")},
        "seaweedfs": lambda work: s3_env(weed, f"soak-{os.getpid()}"),
    }
    for label, env_of in backends.items():
        work = tempfile.mkdtemp(prefix="bench-soak-", dir=opts.scratch)
        # The cleaner runs every 5 s inside the server and removes drafts older than 20 s: a third of the uploads
        # are never confirmed, so it always has work.
        server = draftstore(opts, dict(env_of(work), CLEANUP_INTERVAL="5", OBJECT_LIFETIME="20"))
        port = server.port["http"]
        lock = threading.Lock()
        latencies, statuses, errors = [], {}, []

        def call(method, url, payload=None, headers=None):
            parsed = urllib.parse.urlsplit(url)
            connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
            target = parsed.path + ("?" + parsed.query if parsed.query else "")
            started = time.perf_counter()
            try:
                connection.request(method, target, body=payload, headers=headers or {})
                response = connection.getresponse()
                data = response.read()
                status = response.status
            except Exception as error:
                with lock:
                    errors.append(str(error))
                return None, None
            finally:
                connection.close()
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1
            return status, data

        def api(route, payload):
            status, data = call("POST", f"http://127.0.0.1:{port}{route}", json.dumps(payload),
                                {"Content-Type": "application/json"})
            return json.loads(data) if status == 200 else None

        def session(n):
            name = f"soak/{n}"
            ticket = api("/api/v1/upload-url", {"object_name": name, "content_type": "application/octet-stream",
                                                "content_length": len(body)})
            if not ticket:
                return
            status, _ = call("PUT", ticket["upload_url"], body, ticket["headers"])
            if status != 200 or n % 3 == 0:
                return
            if api("/api/v1/confirm-upload", {"object_name": name}):
                ticket = api("/api/v1/download-url", {"object_name": name, "stage": "main"})
                if ticket:
                    call("GET", ticket["download_url"])

        rss = {}
        started = time.time()
        sessions = []
        with ThreadPoolExecutor(32) as pool:
            n = 0
            while (elapsed := time.time() - started) < opts.soak_seconds:
                target = started + n / opts.soak_rate
                if target > time.time():
                    time.sleep(target - time.time())
                sessions.append(pool.submit(session, n))
                n += 1
                if "minute 1" not in rss and elapsed >= 60:
                    rss["minute 1"] = server.rss_mib()
        rss["end"] = server.rss_mib()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
        latencies.sort()

        def pct(q):
            return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else float("nan")

        failed_sessions = [repr(f.exception()) for f in sessions if f.exception() is not None]
        errors_5xx = sum(count for status, count in statuses.items() if status >= 500)
        results[label] = {"sessions": n, "requests": len(latencies), "statuses": {str(k): v for k, v in statuses.items()},
                          "5xx": errors_5xx, "transport_errors": len(errors), "failed_sessions": len(failed_sessions),
                          "session_errors": failed_sessions[:5], "p50_ms": pct(0.50), "p99_ms": pct(0.99),
                          "rss_minute_1_mib": rss.get("minute 1", float("nan")), "rss_end_mib": rss["end"],
                          "rss_growth": rss["end"] / rss["minute 1"] - 1 if "minute 1" in rss else float("nan")}
        print(f"soak {label}: {results[label]}", flush=True)
    return results


def markdown(r):
    lines = [f"## Soak: {r['seconds'] // 60} minutes of mixed load at {r['rate']} sessions/s (one run)", "",
             "Each session asks for an upload URL and PUTs 64 KiB; two sessions in three then confirm and download the "
             "object, the third leaves its draft to the cleaner (inside the server every 5 s, drafts older than 20 s). "
             "Latency is per HTTP request (API calls, uploads and downloads alike); RSS is the server's, at minute 1 "
             "and at the end.", "",
             "The soak runs once whatever `--runs` says: it is long, and one run of it is the measurement.", "",
             "| backend | sessions | requests | 5xx (goal 0) | transport errors | failed sessions | p50 | p99 | RSS at minute 1 | RSS at the end | growth (goal ≤ 10%) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for label in ("local", "seaweedfs"):
        x = r[label]
        lines.append(f"| {label} | {x['sessions']} | {x['requests']} | {x['5xx']} | {x['transport_errors']} | "
                     f"{x['failed_sessions']} | "
                     f"{x['p50_ms']:.1f} ms | {x['p99_ms']:.1f} ms | {x['rss_minute_1_mib']:.1f} MiB | "
                     f"{x['rss_end_mib']:.1f} MiB | {x['rss_growth'] * 100:+.1f}% |")
    return "\n".join(lines)
