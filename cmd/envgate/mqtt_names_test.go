package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/envgate/envgate/config"
	"github.com/envgate/envgate/drivers/mqttsub"
	"github.com/envgate/envgate/internal/testsvc"
)

// scrapeBody returns the /metrics page of the gateway at addr, or "".
func scrapeBody(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// publishWindowed publishes n QoS 1 messages, message(i) each, with up to 500 awaiting
// their PUBACK.
func (p *publisher) publishWindowed(n int, message func(i int) (topic, payload string)) {
	p.t.Helper()
	var window [500]mqtt.Token
	wait := func(i int) {
		if tok := window[i%len(window)]; tok != nil && (!tok.WaitTimeout(15*time.Second) || tok.Error() != nil) {
			p.t.Fatalf("publish: %v", tok.Error())
		}
	}
	for i := range n {
		wait(i)
		topic, payload := message(i)
		window[i%len(window)] = p.c.Publish(topic, 1, false, payload)
	}
	for i := n; i < n+len(window); i++ {
		wait(i)
	}
}

// TestMQTTHostilePublisherEndToEnd (issue 10) runs the real binary against a real
// Mosquitto with a publisher that invents 20 000 device names and spoofs the gateway's
// health (by topic and by line protocol). /metrics stays bounded: the subscription
// counts max_devices devices, the rest are dead-lettered and counted by kind, the
// gateway's health series keep the gateway's values, and the legitimate device keeps
// flowing. On the code before the fix every name became two series (and the scrape
// grew past 40 000 of them) and the spoof set the gateway's buffer_dropped.
func TestMQTTHostilePublisherEndToEnd(t *testing.T) {
	const hostile, maxDevices, every = 20000, 100, 100
	broker := testsvc.StartMosquitto(t, testsvc.MosquittoOptions{MaxQueued: 2 * hostile})
	bin := buildBinary(t)
	dir := t.TempDir()
	deadLetter := filepath.Join(dir, "dead.log")
	listen := fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(t))
	cfg := fmt.Sprintf(`gateway:
  id: box-hostile
  site: canal-east
  state_dir: %s
  listen: %s
  shutdown_timeout: 6s
  health_interval: 1s
mqtt:
  - name: lora
    broker: %s
    client_id: envgateTestHostile
    dead_letter: %s
    subscriptions:
      - topic: num/+/+
        template: num/{device}/{quantity}
        format: number
        max_devices: %d
      - topic: lp/#
        format: lineprotocol
        devices: [water-*]
`, filepath.Join(dir, "state"), listen, broker.URL, deadLetter, maxDevices)
	cfgPath := filepath.Join(dir, "box.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &gatewayProc{t: t, bin: bin, cfg: cfgPath}
	defer func() {
		if t.Failed() {
			t.Logf("envgate logs:\n%s", g.logs.String())
		}
	}()
	g.start()
	stopped := false
	defer func() {
		if !stopped {
			g.stop(syscall.SIGTERM)
		}
	}()
	pub := newPublisher(t, broker.URL)

	// The legitimate device, published until the subscription is in place.
	legit := func(v float64) string {
		return fmt.Sprintf(`envgate_reading_value{device="noise-9",quantity="la",site="canal-east",unit="dB(A)"} %g`, v)
	}
	eventually(t, 30*time.Second, "the legitimate device's first reading", func() bool {
		pub.publish("num/noise-9/la", "50")
		return strings.Contains(scrapeBody(t, listen), legit(50)+"\n")
	})

	spoofs := 0
	pub.publishWindowed(hostile, func(i int) (string, string) {
		switch i % every {
		case 1:
			spoofs++
			return "num/gateway/buffer_dropped", "12345"
		case 2:
			spoofs++
			return "lp/x", "health,site=canal-east,device=gateway buffer_dropped=12345"
		case 3:
			spoofs++
			return "num/noise-9/uptime", "12345"
		}
		return fmt.Sprintf("num/x%d/la", i), "50"
	})
	fakes := hostile - spoofs
	pub.publish("num/noise-9/la", "51.5")
	pub.publish("lp/x", "wq,site=lock-2,device=evil-1 ph=7") // not in devices
	pub.publish("lp/x", "wq,site=lock-2,device=water-3 ph=7.25")

	var body string
	eventually(t, 60*time.Second, "every message handled", func() bool {
		body = scrapeBody(t, listen)
		v, _ := metricValue(body, `envgate_mqtt_messages_total{source="lora"}`)
		return v >= float64(hostile+4)
	})
	eventually(t, 10*time.Second, "the last readings", func() bool {
		body = scrapeBody(t, listen)
		return strings.Contains(body, legit(51.5)+"\n") &&
			strings.Contains(body, `envgate_reading_value{device="water-3",quantity="ph",site="lock-2",unit="pH"} 7.25`)
	})
	for series, want := range map[string]float64{
		`envgate_mqtt_malformed_total{kind="device_limit",source="lora"}`: float64(fakes - (maxDevices - 1)),
		`envgate_mqtt_malformed_total{kind="reserved",source="lora"}`:     float64(spoofs),
		`envgate_mqtt_malformed_total{kind="unlisted",source="lora"}`:     1,
		`envgate_mqtt_dead_lettered_total{source="lora"}`:                 float64(fakes - (maxDevices - 1) + spoofs + 1),
		// noise-9 and 99 invented devices on num/+/+, water-3 on lp/#
		`envgate_mqtt_devices{source="lora"}`: maxDevices + 1,
	} {
		if got, ok := metricValue(body, series); !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	values := strings.Count(body, "\nenvgate_reading_value{")
	if values > maxDevices+1+7 { // + the gateway's 7 health quantities
		t.Errorf("%d envgate_reading_value series, want at most %d", values, maxDevices+8)
	}
	if n, _ := metricValue(body, "envgate_reading_series"); int(n) != values {
		t.Errorf("envgate_reading_series = %v, want %d (the value series)", n, values)
	}
	if strings.Contains(body, " 12345\n") {
		t.Errorf("a spoofed value shows in /metrics:\n%s", grepLines(body, " 12345"))
	}
	if v, ok := metricValue(body, `envgate_reading_value{device="gateway",quantity="buffer_dropped",site="canal-east",unit="1"}`); !ok || v != 0 {
		t.Errorf("the gateway's buffer_dropped = %v (present %v), want its own 0", v, ok)
	}
	g.stop(syscall.SIGTERM)
	stopped = true
	data, err := os.ReadFile(deadLetter)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"reason=device_limit:", "topic=num/gateway/buffer_dropped reason=reserved:", "topic=lp/x reason=unlisted:"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("dead-letter file lacks %q", want)
		}
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestCheckRefusesWhatMQTTRunRefuses (issue 10): envgate check validated the MQTT rules
// of the config package while envgate run applied those of drivers/mqttsub, two copies
// that disagreed: a shared subscription ($share/...) passed check and stopped run at
// start, and the driver took an explicit qos or max_devices 0 for its default. Now
// the rules of one source exist once, in the driver, and check runs them on the very
// configuration run builds. For each bad source below, check reports one problem at
// its key and line, run refuses to start with it, and the driver's New, given the
// good file's source changed the same way, refuses it with the same words at the same
// key.
func TestCheckRefusesWhatMQTTRunRefuses(t *testing.T) {
	dir := t.TempDir()
	const goodSub = "{topic: env/+, template: \"env/{device}\", format: number, quantity: la}"
	source := func(extra, sub string) string {
		return fmt.Sprintf("gateway: {id: box-1, site: canal, state_dir: %s}\nmqtt:\n"+
			"  - {name: lora, broker: \"tcp://127.0.0.1:1\", client_id: envgateBox1%s, subscriptions: [%s]}\n",
			filepath.Join(dir, "state"), extra, sub)
	}
	good, err := config.Parse([]byte(source("", goodSub)), filepath.Join(dir, "good.yaml"))
	if err != nil {
		t.Fatalf("good config: %v", err)
	}
	type src = config.MQTT
	type sub = config.Subscription
	for _, tc := range []struct {
		extra, sub string     // YAML: keys added to the source, the subscription
		change     func(*src) // the same change to the good source, for the driver
		key, msg   string     // the problem: its key below mqtt[0], what is wrong
	}{
		{sub: "{topic: $share/g/env/+, template: \"$share/g/env/{device}\", format: number, quantity: la}",
			change: func(m *src) {
				m.Subscriptions[0].Topic, m.Subscriptions[0].Template = "$share/g/env/+", "$share/g/env/{device}"
			},
			key: "subscriptions[0].topic", msg: `"$share/g/env/+": shared subscriptions are not supported`},
		{sub: "{topic: env/+, template: \"env/{device}\", format: number, quantity: la, sites: [\"[\"]}",
			change: func(m *src) { m.Subscriptions[0].Sites = []string{"["} },
			key:    "subscriptions[0].sites[0]", msg: `"[" is not a pattern: * matches any characters, ? one, [a-z] one of a set (Go path.Match)`},
		{sub: "{topic: env/+, template: \"env/{device}\", format: number, quantity: la, max_devices: 100001}",
			change: func(m *src) { m.Subscriptions[0].MaxDevices = 100001 },
			key:    "subscriptions[0].max_devices", msg: "must be 1 to 100000"},
		{sub: "{topic: env/x, device: gateway, format: number, quantity: la}",
			change: func(m *src) {
				m.Subscriptions[0] = sub{Topic: "env/x", Site: "canal", Device: "gateway", Format: "number", Quantity: "la", QoS: 1, MaxDevices: 1000}
			},
			key: "subscriptions[0].device", msg: `"gateway" is reserved for the gateway's own health readings`},
		{sub: "{topic: env/+, template: \"env/{device}\", format: number, quantity: buffer_dropped}",
			change: func(m *src) { m.Subscriptions[0].Quantity = "buffer_dropped" },
			key:    "subscriptions[0].quantity", msg: `"buffer_dropped" is one of the gateway's own health quantities, not a measurement`},
		{sub: "{topic: env/+, template: \"env/{device}\", format: number, quantity: pm2.5}",
			change: func(m *src) { m.Subscriptions[0].Quantity = "pm2.5" },
			key:    "subscriptions[0].quantity", msg: `unknown quantity "pm2.5" (did you mean "pm25"?)`},
		{sub: "{topic: env/+/#, template: \"env/{device}\", format: number, quantity: la}",
			change: func(m *src) { m.Subscriptions[0].Topic = "env/+/#" },
			key:    "subscriptions[0].template", msg: "level 3 of the topic is #, which matches any number of levels, so the template needs # there too"},
		{sub: "{topic: env/+, template: \"env/{device}\", format: csv, quantity: la}",
			change: func(m *src) { m.Subscriptions[0].Format = "csv" },
			key:    "subscriptions[0].format", msg: "must be one of json, number, lineprotocol"},
		{sub: "{topic: env/+, template: \"env/{device}\", format: number, quantity: la, qos: 2}",
			change: func(m *src) { m.Subscriptions[0].QoS = 2 },
			key:    "subscriptions[0].qos", msg: "must be 1: QoS 1 keeps messages at the broker until the gateway has them on disk; QoS 0 could lose them"},
		{sub: "{topic: env/+, template: \"env/{device}\", fields: [{path: \"a..b\", quantity: la}]}",
			change: func(m *src) {
				m.Subscriptions[0] = sub{Topic: "env/+", Template: "env/{device}", Site: "canal", Format: "json", QoS: 1, MaxDevices: 1000,
					Fields: []config.Field{{Path: "a..b", Quantity: "la", Scale: 1}}}
			},
			key: "subscriptions[0].fields[0].path", msg: "must be keys separated by dots, with [i] for array elements, such as data.pm25 or sensors[0].value"},
		{sub: "{topic: env/+, template: \"env/{device}\", fields: [{path: v, quantity: la}], time: {path: t, format: \"15:04:05\"}}",
			change: func(m *src) {
				m.Subscriptions[0] = sub{Topic: "env/+", Template: "env/{device}", Site: "canal", Format: "json", QoS: 1, MaxDevices: 1000,
					Fields: []config.Field{{Path: "v", Quantity: "la", Scale: 1}}, Time: config.TimeSpec{Path: "t", Format: "15:04:05", Location: "Asia/Shanghai"}}
			},
			key: "subscriptions[0].time.format", msg: `must be unix, unix_ms, unix_us, unix_ns, rfc3339, or a Go layout containing the year 2006, such as "2006-01-02 15:04:05"`},
		{extra: ", keep_alive: 90500ms", sub: goodSub,
			change: func(m *src) { m.KeepAlive = 90500 * time.Millisecond },
			key:    "keep_alive", msg: "must be whole seconds from 1s to 18h12m15s (MQTT sends it as a 16-bit number of seconds)"},
		{extra: ", tls: {ca_file: ca.pem}", sub: goodSub,
			change: func(m *src) { m.TLS = &config.MQTTTLS{CAFile: "ca.pem"} },
			key:    "tls", msg: "needs an ssl:// or mqtts:// broker; with tcp:// nothing is encrypted"},
		{extra: ", password: pw", sub: goodSub,
			change: func(m *src) { m.Password = "pw" },
			key:    "password", msg: "needs username: MQTT sends a password only with a user name (MQTT 3.1.1 §3.1.2.9)"},
	} {
		want := fmt.Sprintf("mqtt[0].%s (line 3): %s", tc.key, tc.msg)
		path := filepath.Join(dir, "box.yaml")
		if err := os.WriteFile(path, []byte(source(tc.extra, tc.sub)), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, _ := cli("check", "-c", path)
		if code != 1 || !strings.Contains(out, path+": "+want+"\n") || strings.Count(out, "\n") != 2 {
			t.Errorf("envgate check with %s%s = %d:\n%swant 1 and the one problem %s", tc.sub, tc.extra, code, out, want)
		}
		if code, _, errOut := cli("run", "-c", path); code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("envgate run with %s%s = %d, stderr:\n%swant 1 and %s", tc.sub, tc.extra, code, errOut, want)
		}

		m := good.MQTT[0]
		m.Subscriptions = slices.Clone(m.Subscriptions)
		tc.change(&m)
		cfg, err := m.Subscriber(good.Gateway.SeriesExpiry)
		if err == nil {
			_, err = mqttsub.New(cfg, nil)
		}
		if got, want := fmt.Sprint(err), tc.key+": "+tc.msg; got != want {
			t.Errorf("mqttsub.New with %s%s = %s\nwant %s", tc.sub, tc.extra, got, want)
		}
	}
}
