"""Drives the Python prometheus_client push functions for cronpush's tests.

Usage: python_push.py GATEWAY STEP

One step is one call of the library, so the test can look at the gateway between steps:

  push     push_to_gateway (PUT): counter py_runs, gauge py_last_value, histogram py_duration_seconds
  add      pushadd_to_gateway (POST): gauge py_extra, same group
  replace  push_to_gateway (PUT): gauge py_last_value only, same group
  delete   delete_from_gateway (DELETE), same group
  gzip     push_to_gateway with compression='gzip': gauge py_gzipped, group job=py_gzip
  gauge    push_to_gateway: gauge py_clash_total, group job=py_a
  counter  push_to_gateway: counter py_clash (exposed as py_clash_total), group job=py_b

The shared group's key has a value with '/', an empty value and a value with a space, the three
cases the library encodes specially. Prints "ok"; when the library raises, prints the exception
(and the gateway's answer, for an HTTP error) to stderr and exits 1, as a batch job would.
"""

import sys
import urllib.error

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    delete_from_gateway,
    push_to_gateway,
    pushadd_to_gateway,
)

JOB = "py_job"
GROUPING = {"path": "/var/tmp", "empty": "", "who": "a b"}


def step(gateway, name):
    registry = CollectorRegistry()
    if name == "push":
        Counter("py_runs", "Runs of the Python test job.", registry=registry).inc(3)
        Gauge("py_last_value", "Last value of the Python test job.", registry=registry).set(42.5)
        histogram = Histogram(
            "py_duration_seconds", "Durations of the Python test job.", buckets=(0.1, 1, 10), registry=registry
        )
        for value in (0.05, 0.5, 5):
            histogram.observe(value)
        push_to_gateway(gateway, job=JOB, registry=registry, grouping_key=GROUPING)
    elif name == "add":
        Gauge("py_extra", "Added by pushadd.", registry=registry).set(7)
        pushadd_to_gateway(gateway, job=JOB, registry=registry, grouping_key=GROUPING)
    elif name == "replace":
        Gauge("py_last_value", "Last value of the Python test job.", registry=registry).set(1)
        push_to_gateway(gateway, job=JOB, registry=registry, grouping_key=GROUPING)
    elif name == "delete":
        delete_from_gateway(gateway, job=JOB, grouping_key=GROUPING)
    elif name == "gzip":
        Gauge("py_gzipped", "Pushed gzip-compressed.", registry=registry).set(5)
        push_to_gateway(gateway, job="py_gzip", registry=registry, compression="gzip")
    elif name == "gauge":
        Gauge("py_clash_total", "A gauge.", registry=registry).set(1)
        push_to_gateway(gateway, job="py_a", registry=registry)
    elif name == "counter":
        Counter("py_clash", "A counter of the same exposed name.", registry=registry).inc()
        push_to_gateway(gateway, job="py_b", registry=registry)
    else:
        raise SystemExit(f"unknown step {name!r}")


def main():
    gateway, name = sys.argv[1], sys.argv[2]
    try:
        step(gateway, name)
    except urllib.error.HTTPError as e:
        body = e.read().decode("utf-8", "replace")
        print(f"python_push: {type(e).__name__}: {e}: {body}", file=sys.stderr)
        sys.exit(1)
    except OSError as e:
        print(f"python_push: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
