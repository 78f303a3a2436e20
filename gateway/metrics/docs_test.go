package metrics

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/envgate/envgate/gateway/reading"
)

// docsPath is the operator's reference of every metric.
const docsPath = "../../docs/metrics.md"

var (
	// docRow matches a table row of docs/metrics.md: | `name` | type | labels | meaning |
	docRow = regexp.MustCompile("(?m)^\\|\\s*`(envgate_[a-z0-9_]+)`\\s*\\|\\s*([a-z]+)\\s*\\|([^|]*)\\|")
	// docLabel matches one label name in the labels cell of a row.
	docLabel = regexp.MustCompile("`([a-z_]+)`")
	// docName matches a metric name anywhere in docs/metrics.md.
	docName = regexp.MustCompile(`envgate_[a-z0-9_]*[a-z0-9]`)
	// descName finds the name in the String form of a *prometheus.Desc.
	descName = regexp.MustCompile(`fqName: "([^"]*)"`)
)

// TestDocsListEveryMetric checks docs/metrics.md against the registry of New with one
// buffer, one sink, one reading, one rejected reading and one poll: every envgate_*
// family has a table row with its type and labels, and every envgate_* name the page
// mentions exists (a histogram's _bucket, _sum and _count series included).
func TestDocsListEveryMetric(t *testing.T) {
	m := New()
	m.SetInfo("1.2.3", "box-1")
	m.ObserveReading(reading.New(t0, "canal-east", "noise-1", "la", 55.2))
	m.CountInvalid("noise-1", "invalid") // the invalid counter has no series before its first count
	m.ObservePoll("noise-1", 12*time.Millisecond, nil)
	m.ObserveModbus("rs485-a", "noise-1", 40*time.Millisecond, ResultException, 2)
	m.AddBusy("rs485-a", 40*time.Millisecond)
	m.AddMQTT("lora", func() MQTTStats { return MQTTStats{ErrorsByKind: map[string]uint64{"json": 1}} })
	m.SetNoise(func() []NoiseState {
		return []NoiseState{{Site: "canal-east", Device: "noise-1", Zone: "1", QuietDistrict: true, Limit: 55,
			LeqMinute: 60, LeqHour: 58, LeqPeriod: 57, Exceedance: 2, LastBurst: 72}}
	})
	m.SetAir(func() []AirState {
		return []AirState{{Site: "canal-east", Device: "air-1", Edition: "cn-2026", Hour: 1.7e9, AQI: 120, Level: 3,
			Primary: []string{"PM2.5"}, IAQI: map[string]float64{"PM2.5": 120}, DailyAQI: 95,
			Means: []AirMean{{Pollutant: "pm25", Window: "1h", Unit: "ug/m3", Value: 91}}}}
	})
	m.SetWater(func() []WaterState {
		return []WaterState{{Site: "canal-lock", WindowStart: 1.7e9, Class: 4, Target: 3, Missed: 1, Params: map[string]int{"do": 4}}}
	})
	m.SetScreen(func() []ScreenState {
		return []ScreenState{{Site: "canal", Device: "pm-1", Quantity: "pm25", Latest: "flatline", Flagged: map[string]uint64{"flatline": 3}}}
	})
	m.AddPM("pms-1", func() PMStats { return PMStats{Frames: 10} })
	m.AddHJ212("analyzers", func() HJ212Stats { return HJ212Stats{Flags: map[string]uint64{"T": 1}} })
	m.AddBuffer(func() BufferStats { return BufferStats{} })
	m.AddSink("influx", func() SinkStats { return SinkStats{} })
	m.AddUplink("bureau", func() UplinkStats { return UplinkStats{Connected: true} })
	m.AddMetricsPush("central", func() PushStats { return PushStats{Pushed: 2, Failed: 1} })
	m.AddHJ212Uplink("province", func() HJ212UplinkStats { return HJ212UplinkStats{Connected: true} })
	m.SetWriterStall(func() time.Duration { return 0 })
	m.SetReload(func() ReloadState { return ReloadState{OK: true, Loaded: time.Now()} })
	m.SetClockHold(func() (int64, uint64) { return 3, 1 })
	m.SetMaintenance(func() []MaintState { return []MaintState{{Device: "noise-1", Kind: "calibration", Excluded: 4}} })
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	families := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "envgate_") {
			families[mf.GetName()] = mf
		}
	}

	// A metric the fixture above does not populate would escape the check: every
	// described envgate_* metric must have been gathered.
	descs := make(chan *prometheus.Desc)
	go func() {
		m.Registry().Describe(descs)
		close(descs)
	}()
	described := 0
	for d := range descs {
		match := descName.FindStringSubmatch(d.String())
		if match == nil {
			t.Errorf("cannot find the name in %s", d)
			continue
		}
		if name := match[1]; strings.HasPrefix(name, "envgate_") {
			described++
			if families[name] == nil {
				t.Errorf("%s is registered but the test did not populate it; extend the fixture", name)
			}
		}
	}
	if described == 0 {
		t.Fatal("the registry describes no envgate_* metric")
	}

	raw, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	type row struct {
		typ    string
		labels []string
	}
	rows := map[string]row{}
	for _, match := range docRow.FindAllStringSubmatch(doc, -1) {
		var labels []string
		for _, l := range docLabel.FindAllStringSubmatch(match[3], -1) {
			labels = append(labels, l[1])
		}
		slices.Sort(labels)
		if _, dup := rows[match[1]]; dup {
			t.Errorf("%s: %s has two table rows", docsPath, match[1])
		}
		rows[match[1]] = row{typ: match[2], labels: labels}
	}

	for name, mf := range families {
		r, ok := rows[name]
		if !ok {
			t.Errorf("%s: no table row for %s (%s)", docsPath, name, mf.GetHelp())
			continue
		}
		if typ := strings.ToLower(mf.GetType().String()); r.typ != typ {
			t.Errorf("%s: %s is documented as a %s, it is a %s", docsPath, name, r.typ, typ)
		}
		var labels []string
		for _, l := range mf.GetMetric()[0].GetLabel() {
			labels = append(labels, l.GetName())
		}
		slices.Sort(labels)
		if !slices.Equal(r.labels, labels) {
			t.Errorf("%s: %s is documented with labels %v, it has %v", docsPath, name, r.labels, labels)
		}
	}

	exists := func(name string) bool {
		if families[name] != nil {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			base, ok := strings.CutSuffix(name, suffix)
			if mf := families[base]; ok && mf != nil && mf.GetType() == dto.MetricType_HISTOGRAM {
				return true
			}
		}
		return false
	}
	seen := map[string]bool{}
	for _, name := range docName.FindAllString(doc, -1) {
		if !seen[name] && !exists(name) {
			t.Errorf("%s names %s, which envgate does not export", docsPath, name)
		}
		seen[name] = true
	}
}
