package config

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestHJ212Listen(t *testing.T) {
	cfg, err := Parse([]byte(`
gateway: {id: box-1, site: canal}
hj212_listen:
  - name: analyzers
    listen: "0.0.0.0:9212"
    stations:
      - {mn: 33010500A0010001F0000002, device: nm1}
      - {mn: 010000A8900016F000169DC0, device: aq1, site: square, factors: [{code: a21026, quantity: so2, scale: 1}]}
  - name: logger
    serial: {port: /dev/ttyUSB3}
    timezone: UTC
    stations: [{mn: W1, device: wq1}]
`), "hj.yaml")
	if err != nil {
		t.Fatalf("Parse:\n%s", errLines(err))
	}
	l := cfg.HJ212[0]
	if l.Timezone != "Asia/Shanghai" || l.MaxConns != 16 || l.IdleTimeout != 65*time.Minute || l.Stations[0].Site != "canal" ||
		l.Stations[1].Factors[0].Quantity != "so2" || cfg.HJ212[1].Serial.Baud != 9600 {
		t.Errorf("Parse.HJ212 = %+v", cfg.HJ212)
	}

	_, err = Parse([]byte(`
gateway: {id: box-1, site: canal}
pm: [{name: pms-1, port: /dev/ttyUSB3, model: pms5003}]
hj212_listen:
  - name: a
    stations:
      - {mn: X, device: pms-1, factors: [{code: a21026, quantity: so3}]}
      - {mn: X, device: d2, factors: [{code: a21004, quantity: no2, scale: -1}, {quantity: no2}]}
  - name: b
    serial: {port: /dev/ttyUSB3}
    timezone: Mars/Olympus
    max_conns: 0
    idle_timeout: 1s
`), "bad.yaml")
	got := regexp.MustCompile(` \(line \d+\)`).ReplaceAllString(errLines(err), "")
	for _, want := range []string{
		"hj212_listen[0]: needs exactly one of listen and serial",
		"hj212_listen[0].stations[0].device: duplicate device name \"pms-1\"",
		"hj212_listen[0].stations[0].factors[0].quantity: unknown quantity \"so3\"",
		"hj212_listen[0].stations[1].mn: duplicate MN \"X\"",
		"hj212_listen[0].stations[1].factors[0].scale: must be > 0",
		"hj212_listen[0].stations[1].factors[1].code: required",
		"hj212_listen[1].serial.port: /dev/ttyUSB3 is also used by pm[0]",
		"hj212_listen[1].timezone:",
		"hj212_listen[1].max_conns: must be 1..1024",
		"hj212_listen[1].idle_timeout: must be at least 1m",
		"hj212_listen[1].stations: required",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors lack %q:\n%s", want, got)
		}
	}
}
