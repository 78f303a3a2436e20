package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics and returns either a config or an error.
// Seeds: every example (modbus-rs485.yaml and mqtt-and-pm.yaml among them) and golden
// case (mqtt and pm among them), plus the inputs below; inputs that once failed are
// kept in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("examples/*.yaml")
	cases, _ := filepath.Glob("testdata/*/config.yaml")
	for _, file := range append(files, cases...) {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"~",
		"[]",
		"gateway: {id: a, site: s}\ndevices: [{name: d, interval: 1s, sim: {kind: air}}]\n",
		"gateway: &g {id: a}\nbuffer: *g\n",
		"a: &a [*a]\n",
		"devices: [*x]\n",
		"gateway:\n  <<: [*a, 3]\n",
		"gateway: {id: \"${\"}\n",
		"gateway: {id: \"${A:-${B}}$$$\"}\n",
		"? [a, b]\n: c\n",
		"gateway: !!binary aGVsbG8=\n",
		"buffer: {max_bytes: 99999999999999999999999TiB, memory_readings: 1e400}\n",
		"devices:\n- interval: -9223372036854775808ns\n  timeout: 9223372036854775807ns\n",
		"\t\x00\xff",
		"--- a\n--- b\n",
		"buses: [{name: a, serial: {port: p}, devices: [{name: d, slave: 1, profile: xy-md02, interval: 1s}]}]\n",
		"buses: [{name: a, tcp: {address: \"h:1\"}, rtu_over_tcp: {}, devices: [{name: d, slave: 255, interval: 1s, points: [{quantity: ph, address: 65535, type: float64, order: DCBA, min: .nan}]}]}]\n",
		"buses: [{devices: [{profile: outdoor-air-8in1, points: [{quantity: co}, {quantity: co, function: 1, type: bool, scale: 1e308}]}]}]\n",
		"profile_files: [profiles/xy-md02.yaml, \"\", /nonexistent/p.yaml]\nbuses: [{devices: [{profile: xy-md02}]}]\n",
		"buses:\n- &b {name: a, serial: {port: p, baud: 010}, max_gap: -1}\n- *b\n",
		"mqtt: [{name: m, broker: \"tcp://h\", client_id: c, subscriptions: [{topic: \"a/+/#\", template: \"a/{site}/#\", device: d, fields: [{path: \"x[0].y\", quantity: la}], time: {path: t, format: \"2006-01-02 15:04:05\", location: UTC}}]}]\n",
		"mqtt: [{name: m, broker: \"mqtts://[::1]\", client_id: c, password_file: /nonexistent, tls: {cert_file: c}, subscriptions: [{topic: \"#\", template: \"{quantity}/{quantity}/#\", format: lineprotocol, qos: 2, time: {format: Local}}]}]\n",
		"mqtt:\n- name: m\n  broker: \"ssl://u:p@h:0/x?y#z\"\n  subscriptions:\n  - {topic: \"a/\\0/+\", format: number, fields: [{path: \"[[\"}], time: {location: \"../../etc\"}}\n",
		"pm: [{name: p, port: /dev/ttyS0, model: pms5003, mode: query, values: cf1, stale: 1ns, duty_cycle: {work: 1s}, warmup: 2562047h}]\n",
		"pm:\n- &p {name: p, port: p, model: sds011, interval: -1s, duty_cycle: {work: 1m, sleep: 1m}}\n- *p\nbuses: [{name: b, serial: {port: p}}]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz.yaml")
		if (cfg == nil) == (err == nil) {
			t.Fatalf("Parse(%q) = %v, %v; want exactly one of config and error", data, cfg, err)
		}
		for _, p := range Problems(err) {
			if p.Msg == "" {
				t.Fatalf("Parse(%q): problem without a message: %#v", data, p)
			}
		}
	})
}
