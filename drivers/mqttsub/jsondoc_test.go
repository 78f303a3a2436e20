package mqttsub

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// jsonDocSeeds are payloads that exercise rawDoc's shortcuts and every reason it gives
// up: duplicate keys, escapes, non-ASCII, nesting, white space, values of every kind,
// and documents encoding/json refuses.
var jsonDocSeeds = []string{
	`{"ts":1764316800000,"pm25":35.2,"pm10":61.5,"no2":40.1}`,
	` {"data":{"pm25":35.2,"pm10":"61","t":-3.5}} `,
	"\t{\n\"data\" : { \"pm25\" : 1 , \"pm10\" : [ 2 ] , \"t\" : null }\r\n}\n",
	`{"data":{"pm25":0,"pm10":1e1,"pm10":2E-3}}`,
	`{"data":{"pm25":1,"pm10":2},"data":{"pm25":3}}`,
	`{"data":{"pm\u0032\u0035":1,"pm10":2}}`,
	`{"data":{"pm25":"\u0031.5","pm10":"2"}}`,
	`{"dätä":{"pm25":1},"data":{"pm25":1,"pm10":2}}`,
	`{"data":{"pm25":1,"pm10":"２"}}`,
	`{"data":{"pm25":1,"pm10":"2\xff"}}`,
	`{"data":{"x":"}]\"{[","pm25":1,"pm10":2,"t":true}}`,
	`{"data":{"pm25":{"v":1},"pm10":[1,2]}}`,
	`{"data":[1,2]}`,
	`{"data":"pm25"}`,
	`{"data":null}`,
	`null`,
	`[]`,
	`[{"value":1},{"value":2}]`,
	`{"time":"2026-11-28T15:59:58.25+08:00","object":{"sensors":[{"value":553},{"value":62.5}]}}`,
	`{"time":"2026-11-28T15:59:58.25+08:00","object":{"sensors":[{"value":553}]}}`,
	`{"time":"2026-11-28T15:59:58.25+08:00","object":{"sensors":{"0":1}}}`,
	`{"time":"2026-11-28T07:00:00Z","object":{"sensors":[{"value":1601},{"value":50}]}}`,
	`{"time":"2026-11-28T07:00:00\u005a","object":{"sensors":[{"value":1},{"value":5}]}}`,
	`{"ts":"1764316800","data":{"pm25":1,"pm10":2}}`,
	`{"ts":1764316800.5,"data":{"pm25":1,"pm10":"2","t":null}}`,
	`{"ts":-1,"data":{"pm25":1,"pm10":2}}`,
	`{"t":"2026-11-28 15:04:05","v":[12.5]}`,
	`{"t":"2026-11-28 15:04:05","v":[]}`,
	`{"t":"2026-11-28 15:04:05","v":[[1]]}`,
	`{"v":[1],"t":false}`,
	`{"data":{"pm25":1,"pm10":2}} {}`,
	`{"data":{"pm25":1,"pm10":2},}`,
	`{"data":{"pm25":01,"pm10":2}}`,
	`{"data":{"pm25":1,"pm10":2}`,
	``,
	`   `,
	`{"data":{"pm25":1e999,"pm10":2}}`,
	`{"data":{"pm25":"1e999","pm10":"NaN"}}`,
	`{"data":{"pm25":-0,"pm10":2.50}}`,
	strings.Repeat("[", 200) + strings.Repeat("]", 200),
}

// jsonDocSubs are the subscriptions of the differential tests: every JSON one of the
// decode tests, plus paths through arrays and into scalars.
func jsonDocSubs() []Subscription {
	return []Subscription{
		esp32,
		withTime(esp32, "ts", TimeUnix, nil),
		withTime(esp32, "ts", TimeUnixMs, nil),
		chirpstack,
		{Topic: "q/+/+", Template: "q/{device}/{quantity}", Site: "s", Fields: []Field{{Path: "v[0]"}}, Time: TimeSpec{Path: "t", Format: "2006-01-02 15:04:05"}},
		{Topic: "env/+/+/air", Template: "env/{site}/{device}/air", Fields: []Field{{Path: "pm25", Quantity: "pm25"}, {Path: "pm10", Quantity: "pm10"}, {Path: "no2", Quantity: "no2"}}, Time: TimeSpec{Path: "ts", Format: TimeUnixMs}},
		{Topic: "x", Site: "s", Device: "d", Fields: []Field{{Path: "[1].value", Quantity: "ph"}, {Path: "data.pm25[0]", Quantity: "pm25", Optional: true}}},
		{Topic: "x", Site: "s", Device: "d", Fields: []Field{{Path: "data.pm10.v", Quantity: "pm10", Optional: true}, {Path: "data.x", Quantity: "pm25", Optional: true}}},
	}
}

var jsonDocTopics = map[string]string{
	"env/+/+/air":                     "env/canal-east/esp-7/air",
	"application/+/device/+/event/up": "application/7/device/a840411d/event/up",
	"q/+/+":                           "q/d/pm25",
	"x":                               "x",
}

// checkJSONDoc compares the fast and the slow way on one payload: the readings, or the
// error's kind and text, must be the same, and each path rawDoc answers must give what
// treeDoc gives.
func checkJSONDoc(t *testing.T, sub Subscription, payload []byte) {
	t.Helper()
	p, errs := compile(sub, "", DefaultDeviceExpiry)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	ids, err := p.match(jsonDocTopics[sub.Topic])
	if err != nil {
		t.Fatal(err)
	}
	fast, ferr := p.decodeJSON(ids, payload, arrival)
	slow, serr := p.decodeJSONTree(ids, payload, arrival)
	if errors.Is(ferr, errSlow) {
		t.Fatalf("payload %q: errSlow escaped decodeJSON", payload)
	}
	if (ferr == nil) != (serr == nil) || ferr != nil && ferr.Error() != serr.Error() ||
		kindOf(ferr) != kindOf(serr) || !sameReadings(fast, slow) {
		t.Fatalf("payload %q, fields of %s:\nfast: %v, %v\nslow: %v, %v", payload, sub.Topic, fast, ferr, slow, serr)
	}
	raw, ok := newRawDoc(payload)
	if !ok {
		return
	}
	tree, err := decodeTree(payload)
	if err != nil {
		t.Fatalf("payload %q: json.Valid accepts it, encoding/json does not: %v", payload, err)
	}
	paths := []string{"data", "data.pm25", "data.pm10", "data.t", "ts", "v[0]", "[1]", "[1].value", "object.sensors[1].value", "time", "data.pm10[0]"}
	for _, ps := range paths {
		steps, err := parsePath(ps)
		if err != nil {
			t.Fatal(err)
		}
		rv, rfound, rerr := raw.lookup(steps)
		if rerr == errSlow {
			continue
		}
		tv, tfound, terr := treeDoc{tree}.lookup(steps)
		if rerr != nil || terr != nil || rfound != tfound || !reflect.DeepEqual(rv, tv) {
			t.Fatalf("payload %q, path %s: rawDoc gives %#v, %v, %v; treeDoc %#v, %v, %v", payload, ps, rv, rfound, rerr, tv, tfound, terr)
		}
	}
}

// decodeTree decodes a payload as decodeJSONTree does.
func decodeTree(payload []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var doc any
	err := dec.Decode(&doc)
	return doc, err
}

// TestJSONDocDifferential: reading a payload in place gives exactly what decoding it
// with encoding/json gives, readings or error, for the seeds of both fuzz tests.
func TestJSONDocDifferential(t *testing.T) {
	payloads := jsonDocSeeds
	for _, name := range []string{"chirpstack-v4-up.json", "esp32-air.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "payloads", name))
		if err != nil {
			t.Fatal(err)
		}
		payloads = append(payloads, string(b))
	}
	for _, sub := range jsonDocSubs() {
		for _, pl := range payloads {
			checkJSONDoc(t, sub, []byte(pl))
		}
	}
}

// FuzzJSONDoc compares the fast and the slow way of reading JSON payloads.
func FuzzJSONDoc(f *testing.F) {
	for _, s := range jsonDocSeeds {
		for i := range jsonDocSubs() {
			f.Add(uint8(i), []byte(s))
		}
	}
	subs := jsonDocSubs()
	f.Fuzz(func(t *testing.T, which uint8, payload []byte) {
		checkJSONDoc(t, subs[int(which)%len(subs)], payload)
	})
}

// The payloads devices send are read in place, not given up to encoding/json.
func TestJSONDocFastPath(t *testing.T) {
	chirp, err := os.ReadFile(filepath.Join("testdata", "payloads", "chirpstack-v4-up.json"))
	if err != nil {
		t.Fatal(err)
	}
	subs := jsonDocSubs()
	for _, tc := range []struct {
		sub     Subscription
		payload string
	}{
		{subs[5], `{"ts":1764316800000,"pm25":35.2,"pm10":61.5,"no2":40.1}`},
		{esp32, ` {"data":{"pm25":35.2,"pm10":"61","t":-3.5}} `},
		{chirpstack, string(chirp)},
	} {
		p, _ := compile(tc.sub, "", DefaultDeviceExpiry)
		ids, err := p.match(jsonDocTopics[tc.sub.Topic])
		if err != nil {
			t.Fatal(err)
		}
		raw, ok := newRawDoc([]byte(tc.payload))
		if !ok {
			t.Fatalf("payload %q is not valid JSON", tc.payload)
		}
		if rs, err := p.readJSON(ids, raw, arrival); err != nil || len(rs) == 0 {
			t.Errorf("payload %q read in place: %v, %v; want readings", tc.payload, rs, err)
		}
	}
}

// BenchmarkDecodeJSON decodes the payload of bench/ BenchmarkMQTT the way Run does,
// in place (fast) and with encoding/json (tree).
func BenchmarkDecodeJSON(b *testing.B) {
	sub := jsonDocSubs()[5]
	p, _ := compile(sub, "", DefaultDeviceExpiry)
	payload := []byte(`{"ts":1709251200000,"pm25":79.1,"pm10":147.7,"no2":286.3}`)
	topic := "env/site-1/dev-1/air"
	for _, way := range []struct {
		name   string
		decode func(topicIDs, []byte, time.Time) ([]reading.Reading, error)
	}{{"fast", p.decodeJSON}, {"tree", p.decodeJSONTree}} {
		b.Run(way.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ids, err := p.match(topic)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := way.decode(ids, payload, arrival); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
