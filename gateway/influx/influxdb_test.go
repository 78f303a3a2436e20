package influx

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/testsvc"
)

// Tests against a real InfluxDB 1.8.10 (v2 write API); see testsvc.StartInflux.

func realSink(t *testing.T, db *testsvc.Influx, mod func(*Config)) (*Sink, Config) {
	t.Helper()
	cfg := testConfig(t, db.URL)
	cfg.Name = "real"
	cfg.Bucket = db.Bucket
	cfg.Token = "envgate:unused" // 1.8 without auth ignores credentials; the header is still sent
	if mod != nil {
		mod(&cfg)
	}
	return newSink(t, cfg), cfg
}

// fieldTypes returns SHOW FIELD KEYS of measurement as field → type.
func fieldTypes(t *testing.T, db *testsvc.Influx, measurement string) map[string]string {
	t.Helper()
	types := map[string]string{}
	for _, r := range db.Query(t, "SHOW FIELD KEYS FROM "+measurement) {
		types[r.Values["fieldKey"].(string)] = r.Values["fieldType"].(string)
	}
	return types
}

func TestInfluxDBWrite(t *testing.T) {
	db := testsvc.StartInflux(t)
	s, _ := realSink(t, db, func(c *Config) { c.Gzip = true })

	at := time.Date(2026, 11, 28, 8, 0, 0, 250_000_000, time.UTC)
	suspect := reading.New(at.Add(time.Second), "运河东-3", "noise-1", "la", 57.5)
	suspect.Quality = reading.Suspect
	batch := []reading.Reading{
		reading.New(at, "运河东-3", "noise-1", "la", 55),
		suspect,
		reading.New(at, "canal-east-3", "aq-1", "pm25", 35.0),
		reading.New(at, "canal-east-3", "aq-1", "co", 0.8),
		reading.New(at, "canal-east-3", "met-1", "temperature", -12.5),
		reading.New(at, "bridge_2", "ws-1", "tp", 0.00001),
		reading.New(at, "bridge_2", "ws-1", "ph", 7),
		reading.New(at, "gw-1", "gateway", "buffer_bytes", 1<<50),
	}
	for range 2 { // the second write must overwrite, not duplicate
		if err := s.Write(t.Context(), batch); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}

	type key struct{ measurement, site, device, field string }
	want := map[key]float64{}
	for _, r := range batch {
		q, _ := reading.Lookup(r.Quantity)
		want[key{string(q.Domain), r.Site, r.Device, r.Quantity}] = r.Value
	}
	got := map[key]float64{}
	for _, m := range []string{"noise", "air", "weather", "water", "health"} {
		for _, row := range db.Query(t, "SELECT * FROM "+m+" GROUP BY *") {
			if len(row.Tags) != 3 || row.Tags["gateway"] != "gw-1" {
				t.Errorf("%s: tags %v, want exactly gateway=gw-1, site, device", m, row.Tags)
			}
			if row.Time != at.UnixMilli() && row.Time != at.Add(time.Second).UnixMilli() {
				t.Errorf("%s: time %d, want %d (ms precision)", m, row.Time, at.UnixMilli())
			}
			for f, v := range row.Values {
				if v == nil || strings.HasSuffix(f, "_quality") {
					continue
				}
				k := key{row.Measurement, row.Tags["site"], row.Tags["device"], f}
				if _, dup := got[k]; dup && k.field != "la" {
					t.Errorf("duplicate row for %+v", k)
				}
				got[k] = v.(float64)
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("read back %d series×fields, want %d:\n got %v\nwant %v", len(got), len(want), got, want)
	}
	for k, v := range want {
		if k.field == "la" {
			continue // two points in one series; checked below
		}
		if got[k] != v {
			t.Errorf("%+v = %v, want %v", k, got[k], v)
		}
	}
	la := db.Query(t, `SELECT la, la_quality FROM noise`)
	if len(la) != 2 || la[0].Values["la"] != 55.0 || la[0].Values["la_quality"] != nil ||
		la[1].Values["la"] != 57.5 || la[1].Values["la_quality"] != 1.0 {
		t.Errorf("noise rows = %+v, want la 55 without quality, then 57.5 with quality 1", la)
	}
	if n := db.Count(t, "air", "pm25"); n != 1 {
		t.Errorf("Count(air, pm25) = %d after writing the batch twice, want 1", n)
	}
	if types := fieldTypes(t, db, "air"); types["pm25"] != "float" || types["co"] != "float" {
		t.Errorf("air field types %v, want float (35.0 must not become an integer)", types)
	}
	if types := fieldTypes(t, db, "noise"); types["la"] != "float" || types["la_quality"] != "integer" {
		t.Errorf("noise field types %v, want la float, la_quality integer", types)
	}
	if st := s.Stats(); st.Written != uint64(2*len(batch)) || st.Rejected != 0 || st.DeadLettered != 0 {
		t.Errorf("Stats() = %+v", st)
	}
}

func TestInfluxDBBisectsTypeConflict(t *testing.T) {
	db := testsvc.StartInflux(t)
	s, cfg := realSink(t, db, nil)

	// pm25 exists as a float; so2 exists as an integer, so every so2 reading (always a
	// float) conflicts. InfluxDB 1.8 keeps field types per shard (a 7-day shard group):
	// the existing points are stamped t0 like the batch, not "now", which is in another
	// shard a week later (issue 10).
	at := fmt.Sprint(t0.UnixNano())
	db.Write(t, `air,device=d,gateway=g,site=s pm25=12.5 `+at, `air,device=d,gateway=g,site=s so2=5i `+at)
	batch := airBatch(100)
	isSO2 := func(r reading.Reading) bool { return r.Quantity == "so2" }
	if err := s.Write(t.Context(), batch); err != nil {
		t.Fatalf("Write: %v", err)
	}

	comments, dead := readDeadLetter(t, cfg.DeadLetter)
	wantDead := lines(batch, isSO2)
	if !slices.Equal(dead, wantDead) {
		t.Errorf("dead-lettered\n%s\nwant\n%s", strings.Join(dead, "\n"), strings.Join(wantDead, "\n"))
	}
	t.Logf("InfluxDB 1.8 answer, as dead-lettered: %s", comments[0])
	want := fmt.Sprintf(` sink=real status=400 partial write: field type conflict: input field "so2" on measurement "air" is type float, already exists as type integer dropped=%d`, len(wantDead))
	for _, c := range comments {
		if !strings.HasSuffix(c, want) {
			t.Errorf("dead-letter comment %q, want suffix %q", c, want)
			break
		}
	}
	if st := s.Stats(); st.DeadLettered != uint64(len(wantDead)) || st.Invalid != 0 {
		t.Errorf("Stats() = %+v, want DeadLettered %d", st, len(wantDead))
	}

	counts := map[string]int{}
	for _, r := range batch {
		counts[r.Quantity]++
	}
	counts["pm25"]++ // the pre-written point
	counts["so2"] = 1
	for q, n := range counts {
		if got := db.Count(t, "air", q); got != n {
			t.Errorf("Count(air, %s) = %d, want %d", q, got, n)
		}
	}
	rows := db.Query(t, `SELECT pm10 FROM air WHERE device = 'aq-1'`)
	for _, row := range rows {
		i := (row.Time - t0.UnixMilli()) / 1000
		if row.Values["pm10"] != float64(i)+0.5 {
			t.Errorf("pm10 at +%ds = %v, want %v", i, row.Values["pm10"], float64(i)+0.5)
		}
	}
}

func TestInfluxDBOutageAndMissingDatabase(t *testing.T) {
	db := testsvc.StartInflux(t)
	s, _ := realSink(t, db, func(c *Config) { c.Timeout = 2 * time.Second })
	batch := airBatch(20)

	db.Stop(t)
	err := s.Write(t.Context(), batch)
	var re *RetryError
	if !errors.As(err, &re) || re.StatusCode != 0 {
		t.Fatalf("Write while InfluxDB is down = %v, want *RetryError status 0", err)
	}
	db.Start(t)
	if err := s.Write(t.Context(), batch); err != nil {
		t.Fatalf("Write after restart: %v", err)
	}
	if n := db.Count(t, "air", "pm25"); n != 3 {
		t.Errorf("Count(air, pm25) = %d, want 3", n)
	}

	missing, _ := realSink(t, db, func(c *Config) { c.Bucket = "nosuchdb/autogen" })
	err = missing.Write(t.Context(), batch)
	var pe *PersistentError
	if !errors.As(err, &pe) || pe.StatusCode != 404 {
		t.Fatalf("Write to a missing database = %v, want *PersistentError 404", err)
	}
	t.Logf("InfluxDB 1.8, missing database: %v", err)
}
