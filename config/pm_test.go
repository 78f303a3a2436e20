package config

import (
	"reflect"
	"testing"
	"time"
)

func TestPMDefaults(t *testing.T) {
	cfg, err := Parse([]byte(`
gateway: {id: box-1, site: canal}
pm:
  - {name: pms-1, port: /dev/ttyAMA0, model: pms5003}
  - {name: pms-2, port: /dev/ttyAMA1, model: pms7003, interval: 20s, site: lock}
  - {name: sds-1, port: /dev/ttyUSB0, model: sds011, interval: 5s}
`), "minimal.yaml")
	if err != nil {
		t.Fatalf("Parse:\n%s", errLines(err))
	}
	const s = time.Second
	want := []PMSensor{
		{Name: "pms-1", Site: "canal", Port: "/dev/ttyAMA0", Model: "pms5003", Mode: "active", Interval: 10 * s, Values: "atmospheric", Stale: 30 * s, Warmup: 30 * s},
		{Name: "pms-2", Site: "lock", Port: "/dev/ttyAMA1", Model: "pms7003", Mode: "active", Interval: 20 * s, Values: "atmospheric", Stale: 60 * s, Warmup: 30 * s},
		// The SDS011 has no value sets, and 3 × 5s is below the 30s floor.
		{Name: "sds-1", Site: "canal", Port: "/dev/ttyUSB0", Model: "sds011", Mode: "query", Interval: 5 * s, Stale: 30 * s, Warmup: 30 * s},
	}
	if !reflect.DeepEqual(cfg.PM, want) {
		t.Errorf("Parse.PM =\n%+v\nwant\n%+v", cfg.PM, want)
	}

	built := Config{
		Gateway: Gateway{ID: "box-1", Site: "canal"},
		PM: []PMSensor{
			{Name: "pms-1", Port: "/dev/ttyAMA0", Model: "pms5003"},
			{Name: "pms-2", Port: "/dev/ttyAMA1", Model: "pms7003", Interval: 20 * s, Site: "lock"},
			{Name: "sds-1", Port: "/dev/ttyUSB0", Model: "sds011", Interval: 5 * s},
		},
	}
	built.Defaults()
	built.Defaults()
	if !reflect.DeepEqual(built.PM, want) {
		t.Errorf("Defaults().PM =\n%+v\nwant\n%+v", built.PM, want)
	}
	if err := built.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
}

func TestPMExplicitValues(t *testing.T) {
	const head = "gateway: {id: a, site: s}\npm:\n  - name: p\n    port: /dev/ttyS0\n"
	cfg, err := Parse([]byte(head+"    model: pms5003\n    mode: passive\n    values: cf1\n    warmup: 0s\n    stale: 30s\n    interval: 29s\n    duty_cycle: {work: 1s, sleep: 1h}\n"), "x.yaml")
	if err != nil {
		t.Fatalf("Parse:\n%s", errLines(err))
	}
	if p := cfg.PM[0]; p.Warmup != 0 || p.Mode != "passive" || p.Values != "cf1" || p.Stale != 30*time.Second {
		t.Errorf("pm = %+v", p)
	}
	check := func(extra, want string) {
		t.Helper()
		_, err := Parse([]byte(head+extra), "x.yaml")
		if got := errLines(err); got != want {
			t.Errorf("Parse(%q) problems:\n%swant:\n%s", extra, got, want)
		}
	}
	check("    model: sds011\n    mode: active\n    duty_cycle: {work: 0s, sleep: 0s}\n", "")
	check("    model: sds011\n    interval: 0s\n    stale: 0s\n",
		"pm[0].interval (line 6): must be at least 1s: the sensors measure about once a second\n"+
			"pm[0].stale (line 7): must be at least 30s\n")
	check("    model: sds011\n    duty_cycle: {work: -1s, sleep: 1m}\n", "pm[0].duty_cycle.work (line 6): must be > 0\n")
	check("    model: sds011\n    duty_cycle: {work: 1m, sleep: -1s}\n", "pm[0].duty_cycle.sleep (line 6): must be > 0\n")
	check("    model: sds011\n    warmup: 1m\n    duty_cycle: {work: 1m, sleep: 1m}\n",
		"pm[0].duty_cycle.work (line 7): must be longer than warmup (1m0s): work counts from wake-up, and readings during warmup are discarded\n")
	check("    model: PMS5003\n", "pm[0].model (line 5): must be one of pms5003, pms7003, sds011\n")
	check("    model: pms7003\n    mode: sleep\n", "pm[0].mode (line 6): must be active or passive for pms7003\n")
	check("    model: pms7003\n    duty_cycle: [1m, 4m]\n", "pm[0].duty_cycle (line 6): must be a mapping of keys, not a list\n")
}
