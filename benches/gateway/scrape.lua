-- wrk script for scripts/bench: plain GET of the URL given to wrk (the scrape, /metrics),
-- with whatever headers scripts/bench adds (-H 'Accept-Encoding: gzip' for the gzip run).
--
-- No response() callback on purpose: it would make wrk copy every multi-megabyte body into
-- Lua, adding client work that is not the server's. Non-2xx answers are still counted by wrk
-- itself (summary.errors.status), and scripts/bench checks one full body with curl beforehand.
--
-- Prints machine-readable "BENCH key=value" lines at the end for scripts/bench to parse.

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH requests=%d\n", summary.requests))
  io.write(string.format("BENCH seconds=%.3f\n", summary.duration / 1e6))
  io.write(string.format("BENCH mean_ms=%.3f\n", latency.mean / 1000))
  io.write(string.format("BENCH p99_ms=%.3f\n", latency:percentile(99) / 1000))
  io.write(string.format("BENCH max_ms=%.3f\n", latency.max / 1000))
  io.write(string.format("BENCH bad_status=%d\n", e.status))
  io.write(string.format("BENCH socket_errors=%d\n", e.connect + e.read + e.write + e.timeout))
end
