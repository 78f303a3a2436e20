package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const minimalMQTT = `
gateway: {id: box-1, site: canal, state_dir: /srv/envgate}
mqtt:
  - name: lora
    broker: ssl://broker.example:8883
    client_id: envgateBox1
    subscriptions:
      - topic: env/+/+/#
        template: env/{site}/{device}/#
        fields:
          - {path: data.pm25, quantity: pm25}
          - {path: data.noise, quantity: la, scale: 0.1, optional: true}
        time: {path: ts, format: unix_ms}
      - topic: esp/+/+
        template: esp/{device}/{quantity}
        format: number
`

func TestMQTTDefaults(t *testing.T) {
	cfg, err := Parse([]byte(minimalMQTT), "minimal.yaml")
	if err != nil {
		t.Fatalf("Parse:\n%s", errLines(err))
	}
	want := []MQTT{{
		Name: "lora", Broker: "ssl://broker.example:8883", ClientID: "envgateBox1",
		KeepAlive: 30 * time.Second, MaxReconnect: 30 * time.Second, MaxPayload: 64 * KiB, MaxInflight: 20,
		DeadLetter: "/srv/envgate/deadletter/lora.mqtt.log",
		Subscriptions: []Subscription{
			{Topic: "env/+/+/#", Template: "env/{site}/{device}/#", Format: "json",
				Fields: []Field{{Path: "data.pm25", Quantity: "pm25", Scale: 1}, {Path: "data.noise", Quantity: "la", Scale: 0.1, Optional: true}},
				Time:   TimeSpec{Path: "ts", Format: "unix_ms", Location: "Asia/Shanghai"}, QoS: 1, MaxDevices: 1000},
			// No {site} in the template: the site is gateway.site.
			{Topic: "esp/+/+", Template: "esp/{device}/{quantity}", Site: "canal", Format: "number", QoS: 1, MaxDevices: 1000},
		},
	}}
	if !reflect.DeepEqual(cfg.MQTT, want) {
		t.Errorf("Parse(minimalMQTT).MQTT =\n%#v\nwant\n%#v", cfg.MQTT, want)
	}

	// The same config built in code: Defaults fills the same values, and calling it
	// again changes nothing.
	built := Config{
		Gateway: Gateway{ID: "box-1", Site: "canal", StateDir: "/srv/envgate"},
		MQTT: []MQTT{{Name: "lora", Broker: "ssl://broker.example:8883", ClientID: "envgateBox1",
			Subscriptions: []Subscription{
				{Topic: "env/+/+/#", Template: "env/{site}/{device}/#",
					Fields: []Field{{Path: "data.pm25", Quantity: "pm25"}, {Path: "data.noise", Quantity: "la", Scale: 0.1, Optional: true}},
					Time:   TimeSpec{Path: "ts", Format: "unix_ms"}},
				{Topic: "esp/+/+", Template: "esp/{device}/{quantity}", Format: "number"},
			}}},
	}
	built.Defaults()
	built.Defaults()
	if !reflect.DeepEqual(built.MQTT, want) {
		t.Errorf("Defaults().MQTT =\n%#v\nwant\n%#v", built.MQTT, want)
	}
	if err := built.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Parse then Validate() = %v", err)
	}
}

// TestMQTTExplicitValues checks that zeros written in the file are kept or reported,
// not replaced by defaults.
func TestMQTTExplicitValues(t *testing.T) {
	const head = "gateway: {id: a, site: s}\nmqtt:\n  - name: m\n    broker: tcp://h\n    client_id: c\n"
	// An explicit qos: 0 is reported, not silently turned into the default 1.
	_, err := Parse([]byte(head+"    subscriptions:\n      - {topic: t, device: d, quantity: la, format: number, qos: 0}\n"), "x.yaml")
	if err == nil || !strings.Contains(err.Error(), "qos (line 7): must not be 0: QoS 0 could lose messages") {
		t.Errorf("qos: 0 gave %v, want a problem", err)
	}
	check := func(extra, want string) {
		t.Helper()
		_, err := Parse([]byte(head+extra), "x.yaml")
		if got := errLines(err); got != want {
			t.Errorf("Parse(%q) problems:\n%swant:\n%s", extra, got, want)
		}
	}
	const sub = "    subscriptions: [{topic: t, device: d, quantity: la, format: number}]\n"
	check("    keep_alive: 0s\n    max_reconnect: 0s\n    max_payload: 0\n"+sub,
		"mqtt[0].keep_alive (line 6): must not be 0 (leave it out for the default 30s)\n"+
			"mqtt[0].max_reconnect (line 7): must not be 0 (leave it out for the default 30s)\n"+
			"mqtt[0].max_payload (line 8): must not be 0 (leave it out for the default 64KiB)\n")
	check("    keep_alive: 65536s\n    max_payload: 256MiB\n"+sub,
		"mqtt[0].keep_alive (line 6): must be whole seconds from 1s to 18h12m15s (MQTT sends it as a 16-bit number of seconds)\n"+
			"mqtt[0].max_payload (line 7): must be between 1 and 268435455 bytes, the largest MQTT packet\n")
	check("    keep_alive: 18h12m15s\n    max_payload: 268435455\n"+sub, "")
	check("    subscriptions: [{topic: t, device: d, fields: [{path: v, quantity: la, scale: 0}]}]\n",
		"mqtt[0].subscriptions[0].fields[0].scale (line 6): must not be 0 (every value would be the offset)\n")
	check("    subscriptions:\n", "mqtt[0].subscriptions (line 6): required: list the topics to read\n")
	check("    tls: {}\n"+sub, "mqtt[0].tls (line 6): needs an ssl:// or mqtts:// broker; with tcp:// nothing is encrypted\n")
	check("    username: u\n"+sub, "")
	// Zeros the driver would take for its default are refused here; other values
	// out of range are the driver's, with its words.
	check("    subscriptions: [{topic: t, device: d, quantity: la, format: number, max_devices: 0}]\n",
		"mqtt[0].subscriptions[0].max_devices (line 6): must not be 0 (leave it out for the default 1000)\n")
	check("    subscriptions: [{topic: t, device: d, quantity: la, format: number, qos: -1}]\n",
		"mqtt[0].subscriptions[0].qos (line 6): must be 1: QoS 1 keeps messages at the broker until the gateway has them on disk; QoS 0 could lose them\n")
	check("    subscriptions: [{topic: t, device: d, fields: [{path: v, quantity: la}], time: {path: ts, format: unix, location: Local}}]\n",
		"mqtt[0].subscriptions[0].time.location (line 6): must name a zone such as Asia/Shanghai or UTC; Local depends on the box's settings\n")
	check("    keep_alive: 1500ms\n"+sub,
		"mqtt[0].keep_alive (line 6): must be whole seconds from 1s to 18h12m15s (MQTT sends it as a 16-bit number of seconds)\n")
}

// TestTimeZoneData checks that every zone the docs name loads without the system's
// zone files, from the time/tzdata package config embeds.
func TestTimeZoneData(t *testing.T) {
	t.Setenv("ZONEINFO", filepath.Join(t.TempDir(), "none.zip"))
	for _, name := range []string{"Asia/Shanghai", "UTC", "Europe/Berlin", "Asia/Urumqi"} {
		if _, err := time.LoadLocation(name); err != nil {
			t.Errorf("LoadLocation(%q) = %v", name, err)
		}
	}
}

// TestSubscriptionFormats checks where site, device and quantity come from for each
// format.
func TestSubscriptionFormats(t *testing.T) {
	const head = "gateway: {id: a}\nmqtt:\n  - name: m\n    broker: tcp://h\n    client_id: c\n    subscriptions:\n"
	check := func(sub string, want ...string) {
		t.Helper()
		_, err := Parse([]byte(head+"      - "+sub+"\n"), "x.yaml")
		var got []string
		for _, p := range Problems(err) {
			got = append(got, p.Error())
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: problems =\n  %s\nwant\n  %s", sub, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}
	// Line protocol may take site and device from each line's tags.
	check("{topic: lp/#, format: lineprotocol}")
	check("{topic: lp/+, template: 'lp/{device}', format: lineprotocol, time: {format: unix}}")
	check("{topic: lp/+, template: 'lp/{quantity}', site: s, device: d, format: lineprotocol, fields: [{path: v, quantity: la}]}",
		"mqtt[0].subscriptions[0].template (line 7): {quantity} is for formats number and json; line protocol names its own fields",
		"mqtt[0].subscriptions[0].fields (line 7): is for format json; line protocol names its own fields, which must be catalog quantities")
	// JSON: one field may take {quantity} from the topic.
	check("{topic: j/+/+, template: 'j/{device}/{quantity}', site: s, fields: [{path: v}, {path: w, quantity: la}]}")
	check("{topic: j/+/+, template: 'j/{device}/{quantity}', site: s, fields: [{path: v}, {path: w}]}",
		"mqtt[0].subscriptions[0].fields[1].quantity (line 7): required: only one field takes {quantity} from the topic (fields[0] does)")
	check("{topic: j/+/+, template: 'j/{device}/{quantity}', site: s, fields: [{path: w, quantity: la}]}",
		"mqtt[0].subscriptions[0].template (line 7): {quantity} is used by no field: leave quantity out of the field it is for, or make that level +")
	check("{topic: j/+, template: 'j/{device}', site: s, fields: [{path: w}], quantity: la}",
		"mqtt[0].subscriptions[0].quantity (line 7): is for format number; json fields name their own quantities",
		"mqtt[0].subscriptions[0].fields[0].quantity (line 7): required (or name a {quantity} level in the template, which one field may take)")
	check("{topic: j, site: s, device: d, fields: [{path: w, quantity: uptime}, {path: x, quantity: ph}, {path: y, quantity: ph}]}",
		`mqtt[0].subscriptions[0].fields[0].quantity (line 7): "uptime" is one of the gateway's own health quantities, not a measurement`,
		`mqtt[0].subscriptions[0].fields[2].quantity (line 7): duplicate quantity "ph" (first at fields[1]); a message gives each quantity once`)
	check("{topic: j, site: s, device: d}",
		"mqtt[0].subscriptions[0].fields (line 7): required for format json: list at least one field")
	// Number.
	check("{topic: n/+/+, template: 'n/{device}/{quantity}', site: s, format: number, quantity: la}",
		"mqtt[0].subscriptions[0].quantity (line 7): set quantity or {quantity} in the template, not both")
	check("{topic: n, site: s, device: d, format: number, quantity: lA}",
		`mqtt[0].subscriptions[0].quantity (line 7): unknown quantity "lA" (did you mean "la"?)`)
	check("{topic: n/+, template: 'n/{device}', device: d, format: number, quantity: la}",
		"mqtt[0].subscriptions[0].site (line 7): required: name a {site} level in the template, or set site here or as gateway.site",
		"mqtt[0].subscriptions[0].device (line 7): set device or {device} in the template, not both")
	check("{topic: n, site: s s, device: d, format: number, quantity: la}",
		"mqtt[0].subscriptions[0].site (line 7): character ' ' not allowed (letters, digits, '-', '_', '.')")
}

// TestMQTTNames checks that names are unique across devices, buses, mqtt and pm, and
// client ids per broker.
func TestMQTTNames(t *testing.T) {
	_, err := Parse([]byte(`
gateway: {id: a, site: s}
devices:
  - {name: d1, interval: 1s, sim: {kind: air}}
buses:
  - {name: b, tcp: {address: "h:502"}, devices: [{name: d2, slave: 1, profile: xy-md02, interval: 1s}]}
mqtt:
  - {name: d1, broker: "tcp://h", client_id: c, subscriptions: [{topic: t, device: x, format: number, quantity: la}]}
  - {name: d2, broker: "mqtt://h:1883", client_id: c, subscriptions: [{topic: t, device: x, format: number, quantity: la}]}
  - {name: m3, broker: "tcp://h:1884", client_id: c, subscriptions: [{topic: t, device: x, format: number, quantity: la}]}
pm:
  - {name: m3, port: /dev/ttyS0, model: sds011}
  - {name: p2, port: /dev/ttyS1, model: sds011}
  - {name: p2, port: /dev/ttyS2, model: sds011}
`), "x.yaml")
	want := `mqtt[0].name (line 8): duplicate name "d1" (first at devices[0]); devices and sources share one set of names
mqtt[1].name (line 9): duplicate name "d2" (first at buses[0].devices[0]); devices and sources share one set of names
mqtt[1].client_id (line 9): duplicate client_id "c" on this broker (first at mqtt[0]); a second connection with the same id disconnects the first
pm[0].name (line 12): duplicate device name "m3" (first at mqtt[2])
pm[2].name (line 14): duplicate device name "p2" (first at pm[1])
`
	if got := errLines(err); got != want {
		t.Errorf("problems:\n%swant:\n%s", got, want)
	}
}

// TestMQTTSecrets puts a password in through ${VAR} and a password_file, breaks many
// other fields, and checks that it appears in no error and no formatted config.
func TestMQTTSecrets(t *testing.T) {
	const secret = "pa55-s3cr3t"
	t.Setenv("ENVGATE_MQTT_PW", secret)
	t.Setenv("ENVGATE_MQTT_BROKER", "tcp://box:"+secret+"@broker.example:1883")
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "mqtt-password")
	if err := os.WriteFile(pwFile, []byte("\n"+secret+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "empty"), []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "envgate.yaml")

	broken := `
gateway: {id: a, site: s}
mqtt:
  - name: a
    broker: ${ENVGATE_MQTT_BROKER}
    client_id: ${ENVGATE_MQTT_PW}
    password: &pw ${ENVGATE_MQTT_PW}
    keep_alive: ${ENVGATE_MQTT_PW}
    max_payload: *pw
    subscriptions:
      - {topic: t, device: d, format: "${ENVGATE_MQTT_PW}", qos: "${ENVGATE_MQTT_PW}"}
  - name: b
    broker: "mqtts://h"
    client_id: b
    password_file: mqtt-password
    password: [` + secret + `]
    subscriptions: [{topic: t, device: d, format: number, quantity: la}]
  - name: c
    broker: "mqtts://h"
    client_id: c
    username: u
    password: "${ENVGATE_MQTT_PW}"
    password_file: mqtt-password
    subscriptions: [{topic: t, device: d, format: number, quantity: la}]
  - name: d
    broker: "mqtts://h"
    client_id: d
    username: u
    password_file: empty
    subscriptions: [{topic: t, device: d, format: number, quantity: la}]
  - name: e
    broker: "mqtts://h"
    client_id: e
    username: u
    password_file: nope
    subscriptions: [{topic: t, device: d, format: number, quantity: la}]
`
	_, err := Parse([]byte(broken), cfgFile)
	if err == nil {
		t.Fatal("Parse(broken) = nil error")
	}
	got := errLines(err)
	if strings.Contains(got, secret) {
		t.Errorf("problems contain the password:\n%s", got)
	}
	for _, want := range []string{
		"mqtt[0].broker (line 5): must not hold a user or password: use username and password_file\n",
		"mqtt[0].password (line 7): needs username: MQTT sends a password only with a user name (MQTT 3.1.1 §3.1.2.9)\n",
		"mqtt[0].keep_alive (line 8): must be a duration such as \"30s\", \"1m30s\" or \"1h\" (after ${...} expansion)\n",
		"mqtt[0].max_payload (line 7): must be a size such as \"512MiB\" or a number of bytes\n",
		"mqtt[0].subscriptions[0].qos (line 11): must be a whole number (after ${...} expansion)\n",
		"mqtt[1].password (line 16): must be a single value, not a list\n",
		"mqtt[2].password_file (line 23): set password or password_file, not both\n",
		"mqtt[3].password_file (line 29): file is empty\n",
		"mqtt[4].password_file (line 35): cannot read password: open " + filepath.Join(dir, "nope") + ": no such file or directory\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q; got:\n%s", want, got)
		}
	}

	good := `
gateway: {id: a, site: s}
mqtt:
  - {name: a, broker: "mqtts://h", client_id: a, username: u, password: "${ENVGATE_MQTT_PW}", subscriptions: [{topic: t, device: d, format: number, quantity: la}]}
  - {name: b, broker: "mqtts://h", client_id: b, username: u, password_file: mqtt-password, subscriptions: [{topic: t, device: d, format: number, quantity: la}]}
  - {name: c, broker: "mqtts://h", client_id: c, username: u, password_file: ` + pwFile + `, subscriptions: [{topic: t, device: d, format: number, quantity: la}]}
`
	cfg, err := Parse([]byte(good), cfgFile)
	if err != nil {
		t.Fatalf("Parse(good):\n%s", errLines(err))
	}
	for _, m := range cfg.MQTT {
		if m.Password.Reveal() != secret {
			t.Errorf("mqtt %s password = %q, want %q", m.Name, m.Password.Reveal(), secret)
		}
	}
	out := fmt.Sprintf("%v %+v %#v %v %+v %#v %s %q %x", cfg, *cfg, *cfg, cfg.MQTT[0], cfg.MQTT[1], cfg.MQTT, cfg.MQTT[2].Password,
		cfg.MQTT[2].Password, cfg.MQTT[2].Password)
	if strings.Contains(out, secret) || !strings.Contains(out, "[redacted]") {
		t.Errorf("formatted config shows the password or no [redacted]:\n%s", out)
	}
}

// TestExampleMQTTAndPM checks values of config/examples/mqtt-and-pm.yaml, those the
// defaults fill in among them.
func TestExampleMQTTAndPM(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "influx-token")
	if err := os.WriteFile(tokenFile, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ENVGATE_INFLUX_TOKEN_FILE", tokenFile)
	t.Setenv("INFLUX_URL", "http://127.0.0.1:8086")
	cfg, err := Load("examples/mqtt-and-pm.yaml")
	if err != nil {
		t.Fatalf("Load:\n%s", errLines(err))
	}
	lora, esp := cfg.MQTT[0], cfg.MQTT[1]
	if lora.Password != "" || lora.TLS == nil || lora.TLS.CertFile != "/etc/envgate/box023.pem" || lora.MaxReconnect != time.Minute {
		t.Errorf("lora = %+v", lora)
	}
	if s := lora.Subscriptions[1]; s.Site != "canal-lock-2" || s.Format != "json" || s.Time.Location != "Asia/Shanghai" || s.QoS != 1 {
		t.Errorf("lora mast subscription = %+v", s)
	}
	if esp.DeadLetter != "/var/lib/envgate/deadletter/esp.mqtt.log" || esp.KeepAlive != 30*time.Second || esp.MaxPayload != 64*KiB {
		t.Errorf("esp = %+v", esp)
	}
	if s := esp.Subscriptions[0]; s.Site != "canal-east-4" || s.Quantity != "" || s.Time != (TimeSpec{}) {
		t.Errorf("esp subscription = %+v", s)
	}
	want := []PMSensor{
		{Name: "pms-1", Site: "canal-east-4", Port: "/dev/ttyAMA0", Model: "pms5003", Mode: "active", Interval: 10 * time.Second,
			Values: "atmospheric", Stale: 30 * time.Second, DutyCycle: DutyCycle{Work: time.Minute, Sleep: 4 * time.Minute}, Warmup: 30 * time.Second},
		{Name: "sds-1", Site: "canal-lock-2", Port: "/dev/serial/by-id/usb-1a86_USB_Serial-if00-port0", Model: "sds011", Mode: "query",
			Interval: 30 * time.Second, Stale: 2 * time.Minute, Warmup: 30 * time.Second},
	}
	if !reflect.DeepEqual(cfg.PM, want) {
		t.Errorf("PM =\n%+v\nwant\n%+v", cfg.PM, want)
	}
}
