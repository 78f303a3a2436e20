package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hj212SinkConfig is a config with one hj212 sink whose block ends in block.
func hj212SinkConfig(block string) string {
	return `
gateway: {id: box-1, site: canal, state_dir: /var/lib/envgate}
sinks:
  - name: province
    hj212:
      address: platform.example:8600
` + block
}

// Issue 16: an hj212 sink gets the defaults of docs/config.md, and every problem is
// reported at its key.
func TestHJ212SinkConfig(t *testing.T) {
	dir := t.TempDir()
	cfg, err := Parse([]byte(hj212SinkConfig(`      stations:
        - {st: "23", mn: 33010500A0010001F0000002, pw: "123456", realtime: true, records: [minute, daily]}
        - {st: "22", mn: M2, pw: "123456", devices: [air-1], records: [hourly], factors: [{quantity: so2, decimals: 0, scale: 1000}]}
`)), filepath.Join(dir, "envgate.yaml"))
	if err != nil {
		t.Fatalf("Parse: %s", errLines(err))
	}
	h := cfg.Sinks[0].HJ212
	if h.Timezone != "Asia/Shanghai" || !h.Answers || h.AnswerTimeout != 10*time.Second || h.Retries != 3 || h.Heartbeat != 0 ||
		h.RtdInterval != time.Minute || h.SuspectFlag != "D" || h.BatchSize != 1000 || h.RetryJitter != DefaultRetryJitter {
		t.Errorf("defaults: %+v", h)
	}
	if h.Stations[0].Site != "canal" || h.Stations[1].Site != "" || *h.Stations[1].Factors[0].Decimals != 0 {
		t.Errorf("stations: %+v", h.Stations)
	}
	if h.Stations[0].PW.String() == "123456" {
		t.Error("pw is not a secret")
	}

	check := func(block, want string) {
		t.Helper()
		_, err := Parse([]byte(hj212SinkConfig(block)), filepath.Join(dir, "envgate.yaml"))
		if err == nil || !strings.Contains(errLines(err), want) {
			t.Errorf("block %q: got\n%s\nwant a line containing %q", block, errLines(err), want)
		}
	}
	p := "sinks[0].hj212."
	st := "      stations: [{st: \"23\", mn: M1, pw: \"1\", realtime: true}]\n"
	check("", p+"stations (line 5): at least one station is required")
	check(st+"      answers: false\n      retries: 11\n", p+"retries (line 9): must be between 0 and 10")
	check(st+"      rtd_interval: 10s\n", p+"rtd_interval (line 8): must be whole seconds from 30s to 1h")
	check(st+"      timezone: Mars/Olympus\n", p+"timezone (line 8): unknown time zone Mars/Olympus")
	check(st+"      suspect_flag: X\n", p+"suspect_flag (line 8): must be one of N, F, M, S, D, C, T, B")
	check(st+"      heartbeat: 10ms\n", p+"heartbeat (line 8): must be 0 (off) or between 1s and 1h")
	check("      stations: [{st: \"31\", mn: \"a;b\", pw: \"\", records: [weekly]}]\n", p+"stations[0].st (line 7): must be 21")
	check("      stations: [{st: \"31\", mn: \"a;b\", pw: \"\", records: [weekly]}]\n", p+"stations[0].mn (line 7): must be at most 64 characters")
	check("      stations: [{st: \"31\", mn: \"a;b\", pw: \"\", records: [weekly]}]\n", p+"stations[0].pw (line 7): required")
	check("      stations: [{st: \"31\", mn: \"a;b\", pw: \"\", records: [weekly]}]\n", p+"stations[0].records[0] (line 7): must be one of minute, hourly, daily")
	check("      stations: [{st: \"23\", mn: M, pw: \"1\"}]\n", p+"stations[0].records (line 7): a station sends nothing")
	check("      stations: [{st: \"23\", mn: M, pw: \"1\", realtime: true}, {st: \"22\", mn: M, pw: \"1\", realtime: true}]\n",
		p+"stations[1].mn (line 7): duplicate mn \"M\" (first at stations[0])")
	check("      stations: [{st: \"23\", mn: M, pw: \"1\", realtime: true, site: a, devices: [b]}]\n", p+"stations[0].devices (line 7): not with site")
	check("      stations: [{st: \"22\", mn: M, pw: \"1\", realtime: true, factors: [{quantity: so2, code: \"a-1\", decimals: 9, scale: -1}, {quantity: so2}]}]\n",
		p+"stations[0].factors[0].decimals (line 7): must be between 0 and 6")
	check("      stations: [{st: \"22\", mn: M, pw: \"1\", realtime: true, factors: [{quantity: so2, code: \"a-1\", decimals: 9, scale: -1}, {quantity: so2}]}]\n",
		p+"stations[0].factors[0].code (line 7): must be at most 16 characters")
	check("      stations: [{st: \"22\", mn: M, pw: \"1\", realtime: true, factors: [{quantity: so2, code: \"a-1\", decimals: 9, scale: -1}, {quantity: so2}]}]\n",
		p+"stations[0].factors[0].scale (line 7): must be > 0")
	check("      stations: [{st: \"22\", mn: M, pw: \"1\", realtime: true, factors: [{quantity: so2}, {quantity: so2}, {code: x}]}]\n",
		p+"stations[0].factors[1].quantity (line 7): duplicate \"so2\" (first at factors[0])")
	check("      stations: [{st: \"22\", mn: M, pw: \"1\", realtime: true, factors: [{quantity: so2}, {quantity: so2}, {code: x}]}]\n",
		p+"stations[0].factors[2].quantity (line 7): required")
	// A catalog quantity, a derived one and one of the standard's factors are fine; a
	// name in none of them is not (the listener's check, reading.CheckQuantity).
	check("      stations: [{st: \"22\", mn: M, pw: \"1\", realtime: true, factors: [{quantity: pm25}, {quantity: pm25_1h}, {quantity: ldn}, {quantity: pm2.5}]}]\n",
		p+"stations[0].factors[3].quantity (line 7): unknown quantity \"pm2.5\"")
}
