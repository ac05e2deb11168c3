#!/usr/bin/env python3
"""Helpers for scripts/bench (standard library only).

  loader.py load  URL BODY_FILE GROUPS THREADS
      POST BODY_FILE once to each group /metrics/job/bench/instance/g<i>, i in [0, GROUPS),
      from THREADS threads, each with one keep-alive connection. Fails on the first answer that
      is not 200 or 202 (202 is what the reference answers with its consistency check off).

  loader.py count URL
      Print the number of groups the server holds: the length of `data` in GET /api/v1/metrics.

URL is the server's base, e.g. http://127.0.0.1:19091. Only loopback URLs are accepted: the
benchmark must never send traffic anywhere else.
"""

import http.client
import json
import sys
import threading
import time
import urllib.parse

TIMEOUT_SECONDS = 120  # one request; bounds the whole run together with the fixed request count


def connect(base):
    url = urllib.parse.urlsplit(base)
    if url.scheme != "http" or url.hostname != "127.0.0.1" or not url.port:
        sys.exit(f"loader.py: refusing {base!r}: only http://127.0.0.1:PORT is allowed")
    return http.client.HTTPConnection("127.0.0.1", url.port, timeout=TIMEOUT_SECONDS)


def load(base, body_file, groups, threads):
    with open(body_file, "rb") as f:
        body = f.read()
    headers = {"Content-Type": "text/plain; version=0.0.4"}
    failures = []
    done = [0] * threads

    def worker(t):
        conn = connect(base)
        try:
            # Thread t takes groups t, t+threads, t+2*threads, ...: disjoint and complete.
            for i in range(t, groups, threads):
                if failures:
                    return
                conn.request("POST", f"/metrics/job/bench/instance/g{i}", body, headers)
                resp = conn.getresponse()
                text = resp.read()
                if resp.status not in (200, 202):
                    failures.append(f"group g{i}: HTTP {resp.status}: {text[:300]!r}")
                    return
                done[t] += 1
        except Exception as e:  # noqa: BLE001 - reported, and makes the run fail
            failures.append(f"thread {t}: {type(e).__name__}: {e}")
        finally:
            conn.close()

    start = time.monotonic()
    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    elapsed = time.monotonic() - start
    if failures:
        sys.exit(f"loader.py: preloading {base} failed: {failures[0]}")
    total = sum(done)
    print(f"loaded {total} groups into {base} in {elapsed:.1f} s ({total / elapsed:.0f} POST/s)")


def count(base):
    conn = connect(base)
    conn.request("GET", "/api/v1/metrics")
    resp = conn.getresponse()
    text = resp.read()
    if resp.status != 200:
        sys.exit(f"loader.py: GET {base}/api/v1/metrics: HTTP {resp.status}: {text[:300]!r}")
    print(len(json.loads(text)["data"]))


def main(argv):
    if len(argv) == 6 and argv[1] == "load":
        load(argv[2], argv[3], int(argv[4]), int(argv[5]))
    elif len(argv) == 3 and argv[1] == "count":
        count(argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
