package mqttsub

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/clock"
)

var arrival = time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)

// The subscriptions of the decode tests, by the kind of device they stand for.
var (
	esp32 = Subscription{
		Topic:    "env/+/+/air",
		Template: "env/{site}/{device}/air",
		Fields: []Field{
			{Path: "data.pm25", Quantity: "pm25"},
			{Path: "data.pm10", Quantity: "pm10"},
			{Path: "data.t", Quantity: "temperature", Optional: true},
		},
	}
	chirpstack = Subscription{
		Topic:    "application/+/device/+/event/up",
		Template: "application/+/device/{device}/event/up",
		Site:     "canal-east",
		Fields: []Field{
			{Path: "object.sensors[0].value", Quantity: "la", Scale: 0.1},
			{Path: "object.sensors[1].value", Quantity: "humidity", Offset: -2},
		},
		Time: TimeSpec{Path: "time", Format: TimeRFC3339},
	}
	loraNumber = Subscription{
		Topic:    "lora/+/+",
		Template: "lora/{device}/{quantity}",
		Site:     "park-2",
		Format:   FormatNumber,
	}
	waterLP = Subscription{
		Topic:    "water/+/#",
		Template: "water/{site}/#",
		Device:   "logger-1",
		Format:   FormatLineProtocol,
	}
)

func withTime(sub Subscription, path, format string, loc *time.Location) Subscription {
	sub.Time = TimeSpec{Path: path, Format: format, Location: loc}
	return sub
}

func rd(t time.Time, site, device, quantity string, v float64) reading.Reading {
	return reading.New(t, site, device, quantity, v)
}

func sameReadings(a, b []reading.Reading) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if !x.Time.Equal(y.Time) || x.Time.Location() != time.UTC {
			return false
		}
		x.Time, y.Time = time.Time{}, time.Time{}
		if x != y {
			return false
		}
	}
	return true
}

func TestDecode(t *testing.T) {
	ts := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v.UTC()
	}
	utc8 := time.FixedZone("UTC+8", 8*3600)
	tests := []struct {
		name    string
		sub     Subscription
		topic   string
		payload string
		want    []reading.Reading
	}{
		{"json esp32", esp32, "env/canal-east/esp-7/air", `{"data":{"pm25":35.2,"pm10":"61","t":-3.5}}`, []reading.Reading{
			rd(arrival, "canal-east", "esp-7", "pm25", 35.2),
			rd(arrival, "canal-east", "esp-7", "pm10", 61),
			rd(arrival, "canal-east", "esp-7", "temperature", -3.5),
		}},
		{"json optional absent", esp32, "env/运河东/esp-7/air", `{"data":{"pm25":0,"pm10":1e1}}`, []reading.Reading{
			rd(arrival, "运河东", "esp-7", "pm25", 0),
			rd(arrival, "运河东", "esp-7", "pm10", 10),
		}},
		{"json optional null", esp32, "env/s/d/air", `{"data":{"pm25":" 1.5 ","pm10":2,"t":null}}`, []reading.Reading{
			rd(arrival, "s", "d", "pm25", 1.5),
			rd(arrival, "s", "d", "pm10", 2),
		}},
		{"json arrays scale offset rfc3339", chirpstack, "application/7/device/a840411d/event/up",
			`{"time":"2026-11-28T15:59:58.25+08:00","object":{"sensors":[{"value":553},{"value":62.5}]}}`, []reading.Reading{
				rd(ts("2026-11-28T07:59:58.25Z"), "canal-east", "a840411d", "la", 55.300000000000004),
				rd(ts("2026-11-28T07:59:58.25Z"), "canal-east", "a840411d", "humidity", 60.5),
			}},
		{"json root array", Subscription{Topic: "x", Site: "s", Device: "d", Fields: []Field{{Path: "[1][0]", Quantity: "ph"}}},
			"x", `[0,[7.25]]`, []reading.Reading{rd(arrival, "s", "d", "ph", 7.25)}},
		{"json quantity from topic", Subscription{Topic: "q/+", Template: "q/{quantity}", Site: "s", Device: "d", Fields: []Field{{Path: "v"}}},
			"q/no2", `{"v":40}`, []reading.Reading{rd(arrival, "s", "d", "no2", 40)}},
		{"template plus and hash", Subscription{Topic: "a/+/+/b/#", Template: "a/+/{device}/b/#", Site: "s", Fields: []Field{{Path: "v", Quantity: "co"}}},
			"a/x/dev/b/c/d/e", `{"v":0.8}`, []reading.Reading{rd(arrival, "s", "dev", "co", 0.8)}},
		{"template hash matches nothing", Subscription{Topic: "a/#", Template: "a/#", Site: "s", Device: "d", Fields: []Field{{Path: "v", Quantity: "co"}}},
			"a", `{"v":1}`, []reading.Reading{rd(arrival, "s", "d", "co", 1)}},
		{"time unix", withTime(esp32, "ts", TimeUnix, nil), "env/s/d/air", `{"ts":1764316800,"data":{"pm25":1,"pm10":2}}`, []reading.Reading{
			rd(ts("2025-11-28T08:00:00Z"), "s", "d", "pm25", 1), rd(ts("2025-11-28T08:00:00Z"), "s", "d", "pm10", 2),
		}},
		{"time unix fractional exact", withTime(esp32, "ts", TimeUnix, nil), "env/s/d/air", `{"ts":1764316800.123456789,"data":{"pm25":1,"pm10":2}}`, []reading.Reading{
			rd(ts("2025-11-28T08:00:00.123456789Z"), "s", "d", "pm25", 1), rd(ts("2025-11-28T08:00:00.123456789Z"), "s", "d", "pm10", 2),
		}},
		{"time unix string", withTime(esp32, "meta.ts", TimeUnix, nil), "env/s/d/air", `{"meta":{"ts":"1764316800.5"},"data":{"pm25":1,"pm10":2}}`, []reading.Reading{
			rd(ts("2025-11-28T08:00:00.5Z"), "s", "d", "pm25", 1), rd(ts("2025-11-28T08:00:00.5Z"), "s", "d", "pm10", 2),
		}},
		{"time unix exponent", withTime(esp32, "ts", TimeUnix, nil), "env/s/d/air", `{"ts":1.7643168e9,"data":{"pm25":1,"pm10":2}}`, []reading.Reading{
			rd(ts("2025-11-28T08:00:00Z"), "s", "d", "pm25", 1), rd(ts("2025-11-28T08:00:00Z"), "s", "d", "pm10", 2),
		}},
		{"time unix_ms", withTime(esp32, "ts", TimeUnixMs, nil), "env/s/d/air", `{"ts":1764316800123,"data":{"pm25":1,"pm10":2}}`, []reading.Reading{
			rd(ts("2025-11-28T08:00:00.123Z"), "s", "d", "pm25", 1), rd(ts("2025-11-28T08:00:00.123Z"), "s", "d", "pm10", 2),
		}},
		{"time unix_us", withTime(esp32, "ts", TimeUnixUs, nil), "env/s/d/air", `{"ts":1764316800123456,"data":{"pm25":1,"pm10":2}}`, []reading.Reading{
			rd(ts("2025-11-28T08:00:00.123456Z"), "s", "d", "pm25", 1), rd(ts("2025-11-28T08:00:00.123456Z"), "s", "d", "pm10", 2),
		}},
		{"time unix_ns", withTime(esp32, "ts", TimeUnixNs, nil), "env/s/d/air", `{"ts":1764316800123456789,"data":{"pm25":1,"pm10":2}}`, []reading.Reading{
			rd(ts("2025-11-28T08:00:00.123456789Z"), "s", "d", "pm25", 1), rd(ts("2025-11-28T08:00:00.123456789Z"), "s", "d", "pm10", 2),
		}},
		{"time rfc3339 Z", withTime(esp32, "ts", TimeRFC3339, nil), "env/s/d/air", `{"ts":"2026-11-28T07:00:00Z","data":{"pm25":1,"pm10":2}}`, []reading.Reading{
			rd(ts("2026-11-28T07:00:00Z"), "s", "d", "pm25", 1), rd(ts("2026-11-28T07:00:00Z"), "s", "d", "pm10", 2),
		}},
		{"time layout default Asia/Shanghai", withTime(esp32, "ts", "2006-01-02 15:04:05", nil), "env/s/d/air", `{"ts":"2026-11-28 15:30:00","data":{"pm25":1,"pm10":2}}`, []reading.Reading{
			rd(ts("2026-11-28T07:30:00Z"), "s", "d", "pm25", 1), rd(ts("2026-11-28T07:30:00Z"), "s", "d", "pm10", 2),
		}},
		{"time layout slashes fraction", withTime(esp32, "ts", "2006/01/02 15:04:05.000", utc8), "env/s/d/air", `{"ts":"2026/11/28 00:00:01.500","data":{"pm25":1,"pm10":2}}`, []reading.Reading{
			rd(ts("2026-11-27T16:00:01.5Z"), "s", "d", "pm25", 1), rd(ts("2026-11-27T16:00:01.5Z"), "s", "d", "pm10", 2),
		}},
		{"time layout in UTC", withTime(esp32, "ts", "20060102150405", time.UTC), "env/s/d/air", `{"ts":"20261128073000","data":{"pm25":1,"pm10":2}}`, []reading.Reading{
			rd(ts("2026-11-28T07:30:00Z"), "s", "d", "pm25", 1), rd(ts("2026-11-28T07:30:00Z"), "s", "d", "pm10", 2),
		}},
		{"time layout with zone", withTime(esp32, "ts", "2006-01-02 15:04:05 -0700", nil), "env/s/d/air", `{"ts":"2026-11-28 07:30:00 +0000","data":{"pm25":1,"pm10":2}}`, []reading.Reading{
			rd(ts("2026-11-28T07:30:00Z"), "s", "d", "pm25", 1), rd(ts("2026-11-28T07:30:00Z"), "s", "d", "pm10", 2),
		}},
		{"number", loraNumber, "lora/node-3/wind_speed", " 3.75\r\n", []reading.Reading{rd(arrival, "park-2", "node-3", "wind_speed", 3.75)}},
		{"number fixed quantity", Subscription{Topic: "meter/la", Site: "s", Device: "m", Format: FormatNumber, Quantity: "la"}, "meter/la", "-0", []reading.Reading{rd(arrival, "s", "m", "la", 0)}},
		{"number exponent", loraNumber, "lora/n/conductivity", "1.2E3", []reading.Reading{rd(arrival, "park-2", "n", "conductivity", 1200)}},
		{"lineprotocol", waterLP, "water/section-9/upload",
			"# logger v2\nwq,device=probe-a ph=7.1,do=8i,tn=2u 1764316800000000000\n\nwq water_temperature=12.5,turbidity=3\r\nwq,site=other-site,x=y codmn=4.5 1764316800500000000\n",
			[]reading.Reading{
				rd(ts("2025-11-28T08:00:00Z"), "section-9", "probe-a", "ph", 7.1),
				rd(ts("2025-11-28T08:00:00Z"), "section-9", "probe-a", "do", 8),
				rd(ts("2025-11-28T08:00:00Z"), "section-9", "probe-a", "tn", 2),
				rd(arrival, "section-9", "logger-1", "water_temperature", 12.5),
				rd(arrival, "section-9", "logger-1", "turbidity", 3),
				rd(ts("2025-11-28T08:00:00.5Z"), "other-site", "logger-1", "codmn", 4.5),
			}},
		{"lineprotocol ms and tags only", withTime(Subscription{Topic: "lp", Format: FormatLineProtocol}, "", TimeUnixMs, nil), "lp",
			`m,site=s1,device=d1 la=55.5 1764316800123`, []reading.Reading{rd(ts("2025-11-28T08:00:00.123Z"), "s1", "d1", "la", 55.5)}},
	}
	for _, tt := range tests {
		got, err := Decode(tt.sub, tt.topic, []byte(tt.payload), arrival)
		if err != nil || !sameReadings(got, tt.want) {
			t.Errorf("%s: Decode(%q, %q) =\n%v, %v\nwant\n%v", tt.name, tt.topic, tt.payload, got, err, tt.want)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	lpNoSite := Subscription{Topic: "lp", Format: FormatLineProtocol}
	tests := []struct {
		sub     Subscription
		topic   string
		payload string
		kind    string
		detail  string
	}{
		// json
		{esp32, "env/s/d/air", `{"data":`, KindJSON, "not JSON"},
		{esp32, "env/s/d/air", `{"data":{"pm25":1,"pm10":2}} {}`, KindJSON, "after the JSON value"},
		{esp32, "env/s/d/air", `{"data":{"pm25":1}}`, KindJSON, `field "data.pm10": missing`},
		{esp32, "env/s/d/air", `{"data":{"pm25":true,"pm10":2}}`, KindJSON, "is a boolean, not a number"},
		{esp32, "env/s/d/air", `{"data":{"pm25":"n/a","pm10":2}}`, KindJSON, `string "n/a" is not a number`},
		{esp32, "env/s/d/air", `{"data":{"pm25":"NaN","pm10":2}}`, KindJSON, "not a number"},
		{esp32, "env/s/d/air", `{"data":{"pm25":{"v":1},"pm10":2}}`, KindJSON, "is an object, not a number"},
		{esp32, "env/s/d/air", `{"data":[1,2]}`, KindJSON, `"data" is an array, not an object`},
		{esp32, "env/s/d/air", `{"data":7}`, KindJSON, `"data" is a number`},
		{chirpstack, "application/1/device/d/event/up", `{"time":"2026-11-28T07:00:00Z","object":{"sensors":{"0":1}}}`, KindJSON, "is an object, not an array"},
		{Subscription{Topic: "x", Site: "s", Device: "d", Fields: []Field{{Path: "a", Quantity: "co", Optional: true}}}, "x", `{}`, KindJSON, "none of the 1 optional fields"},
		{esp32, "env/s/d/air", "", KindJSON, "not JSON"},
		// number
		{loraNumber, "lora/n/la", "abc", KindNumber, `"abc" is not a number`},
		{loraNumber, "lora/n/la", "", KindNumber, "not a number"},
		{loraNumber, "lora/n/la", "NaN", KindNumber, "not a number"},
		{loraNumber, "lora/n/la", "Inf", KindNumber, "not a number"},
		{loraNumber, "lora/n/la", "0x10", KindNumber, "not a number"},
		{loraNumber, "lora/n/la", "1,5", KindNumber, "not a number"},
		{loraNumber, "lora/n/la", "+5", KindNumber, "not a number"},
		{loraNumber, "lora/n/la", "5 6", KindNumber, "not a number"},
		// line protocol
		{waterLP, "water/s", "wq ph=", KindLineProtocol, "entry 1"},
		{waterLP, "water/s", "wq ph=7\nwq ph=7 12a", KindLineProtocol, "entry 2"},
		{waterLP, "water/s", `wq ph="7"`, KindLineProtocol, `field "ph" is a string, not a number`},
		{waterLP, "water/s", `wq ph=t`, KindLineProtocol, `field "ph" is a bool`},
		{waterLP, "water/s", "# only a comment\n\n", KindLineProtocol, "no entries"},
		{waterLP, "water/s", `wq,device=a\ b ph=7`, KindLineProtocol, `device "a b"`},
		{lpNoSite, "lp", `wq,device=d ph=7`, KindLineProtocol, `site ""`},
		{lpNoSite, "lp", `wq,site=s ph=7`, KindLineProtocol, `device ""`},
		{waterLP, "water/s", `wq ph=99999999999999999999i`, KindRange, "out of range"},
		// topic
		{esp32, "env/s/d/water", `{}`, KindTopic, `level 4 is "water", want "air"`},
		{esp32, "env/s/d", `{}`, KindTopic, "fewer levels"},
		{esp32, "env/s/d/air/x", `{}`, KindTopic, "more levels"},
		{esp32, "env/a b/d/air", `{}`, KindTopic, `site "a b"`},
		{esp32, "env/s//air", `{}`, KindTopic, `device "": must not be empty`},
		{esp32, "env/s/" + strings.Repeat("x", 65) + "/air", `{}`, KindTopic, "longer than 64"},
		// quantity
		{loraNumber, "lora/n/pm2.5", "1", KindQuantity, `"pm2.5" is not a catalog quantity`},
		{waterLP, "water/s", "wq ph=7,tss=3", KindQuantity, `field "tss" is not a catalog quantity`},
		// range
		{esp32, "env/s/d/air", `{"data":{"pm25":-1,"pm10":2}}`, KindRange, "pm25: value -1 outside the plausible range 0..2000 ug/m3"},
		{esp32, "env/s/d/air", `{"data":{"pm25":1,"pm10":2,"t":71}}`, KindRange, "temperature: value 71"},
		{esp32, "env/s/d/air", `{"data":{"pm25":1e400,"pm10":2}}`, KindRange, "out of range"},
		{loraNumber, "lora/n/humidity", "100.01", KindRange, "humidity"},
		{loraNumber, "lora/n/la", "1e999", KindRange, "out of range"},
		{chirpstack, "application/1/device/d/event/up", `{"time":"2026-11-28T07:00:00Z","object":{"sensors":[{"value":1601},{"value":50}]}}`, KindRange, "la: value 160.1"},
		{waterLP, "water/s", "wq ph=14.5", KindRange, "entry 1: ph: value 14.5"},
		{waterLP, "water/s", "wq ph=-1i", KindRange, "ph: value -1"},
		// time
		{withTime(esp32, "ts", TimeUnix, nil), "env/s/d/air", `{"data":{"pm25":1,"pm10":2}}`, KindTime, `"ts": missing`},
		{withTime(esp32, "ts", TimeUnix, nil), "env/s/d/air", `{"ts":true,"data":{"pm25":1,"pm10":2}}`, KindTime, "is a boolean, not a unix timestamp"},
		{withTime(esp32, "ts", TimeUnix, nil), "env/s/d/air", `{"ts":"yesterday","data":{"pm25":1,"pm10":2}}`, KindTime, "not a number"},
		{withTime(esp32, "ts", TimeUnix, nil), "env/s/d/air", `{"ts":4102444800,"data":{"pm25":1,"pm10":2}}`, KindTime, "2100-01-01T00:00:00Z is more than 24h0m0s after arrival"},
		{withTime(esp32, "ts", TimeUnix, nil), "env/s/d/air", `{"ts":1764316800123,"data":{"pm25":1,"pm10":2}}`, KindTime, "1764316800123: out of range"},
		{withTime(esp32, "ts", TimeUnix, nil), "env/s/d/air", `{"ts":99999999999999999999,"data":{"pm25":1,"pm10":2}}`, KindTime, "out of range"},
		{withTime(esp32, "ts", TimeUnixMs, nil), "env/s/d/air", `{"ts":86400000,"data":{"pm25":1,"pm10":2}}`, KindTime, "before 2000-01-01"},
		{withTime(esp32, "ts", TimeUnix, nil), "env/s/d/air", `{"ts":-1,"data":{"pm25":1,"pm10":2}}`, KindTime, "before 2000-01-01"},
		{withTime(esp32, "ts", TimeRFC3339, nil), "env/s/d/air", `{"ts":"2026-11-28 07:00:00","data":{"pm25":1,"pm10":2}}`, KindTime, "cannot parse"},
		{withTime(esp32, "ts", TimeRFC3339, nil), "env/s/d/air", `{"ts":1764316800,"data":{"pm25":1,"pm10":2}}`, KindTime, "is a number, not a rfc3339 time string"},
		{withTime(esp32, "ts", "2006-01-02 15:04:05", nil), "env/s/d/air", `{"ts":"2026-11-28T07:00:00","data":{"pm25":1,"pm10":2}}`, KindTime, "cannot parse"},
		{withTime(esp32, "ts", "2006-01-02 15:04:05", nil), "env/s/d/air", `{"ts":"2026-02-30 07:00:00","data":{"pm25":1,"pm10":2}}`, KindTime, "out of range"},
		{withTime(esp32, "a.ts", TimeUnix, nil), "env/s/d/air", `{"a":[1],"data":{"pm25":1,"pm10":2}}`, KindTime, `"a" is an array`},
		{waterLP, "water/s", "wq ph=7 946684799999999999", KindTime, "before 2000-01-01"},
		{waterLP, "water/s", "wq ph=7 1864316800000000000", KindTime, "after arrival"},
		{withTime(waterLP, "", TimeUnix, nil), "water/s", "wq ph=7 9223372036854775807", KindTime, "out of range"},
		// config
		{Subscription{Topic: "x"}, "x", `{}`, KindConfig, "fields: required for format json: list at least one field"},
	}
	for _, tt := range tests {
		got, err := Decode(tt.sub, tt.topic, []byte(tt.payload), arrival)
		var de *DecodeError
		if !errors.As(err, &de) || de.Kind != tt.kind || !strings.Contains(err.Error(), tt.detail) {
			t.Errorf("Decode(%q, %q) = %v, %v; want %s error containing %q", tt.topic, tt.payload, got, err, tt.kind, tt.detail)
		}
		if got != nil {
			t.Errorf("Decode(%q, %q) returned readings with an error", tt.topic, tt.payload)
		}
	}
}

// A zero arrival time with no timestamp in the payload cannot make a valid reading.
func TestDecodeZeroArrival(t *testing.T) {
	_, err := Decode(loraNumber, "lora/n/la", []byte("50"), time.Time{})
	var de *DecodeError
	if !errors.As(err, &de) || de.Kind != KindTime {
		t.Errorf("Decode(zero arrival) = %v, want a time error", err)
	}
	// With a payload timestamp, the future bound is skipped, not the reading.
	got, err := Decode(withTime(esp32, "ts", TimeUnix, nil), "env/s/d/air", []byte(`{"ts":1764316800,"data":{"pm25":1,"pm10":2}}`), time.Unix(0, 0))
	if err != nil || len(got) != 2 {
		t.Errorf("Decode(1970 arrival, payload time) = %v, %v; want 2 readings", got, err)
	}
	// The same from a box whose clock came up at its image's date (after 2000, before
	// the binary was built): its clock is not plausible either (internal/clock).
	imageDate := clock.BuildTime().AddDate(-1, 0, 0)
	if got, err := Decode(withTime(esp32, "ts", TimeUnix, nil), "env/s/d/air", []byte(`{"ts":1764316800,"data":{"pm25":1,"pm10":2}}`), imageDate); err != nil || len(got) != 2 {
		t.Errorf("Decode(arrival %s, before the build, payload time) = %v, %v; want 2 readings", imageDate, got, err)
	}
}

func TestParsePath(t *testing.T) {
	good := map[string]string{
		"a":                       "a",
		"data.pm25":               "data.pm25",
		"object.sensors[0].value": "object.sensors[0].value",
		"[0]":                     "[0]",
		"[2][10].v":               "[2][10].v",
		"a[1][2]":                 "a[1][2]",
		"温度":                      "温度",
	}
	for in, want := range good {
		steps, err := parsePath(in)
		if err != nil || pathString(steps) != want {
			t.Errorf("parsePath(%q) = %v (%q), %v; want %q", in, steps, pathString(steps), err, want)
		}
	}
	for _, in := range []string{"", ".", "a.", ".a", "a..b", "a.[0]", "a[", "a[]", "a[x]", "a[-1]", "a[+1]", "a[1]b", "a]", "a[0]]", fmt.Sprintf("a[%d]", maxIndex+1)} {
		if steps, err := parsePath(in); err == nil {
			t.Errorf("parsePath(%q) = %v, want error", in, steps)
		}
	}
}

func TestFilterMatches(t *testing.T) {
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/+", "a", false},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"#", "a/b", true},
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/x", true},
		{"a/+/c", "a//c", true},
		{"a/b", "a/b/", false},
		{"a/+", "a/", true},
		{"+", "", true},
		{"a/#", "a/", true},
		{"a/b/c", "a/b", false},
	}
	for _, tt := range tests {
		if got := filterMatches(strings.Split(tt.filter, "/"), tt.topic); got != tt.want {
			t.Errorf("filterMatches(%q, %q) = %v, want %v", tt.filter, tt.topic, got, tt.want)
		}
	}
}

// A field or number payload in another unit is converted once to the catalog unit.
func TestDecodeUnits(t *testing.T) {
	gas := Subscription{Topic: "gas/+", Template: "gas/{device}", Site: "canal",
		Fields: []Field{{Path: "no2", Quantity: "no2", Unit: "ppb"}, {Path: "t", Quantity: "temperature", Unit: "degF"}}}
	rs, err := Decode(gas, "gas/g-1", []byte(`{"no2": 10, "t": 95}`), arrival)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || math.Abs(rs[0].Value-10*46.01/24.4654) > 1e-3 || rs[0].Unit != "ug/m3" || rs[1].Value != 35 || rs[1].Unit != "degC" {
		t.Errorf("readings = %+v, want no2 18.806 ug/m3 and 35 degC", rs)
	}
	tp := Subscription{Topic: "tp", Device: "probe", Site: "lock", Format: FormatNumber, Quantity: "tp", Unit: "ug/L"}
	if rs, err := Decode(tp, "tp", []byte("80"), arrival); err != nil || len(rs) != 1 || math.Abs(rs[0].Value-0.08) > 1e-12 {
		t.Errorf("tp 80 ug/L = %+v, %v; want 0.08 mg/L", rs, err)
	}
	bad := tp
	bad.Unit = "furlongs"
	if _, err := Decode(bad, "tp", []byte("80"), arrival); err == nil || !strings.Contains(err.Error(), `unknown unit "furlongs" for tp`) {
		t.Errorf("unknown unit: %v", err)
	}
}

// filterMatchesRef is the matching rule on split levels, as filterMatches was before it
// walked the topic without splitting it (issue 14).
func filterMatchesRef(filter []string, topic string) bool {
	if strings.HasPrefix(topic, "$") && (filter[0] == "+" || filter[0] == "#") {
		return false
	}
	levels := strings.Split(topic, "/")
	for i, f := range filter {
		if f == "#" {
			return true
		}
		if i >= len(levels) || (f != "+" && f != levels[i]) {
			return false
		}
	}
	return len(levels) == len(filter)
}

func FuzzFilterMatches(f *testing.F) {
	for _, s := range [][2]string{{"a/b", "a/b"}, {"a/+", "a/b/c"}, {"a/#", "a"}, {"+/x", "$SYS/x"}, {"a/+/c", "a//c"}, {"+", ""}, {"a/b", "a/b/"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, filter, topic string) {
		if filter == "" || checkTopicFilter(filter) != "" {
			t.Skip()
		}
		fl := strings.Split(filter, "/")
		if got, want := filterMatches(fl, topic), filterMatchesRef(fl, topic); got != want {
			t.Fatalf("filterMatches(%q, %q) = %v, the split rule says %v", filter, topic, got, want)
		}
	})
}
