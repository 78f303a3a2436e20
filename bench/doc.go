// Package bench holds envgate's end-to-end throughput benchmarks (sim readings → durable
// buffer → forwarder → a real InfluxDB 1.8.10), measured against a direct batched write
// of the same points to the same server in the same run. The package has no code of its
// own: everything is in its _test.go files; see README.md for how to run them and the
// figures of one run.
package bench
