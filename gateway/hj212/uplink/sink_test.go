package uplink

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/envgate/envgate/gateway/hj212/hj212test"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/clock"
)

const (
	noiseMN = "33010500A0010001F0000002"
	airMN   = "33010500A0010001F0000003"
	pw      = "123456"
)

var shanghai = func() *time.Location {
	l, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	return l
}()

func noiseStation() Station {
	return Station{ST: "23", MN: noiseMN, PW: pw, Site: "canal-east-3", Realtime: true,
		Records: []string{RecordMinute, RecordHourly, RecordDaily}}
}

func newSink(t testing.TB, addr string, mod func(*Config)) *Sink {
	t.Helper()
	cfg := Config{Address: addr, Stations: []Station{noiseStation()}, Location: shanghai,
		AnswerTimeout: 2 * time.Second, Retries: 2, Ack: true, RtdInterval: time.Minute}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// today10 is 10:00 today in Shanghai by the gateway's clock: times relative to now, any day.
func today10() time.Time {
	n := clock.Now().In(shanghai)
	return time.Date(n.Year(), n.Month(), n.Day(), 10, 0, 0, 0, shanghai)
}

func rd(site, q string, t time.Time, v float64) reading.Reading {
	return reading.Reading{Time: t, Site: site, Device: "meter-1", Quantity: q, Value: v}
}

func noiseBatch(t0 time.Time) []reading.Reading {
	day := time.Date(t0.Year(), t0.Month(), t0.Day(), 0, 0, 0, 0, shanghai)
	return []reading.Reading{
		rd("canal-east-3", "la", t0, 47.31),
		rd("canal-east-3", "la", t0.Add(time.Second), 48.05), // same real-time bucket: the latest wins
		rd("other-site", "la", t0, 60),                       // no station
		rd("canal-east-3", "laeq_1m", t0, 52.25),
		rd("canal-east-3", "laeq_1h", t0, 55.05),
		rd("canal-east-3", "l10_1h", t0, 58.15),
		rd("canal-east-3", "lmax_1h", t0, 71),
		rd("canal-east-3", "sd_1h", t0, 3), // no code
		rd("canal-east-3", "laeq_24h", day, 53.2),
		rd("canal-east-3", "ld", day.Add(6*time.Hour), 56.1),
		rd("canal-east-3", "ln", day.Add(22*time.Hour), 45.9),
		rd("canal-east-3", "ldn", day.Add(6*time.Hour), 57.4),
	}
}

func value(mn, cn string, dt time.Time, field, v string) hj212test.Value {
	return hj212test.Value{MN: mn, CN: cn, DataTime: dt.In(shanghai).Format("20060102150405"), Field: field, Value: v}
}

func TestHJ212NoiseRecords(t *testing.T) {
	p := hj212test.New(t)
	s := newSink(t, p.Addr(), nil)
	t0 := today10()
	batch := noiseBatch(t0)
	batch[5].Quality = reading.Suspect
	if err := s.Write(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	day := time.Date(t0.Year(), t0.Month(), t0.Day(), 0, 0, 0, 0, shanghai)
	vals, dups, conflicts := hj212test.Records(p.Packets())
	want := []hj212test.Value{
		value(noiseMN, "2011", t0.Add(time.Second), "LA-Rtd", "48.0"), // 48.05: half to even
		value(noiseMN, "2011", t0.Add(time.Second), "LA-Flag", "N"),
		value(noiseMN, "2051", t0, "Leq-Data", "52.2"),
		value(noiseMN, "2061", t0, "Leq-Data", "55.0"),
		value(noiseMN, "2061", t0, "L10-Data", "58.2"),
		value(noiseMN, "2061", t0, "L10-Flag", "D"), // suspect
		value(noiseMN, "2061", t0, "LMx-Data", "71.0"),
		value(noiseMN, "2031", day, "Leq-Data", "53.2"),
		value(noiseMN, "2031", day, "Ld-DayData", "56.1"),
		value(noiseMN, "2031", day, "Ln-NightData", "45.9"),
		value(noiseMN, "2031", day, "Ldn-Data", "57.4"),
	}
	for _, w := range want {
		if !vals[w] {
			t.Errorf("missing %+v", w)
		}
	}
	if n := len(vals); n != 2*len(want)-4 { // every value has its flag; 4 flags listed above
		t.Errorf("%d values, want %d: %v", n, 2*len(want)-4, vals)
	}
	if dups != 0 || conflicts != nil {
		t.Errorf("duplicates %d, conflicts %v", dups, conflicts)
	}
	for _, pk := range p.Packets() {
		if pk.ST != "23" || pk.PW != pw || pk.Flag != 5 {
			t.Errorf("packet %s: ST %s PW %s Flag %d", pk.Raw, pk.ST, pk.PW, pk.Flag)
		}
		qt, err := time.ParseInLocation("20060102150405", pk.QN[:14], shanghai)
		if d := clock.Now().Sub(qt); err != nil || d < -time.Minute || d > time.Minute {
			t.Errorf("QN %s is not now in Asia/Shanghai", pk.QN)
		}
	}
	if st := s.Stats(); st.Sent != 4 || st.Answered != 4 || st.Resent != 0 || !st.Connected {
		t.Errorf("stats %+v, want 4 sent and answered", st)
	}
	// The real-time bucket was sent: a later batch with a reading of it sends no 2011.
	if err := s.Write(t.Context(), []reading.Reading{rd("canal-east-3", "la", t0.Add(2*time.Second), 50)}); err != nil {
		t.Fatal(err)
	}
	if n := len(p.Packets()); n != 4 {
		t.Errorf("%d packets after a reading of a real-time interval already sent, want 4", n)
	}
}

func TestHJ212AirRecordsAndOverrides(t *testing.T) {
	p := hj212test.New(t)
	s := newSink(t, p.Addr(), func(c *Config) {
		c.Stations = []Station{{ST: "22", MN: airMN, PW: pw, Devices: []string{"aqm"}, Realtime: true,
			Records: []string{RecordHourly, RecordDaily},
			Factors: map[string]FactorOverride{"so2": {Decimals: 0, Scale: 1000}, "o3": {Code: "a05024x", Decimals: -1}}}}
	})
	t0 := today10()
	day := time.Date(t0.Year(), t0.Month(), t0.Day(), 0, 0, 0, 0, shanghai)
	r := func(q string, at time.Time, v float64) reading.Reading {
		return reading.Reading{Time: at, Site: "x", Device: "aqm", Quantity: q, Value: v}
	}
	batch := []reading.Reading{
		r("pm25", t0, 35.1234), r("so2", t0, 0.0124), r("o3", t0, 0.08),
		r("pm25_1m", t0, 35), // minute records are off for this station
		r("pm25_1h", t0, 36.5), r("so2_1h", t0, 0.0131), r("pm25_24h", t0, 40), r("aqi_1h", t0, 50),
		r("pm25_1d", day, 38.25),
	}
	if err := s.Write(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	vals, _, _ := hj212test.Records(p.Packets())
	for _, w := range []hj212test.Value{
		value(airMN, "2011", t0, "a34004-Rtd", "35.123"),
		value(airMN, "2011", t0, "a21026-Rtd", "12"),
		value(airMN, "2011", t0, "a05024x-Rtd", "0.080"),
		value(airMN, "2061", t0, "a34004-Avg", "36.500"),
		value(airMN, "2061", t0, "a21026-Avg", "13"),
		value(airMN, "2031", day, "a34004-Avg", "38.250"),
	} {
		if !vals[w] {
			t.Errorf("missing %+v in %v", w, vals)
		}
	}
	if n := len(vals); n != 12 {
		t.Errorf("%d values, want 12 (6 and their flags): %v", n, vals)
	}
	for _, pk := range p.Packets() {
		if pk.ST != "22" {
			t.Errorf("ST %s", pk.ST)
		}
	}
}

// manyFactors is a station with n invented factors, enough to split a record, and
// their hourly values at t0.
func manyFactors(n int, t0 time.Time) (Station, []reading.Reading) {
	st := Station{ST: "22", MN: airMN, PW: pw, Site: "x", Records: []string{RecordHourly}, Factors: map[string]FactorOverride{}}
	var batch []reading.Reading
	for i := range n {
		q := fmt.Sprintf("f%02d", i)
		st.Factors[q] = FactorOverride{Code: fmt.Sprintf("a99%03d", i), Decimals: 3}
		batch = append(batch, reading.Reading{Time: t0, Site: "x", Device: "d", Quantity: q + "_1h", Value: 1000 + float64(i) + 0.125})
	}
	return st, batch
}

func TestHJ212Split(t *testing.T) {
	p := hj212test.New(t)
	t0 := today10()
	st, batch := manyFactors(60, t0)
	s := newSink(t, p.Addr(), func(c *Config) { c.Stations = []Station{st} })
	if err := s.Write(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	pks := p.Packets()
	if len(pks) < 2 {
		t.Fatalf("%d packets, want a split record", len(pks))
	}
	for i, pk := range pks {
		if !pk.Split() || pk.PNUM != len(pks) || pk.PNO != i+1 || pk.QN != pks[0].QN || pk.Flag != 7 {
			t.Errorf("part %d: Flag %d PNUM %d PNO %d QN %s", i+1, pk.Flag, pk.PNUM, pk.PNO, pk.QN)
		}
		if !strings.HasPrefix(pk.CP, "DataTime=") {
			t.Errorf("part %d has no DataTime: %s", i+1, pk.CP)
		}
	}
	vals, dups, _ := hj212test.Records(pks)
	if len(vals) != 120 || dups != 0 {
		t.Errorf("%d values, %d duplicates after reassembly; want 120, 0", len(vals), dups)
	}
	if !vals[value(airMN, "2061", t0, "a99059-Avg", "1059.125")] {
		t.Error("last factor missing")
	}
}

// checkDelivered checks that every value of the batch reached p once reassembled.
func checkDelivered(t *testing.T, p *hj212test.Platform, want int) {
	t.Helper()
	vals, _, conflicts := hj212test.Records(p.Packets())
	if len(vals) != want || conflicts != nil {
		t.Errorf("%d values delivered, want %d; conflicts %v", len(vals), want, conflicts)
	}
}

const noiseValues = 2 * 9 // the values of noiseBatch and their flags

func TestHJ212PlatformDownThenUp(t *testing.T) {
	p := hj212test.New(t)
	addr := p.Addr()
	p.Close()
	s := newSink(t, addr, nil)
	batch := noiseBatch(today10())
	if err := s.Write(t.Context(), batch); err == nil {
		t.Fatal("Write to a platform that is down: nil")
	}
	if err := s.Probe(t.Context()); err == nil {
		t.Fatal("Probe of a platform that is down: nil")
	}
	p = hj212test.NewOn(t, addr)
	if err := s.Probe(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	checkDelivered(t, p, noiseValues)
}

func TestHJ212SlowAnswers(t *testing.T) {
	p := hj212test.New(t)
	p.Set(hj212test.Behaviour{Delay: 600 * time.Millisecond})
	s := newSink(t, p.Addr(), func(c *Config) { c.AnswerTimeout = 400 * time.Millisecond; c.Retries = 3 })
	if err := s.Write(t.Context(), noiseBatch(today10())); err != nil {
		t.Fatal(err)
	}
	checkDelivered(t, p, noiseValues)
	st := s.Stats()
	if st.Resent == 0 || st.Answered != 4 {
		t.Errorf("stats %+v: want re-sends and 4 answered", st)
	}
	for _, pk := range p.Packets() {
		if pk.Flag&1 == 0 {
			t.Errorf("packet without Flag A: %s", pk.Raw)
		}
	}
}

func TestHJ212DroppedConnection(t *testing.T) {
	p := hj212test.New(t)
	p.Set(hj212test.Behaviour{DropAfter: 2})
	s := newSink(t, p.Addr(), nil)
	if err := s.Write(t.Context(), noiseBatch(today10())); err != nil {
		t.Fatal(err)
	}
	checkDelivered(t, p, noiseValues)
	if n := p.Connections(); n < 3 {
		t.Errorf("%d connections, want 3 or more", n)
	}
	if st := s.Stats(); st.Answered != 4 {
		t.Errorf("stats %+v: want 4 answered", st)
	}
}

func TestHJ212NeverAnswers(t *testing.T) {
	p := hj212test.New(t)
	p.Set(hj212test.Behaviour{Never: true})
	s := newSink(t, p.Addr(), func(c *Config) { c.AnswerTimeout = 200 * time.Millisecond; c.Retries = 2 })
	batch := noiseBatch(today10())
	err := s.Write(t.Context(), batch)
	if err == nil || !strings.Contains(err.Error(), "no answer") {
		t.Fatalf("Write to a platform that never answers: %v", err)
	}
	if st := s.Stats(); st.Sent != 3 || st.Resent != 2 || st.Answered != 0 || st.Timeouts != 3 {
		t.Errorf("stats %+v: want 3 sent (2 re-sent), none answered", st)
	}
	pks := p.Packets()
	for _, pk := range pks {
		if pk.QN != pks[0].QN {
			t.Errorf("re-send with another QN: %s, first %s", pk.QN, pks[0].QN)
		}
	}
	p.Set(hj212test.Behaviour{})
	if err := s.Write(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	checkDelivered(t, p, noiseValues)
}

// A packet the platform answered is not sent again when the batch is retried.
func TestHJ212RetryKeepsAnswered(t *testing.T) {
	p := hj212test.New(t)
	p.Set(hj212test.Behaviour{DropAfter: 2})
	s := newSink(t, p.Addr(), func(c *Config) { c.Retries = 0 })
	batch := noiseBatch(today10())
	if err := s.Write(t.Context(), batch); err == nil {
		t.Fatal("Write: nil, want the lost connection's error")
	}
	p.Set(hj212test.Behaviour{})
	if err := s.Write(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	pks := p.Packets()
	vals, dups, conflicts := hj212test.Records(pks)
	if len(vals) != noiseValues || conflicts != nil {
		t.Errorf("%d values, conflicts %v", len(vals), conflicts)
	}
	// The second packet was received but not answered: it is the only one sent twice,
	// under its QN (a re-send, not a duplicate).
	if dups != 0 {
		t.Errorf("%d duplicate values, want none", dups)
	}
	if len(pks) != 5 || pks[2].Raw != pks[1].Raw {
		t.Fatalf("%d packets, want 5 (4 records, the second sent again as it was)", len(pks))
	}
}

func TestHJ212AnswersOff(t *testing.T) {
	p := hj212test.New(t)
	p.Set(hj212test.Behaviour{Never: true})
	s := newSink(t, p.Addr(), func(c *Config) { c.Ack = false })
	if err := s.Write(t.Context(), noiseBatch(today10())); err != nil {
		t.Fatal(err)
	}
	pks := p.Wait(5*time.Second, "4 packets", func(pk []hj212test.Packet) bool { return len(pk) == 4 })
	for _, pk := range pks {
		if pk.Flag != 4 {
			t.Errorf("Flag %d, want 4", pk.Flag)
		}
	}
}

func TestHJ212Heartbeat(t *testing.T) {
	p := hj212test.New(t)
	s := newSink(t, p.Addr(), func(c *Config) { c.Heartbeat = 100 * time.Millisecond })
	if err := s.Write(t.Context(), noiseBatch(today10())[:1]); err != nil {
		t.Fatal(err)
	}
	pks := p.Wait(5*time.Second, "a heartbeat", func(pk []hj212test.Packet) bool { return len(pk) >= 2 && pk[len(pk)-1].CN == "1011" })
	hb := pks[len(pks)-1]
	if !strings.HasPrefix(hb.CP, "SystemTime=") || hb.MN != noiseMN || hb.Flag != 4 {
		t.Errorf("heartbeat %s", hb.Raw)
	}
}

func TestHJ212Cancel(t *testing.T) {
	p := hj212test.New(t)
	p.Set(hj212test.Behaviour{Never: true})
	s := newSink(t, p.Addr(), func(c *Config) { c.AnswerTimeout = time.Hour })
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Write(ctx, noiseBatch(today10())) }()
	p.Wait(5*time.Second, "a packet", func(pk []hj212test.Packet) bool { return len(pk) > 0 })
	cancel()
	if err := <-done; err == nil {
		t.Fatal("Write after cancel: nil")
	}
}

// With a heartbeat, the connection is kept up for the platform's commands: a write
// with nothing to send re-dials it.
func TestHJ212HeartbeatRedials(t *testing.T) {
	p := hj212test.New(t)
	s := newSink(t, p.Addr(), func(c *Config) { c.Heartbeat = time.Hour })
	t0 := today10()
	if err := s.Write(t.Context(), noiseBatch(t0)[:1]); err != nil {
		t.Fatal(err)
	}
	c := s.current()
	p.DropConnection()
	select { // the sink sees the connection closed
	case <-c.doneCh:
	case <-time.After(5 * time.Second):
		t.Fatal("the sink did not see the platform drop the connection within 5 s")
	}
	if err := s.Write(t.Context(), []reading.Reading{rd("other-site", "la", t0, 50)}); err != nil {
		t.Fatal(err)
	}
	p.WaitConnections(2, 5*time.Second)
	if n := p.Connections(); n != 2 {
		t.Errorf("%d connections after the platform dropped one, want 2", n)
	}
}

// The data flags of issue 16 item 3 and issue 17: a reading screening flagged (its
// flag record, stored right behind it) goes out as suspect_flag, never N; a reading in
// a maintenance or calibration window as M or C, whatever its quality.
func TestHJ212FlagsFromScreeningAndMaintenance(t *testing.T) {
	p := hj212test.New(t)
	t0 := today10()
	s := newSink(t, p.Addr(), func(c *Config) {
		c.Flag = func(device string, at time.Time) (string, bool) {
			if device == "meter-1" && !at.Before(t0.Add(2*time.Minute)) && at.Before(t0.Add(3*time.Minute)) {
				return "C", true
			}
			return "", false
		}
	})
	raw := rd("canal-east-3", "la", t0, 47.3)
	flagged := raw
	flagged.Quality, flagged.Reason = reading.Suspect, reading.Flatline
	batch := []reading.Reading{
		raw, flagged, // screened: the flag record follows its reading
		rd("canal-east-3", "la", t0.Add(time.Minute), 48.1),   // valid
		rd("canal-east-3", "la", t0.Add(2*time.Minute), 94.0), // the calibrator
	}
	if err := s.Write(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	vals, _, conflicts := hj212test.Records(p.Packets())
	for _, w := range []hj212test.Value{
		value(noiseMN, "2011", t0, "LA-Flag", "D"),
		value(noiseMN, "2011", t0.Add(time.Minute), "LA-Flag", "N"),
		value(noiseMN, "2011", t0.Add(2*time.Minute), "LA-Flag", "C"),
	} {
		if !vals[w] {
			t.Errorf("missing %+v in %v", w, vals)
		}
	}
	if conflicts != nil {
		t.Errorf("conflicts %v", conflicts)
	}
}

// Real-time data keeps the latest value of each factor, not of the record: a factor
// whose latest reading is older than another factor's is still sent, and a factor that
// comes in a later batch of an interval already sent goes out then, alone.
func TestHJ212RealtimeEveryFactor(t *testing.T) {
	p := hj212test.New(t)
	s := newSink(t, p.Addr(), func(c *Config) {
		c.Stations = []Station{{ST: "22", MN: airMN, PW: pw, Site: "x", Realtime: true}}
	})
	t0 := today10()
	r := func(q string, at time.Time, v float64) reading.Reading {
		return reading.Reading{Time: at, Site: "x", Device: "aqm", Quantity: q, Value: v}
	}
	batches := [][]reading.Reading{
		{r("pm25", t0.Add(10*time.Second), 35), r("pm10", t0.Add(5*time.Second), 60)},
		{r("so2", t0.Add(20*time.Second), 0.012), r("pm25", t0.Add(30*time.Second), 99)}, // pm25 of the interval was sent
	}
	for _, b := range batches {
		if err := s.Write(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	vals, dups, conflicts := hj212test.Records(p.Packets())
	for _, w := range []hj212test.Value{
		value(airMN, "2011", t0.Add(10*time.Second), "a34004-Rtd", "35.000"),
		value(airMN, "2011", t0.Add(10*time.Second), "a34002-Rtd", "60.000"),
		value(airMN, "2011", t0.Add(20*time.Second), "a21026-Rtd", "0.01"),
	} {
		if !vals[w] {
			t.Errorf("missing %+v in %v", w, vals)
		}
	}
	if len(vals) != 6 || dups != 0 || conflicts != nil {
		t.Errorf("%d values (want 6), %d duplicates, conflicts %v: %v", len(vals), dups, conflicts, vals)
	}
	if n := len(p.Packets()); n != 2 {
		t.Errorf("%d packets, want 2", n)
	}
}

// A split record whose first part was answered and whose second was not goes again,
// from its second part, under its first QN: the platform joins the parts by QN.
func TestHJ212SplitRetryKeepsQN(t *testing.T) {
	p := hj212test.New(t)
	p.Set(hj212test.Behaviour{DropAfter: 2})
	st, batch := manyFactors(60, today10())
	s := newSink(t, p.Addr(), func(c *Config) { c.Stations = []Station{st}; c.Retries = 0 })
	if err := s.Write(t.Context(), batch); err == nil {
		t.Fatal("Write: nil, want the lost connection's error")
	}
	p.Set(hj212test.Behaviour{})
	if err := s.Write(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	pks := p.Packets()
	parts := map[int]int{}
	for _, pk := range pks {
		if pk.QN != pks[0].QN {
			t.Errorf("part %d under QN %s, the record's first part under %s", pk.PNO, pk.QN, pks[0].QN)
		}
		parts[pk.PNO]++
	}
	if len(parts) != pks[0].PNUM || parts[1] != 1 || parts[2] != 2 {
		t.Errorf("parts sent %v of %d: want each once, the unanswered second twice", parts, pks[0].PNUM)
	}
	if vals, _, _ := hj212test.Records(pks); len(vals) != 120 {
		t.Errorf("%d values after reassembly, want 120", len(vals))
	}
}
