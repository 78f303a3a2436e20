#!/bin/sh
# bench/run.sh: the figures of issue 14 in one run, one benchmark after the other; each
# ratio compares measurements its benchmark takes side by side (paired passes):
#   - BenchmarkE2E/DirectWrite: InfluxDB's direct batched write (the baseline);
#   - BenchmarkDrain: a 1 000 000-reading backlog drained against 2 direct writers,
#     sharing both cores with influxd, then with influxd on CPU 0 and envgate on CPU 1
#     (-drain-pin: as if InfluxDB ran on a host of its own);
#   - BenchmarkMQTT/inflight=1000: envgate's CPU per MQTT message, and ÷ the direct write;
#     BenchmarkMQTT/paho-floor: a bare paho subscriber's on the same load;
#   - BenchmarkWear: storage bytes written per day and per reading at 1, 20 and 200 MQTT
#     msgs/s and for 200 simulated channels (root: a loop-mounted ext4 image);
#   - BenchmarkFootprint: the real binary's peak RSS and CPU on a 200 msgs/s stream.
# About 8 minutes. Needs influxd 1.8.10 and mosquitto (scripts/install-deps.sh).
# Extra arguments go to the benchmarks' flags, e.g. -wear-duration=60s -readings=2000000.
# See bench/README.md for what each figure means and the figures of one run.
set -eu
cd "$(dirname "$0")/.."
PATH="$(go env GOPATH)/bin:$PATH"
export PATH
bench() { pattern=$1; shift; go test -run '^$' -timeout 30m -benchtime 1x -bench "$pattern" ./bench/ -args "$@"; }
bench '^BenchmarkE2E$/^DirectWrite$' "$@"
bench '^BenchmarkDrain$' "$@"
bench '^BenchmarkDrain$' -drain-pin "$@"
bench '^BenchmarkMQTT$/^(inflight=1000|paho-floor)$' "$@"
bench '^BenchmarkWear$' "$@"
bench '^BenchmarkFootprint$' "$@"
