package mqttsub

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/envgate/envgate/gateway/reading"
)

// fuzzSubs are the subscriptions FuzzDecode picks from, one per format and feature.
var fuzzSubs = []Subscription{
	withTime(esp32, "ts", TimeUnix, nil),
	chirpstack,
	loraNumber,
	waterLP,
	{Topic: "q/+/+", Template: "q/{device}/{quantity}", Site: "s", Fields: []Field{{Path: "v[0]"}}, Time: TimeSpec{Path: "t", Format: "2006-01-02 15:04:05"}},
	{Topic: "lp", Format: FormatLineProtocol, Time: TimeSpec{Format: TimeUnixMs}},
	esp32,
}

var knownKinds = []string{KindJSON, KindNumber, KindLineProtocol, KindTopic, KindRange, KindQuantity, KindTime}

func FuzzDecode(f *testing.F) {
	seeds := map[string]struct {
		sub   uint8
		topic string
	}{
		"chirpstack-v4-up.json": {1, "application/7/device/a840411d4b1c2f03/event/up"},
		"esp32-air.json":        {6, "env/canal-east/esp-7/air"},
		"water-logger.lp":       {3, "water/section-9/upload"},
		"noise-number.txt":      {2, "lora/nm-0117/la"},
	}
	for name, s := range seeds {
		b, err := os.ReadFile(filepath.Join("testdata", "payloads", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s.sub, s.topic, b)
	}
	f.Add(uint8(0), "env/s/d/air", []byte(`{"ts":1764316800.5,"data":{"pm25":1,"pm10":"2","t":null}}`))
	f.Add(uint8(4), "q/d/pm25", []byte(`{"t":"2026-11-28 15:04:05","v":[12.5]}`))
	f.Add(uint8(5), "lp", []byte("m,site=a,device=b la=50i 1764316800000\nm,site=a,device=b laeq=51.5\n"))
	f.Add(uint8(3), "water/s", []byte("wq ph=7,do=\"x\""))
	f.Add(uint8(2), "lora/n/humidity", []byte("1e999"))

	f.Fuzz(func(t *testing.T, which uint8, topic string, payload []byte) {
		sub := fuzzSubs[int(which)%len(fuzzSubs)]
		got, err := Decode(sub, topic, payload, arrival)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || !slices.Contains(knownKinds, de.Kind) {
				t.Fatalf("Decode(%q, %q) error %v is not a DecodeError of a known kind", topic, payload, err)
			}
			if got != nil {
				t.Fatalf("Decode(%q, %q) = %v with error %v", topic, payload, got, err)
			}
			return
		}
		if len(got) == 0 {
			t.Fatalf("Decode(%q, %q) = no readings and no error", topic, payload)
		}
		// A reading costs at least a few payload bytes (line protocol "a=1").
		if bound := max(len(sub.Fields), 1, len(payload)/3); len(got) > bound {
			t.Fatalf("Decode(%q, %q) = %d readings, more than %d", topic, payload, len(got), bound)
		}
		for _, r := range got {
			if err := r.Validate(); err != nil {
				t.Fatalf("Decode(%q, %q) reading %+v: %v", topic, payload, r, err)
			}
			if q, _ := reading.Lookup(r.Quantity); !q.Plausible(r.Value) {
				t.Fatalf("Decode(%q, %q) reading %+v is implausible", topic, payload, r)
			}
			if r.Time.Before(reading.MinPayloadTime) || r.Time.After(arrival.Add(reading.MaxPayloadFuture)) {
				t.Fatalf("Decode(%q, %q) reading %+v outside the time window", topic, payload, r)
			}
		}
		again, err := Decode(sub, topic, payload, arrival)
		if err != nil || !sameReadings(got, again) {
			t.Fatalf("Decode(%q, %q) is not deterministic: %v then %v, %v", topic, payload, got, again, err)
		}
	})
}
