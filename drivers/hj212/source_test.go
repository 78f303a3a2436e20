package hj212src

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/hj212"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/testsvc"
)

var shanghai = time.FixedZone("CST", 8*3600)

const (
	mnNoise = "33010500A0010001F0000002"
	mnAir   = "010000A8900016F000169DC0"
)

var stations = []Station{
	{MN: mnNoise, Site: "canal-east", Device: "nm1"},
	{MN: mnAir, Site: "square", Device: "aq1", Factors: map[string]Factor{"a21026": {Quantity: "so2", Scale: 1}}},
}

// dataTime is a DataTime a minute before now, in the stations' zone.
func dataTime(t *testing.T) time.Time {
	t.Helper()
	return time.Now().In(shanghai).Truncate(time.Second).Add(-time.Minute)
}

// packet frames an upload of mn with cp (after DataTime).
func packet(t *testing.T, qn, mn, cn string, flag int, dt time.Time, cp string) []byte {
	t.Helper()
	b, err := hj212.Encode(hj212.Packet{QN: qn, ST: hj212.STAcoustic, CN: cn, PW: "123456", MN: mn, Flag: flag,
		CP: "DataTime=" + dt.Format(hj212.TimeLayout) + ";" + cp})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pipeline plays the gateway's writer: it records batches and calls Durable when
// the test releases them.
type pipeline struct {
	mu      sync.Mutex
	batches []reading.Batch
	arrived chan reading.Batch
}

func startSource(t *testing.T, cfg Config) (*Source, *pipeline) {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "hj"
	}
	if cfg.Listen == "" && cfg.Serial == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	cfg.Location = shanghai
	if cfg.Stations == nil {
		cfg.Stations = stations
	}
	s, err := New(cfg, OpenSerial, time.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan reading.Batch)
	p := &pipeline{arrived: make(chan reading.Batch, 100)}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, out) }()
	go func() {
		for b := range out {
			p.mu.Lock()
			p.batches = append(p.batches, b)
			p.mu.Unlock()
			p.arrived <- b
		}
	}()
	if cfg.Listen != "" {
		deadline := time.Now().Add(10 * time.Second)
		for s.Addr() == nil {
			if time.Now().After(deadline) {
				t.Fatal("not listening after 10 s")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return 10 s after ctx was cancelled")
		}
		close(out)
	})
	return s, p
}

func (p *pipeline) next(t *testing.T) reading.Batch {
	t.Helper()
	select {
	case b := <-p.arrived:
		return b
	case <-time.After(10 * time.Second):
		t.Fatal("no batch within 10 s")
	}
	return reading.Batch{}
}

// peer is an analyzer's end of a connection.
type peer struct {
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, s *Source) *peer {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &peer{c, bufio.NewReader(c)}
}

func (a *peer) send(t *testing.T, b []byte) {
	t.Helper()
	if _, err := a.c.Write(b); err != nil {
		t.Fatal(err)
	}
}

// answer reads the next answer packet within d; ok is false when none came.
func (a *peer) answer(t *testing.T, d time.Duration) (hj212.Packet, bool) {
	t.Helper()
	a.c.SetReadDeadline(time.Now().Add(d))
	line, err := a.r.ReadBytes('\n')
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return hj212.Packet{}, false
		}
		t.Fatalf("read answer: %v", err)
	}
	p, err := hj212.Decode(line)
	if err != nil {
		t.Fatalf("answer %q: %v", line, err)
	}
	return p, true
}

func TestTCPGoodPacketAnsweredAfterDurable(t *testing.T) {
	s, pl := startSource(t, Config{})
	a := dial(t, s)
	dt := dataTime(t)
	a.send(t, packet(t, "20260315221500123", mnNoise, "2011", 5, dt, "LA-Rtd=47.3,LA-Flag=N;Leq-Rtd=55.1,Leq-Flag=T"))
	b := pl.next(t)
	if !b.Redeliverable || b.Durable == nil {
		t.Fatalf("batch of a Flag A upload: Redeliverable %v, Durable set %v; want both", b.Redeliverable, b.Durable != nil)
	}
	want := []reading.Reading{
		reading.New(dt, "canal-east", "nm1", "la", 47.3),
		reading.New(dt, "canal-east", "nm1", "laeq", 55.1),
	}
	want[1].Quality = reading.Suspect
	if len(b.Readings) != 2 {
		t.Fatalf("readings %+v, want %+v", b.Readings, want)
	}
	for i := range want {
		if g := b.Readings[i]; !g.Time.Equal(want[i].Time) || g.Quantity != want[i].Quantity || g.Value != want[i].Value ||
			g.Quality != want[i].Quality || g.Site != want[i].Site || g.Device != want[i].Device {
			t.Errorf("reading %d = %+v, want %+v", i, g, want[i])
		}
	}
	if p, ok := a.answer(t, 300*time.Millisecond); ok {
		t.Fatalf("answer %+v before the batch was durable", p)
	}
	b.Durable(nil)
	p, ok := a.answer(t, 10*time.Second)
	if !ok || p.CN != "9014" || p.QN != "20260315221500123" || p.ST != "91" || p.MN != mnNoise || p.Flag != 4 || p.CP != "" {
		t.Fatalf("answer %+v, %v; want CN 9014 with the upload's QN", p, ok)
	}
	// Answered is counted once the write has returned, which may be after the peer read it.
	waitStats(t, s, func(st Stats) bool { return st.Answered == 1 })
	if st := s.Stats(); st.Accepted != 1 || st.Readings != 2 || st.Answered != 1 || st.Flags["T"] != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestTCPNotDurableNotAnswered(t *testing.T) {
	s, pl := startSource(t, Config{})
	a := dial(t, s)
	a.send(t, packet(t, "20260315221500124", mnNoise, "2011", 5, dataTime(t), "LA-Rtd=47.3"))
	pl.next(t).Durable(io.ErrShortWrite)
	if p, ok := a.answer(t, 300*time.Millisecond); ok {
		t.Fatalf("answer %+v to a batch that is not durable", p)
	}
}

func TestTCPCorruptGarbageAndSplit(t *testing.T) {
	s, pl := startSource(t, Config{})
	a := dial(t, s)
	dt := dataTime(t)
	good := packet(t, "20260315221500125", mnNoise, "2011", 4, dt, "LA-Rtd=50.1")

	crc := append([]byte(nil), good...)
	crc[len(crc)-3] ^= 1 // a CRC digit
	a.send(t, crc)
	if p, ok := a.answer(t, 10*time.Second); !ok || p.CN != "9011" || p.CP != "QnRtn=9" || p.QN != "20260315221500125" {
		t.Fatalf("answer to a bad CRC: %+v, %v; want 9011 QnRtn=9", p, ok)
	}
	length := append([]byte(nil), good...)
	length[5] = '9'
	a.send(t, length)
	a.answer(t, 10*time.Second) // the length error is answered like a CRC error
	a.send(t, []byte("AT+CSQ\r\n\x00\xff garbage ##12\r\n"))
	a.send(t, append([]byte(strings.Repeat("x", hj212.MaxFrame+100)), '\r', '\n'))

	// A split record: each part carries DataTime and its own factors.
	parts, err := hj212.Split(hj212.Packet{QN: "20260315221500126", ST: "23", CN: "2011", PW: "123456", MN: mnNoise, Flag: 5},
		[]string{"DataTime=" + dt.Format(hj212.TimeLayout)},
		[]string{"LA-Rtd=50.2,LA-SampleTime=" + strings.Repeat("9", 500), "Leq-Rtd=51.3,Leq-SampleTime=" + strings.Repeat("9", 500)})
	if err != nil || len(parts) != 2 {
		t.Fatalf("Split: %d parts, %v", len(parts), err)
	}
	a.send(t, good)
	for _, p := range parts {
		b, err := hj212.Encode(p)
		if err != nil {
			t.Fatal(err)
		}
		a.send(t, b)
	}
	got := map[string]float64{}
	for range 3 {
		b := pl.next(t)
		for _, r := range b.Readings {
			got[fmt.Sprint(r.Quantity, r.Value)]++
		}
		if b.Durable != nil {
			b.Durable(nil)
		}
	}
	for _, k := range []string{"la50.1", "la50.2", "laeq51.3"} {
		if got[k] != 1 {
			t.Errorf("readings %v: want one %s", got, k)
		}
	}
	for range 2 {
		if p, ok := a.answer(t, 10*time.Second); !ok || p.CN != "9014" || p.QN != "20260315221500126" {
			t.Fatalf("answer to a split part: %+v, %v", p, ok)
		}
	}
	st := s.Stats()
	if st.Rejected[ReasonCRC] != 1 || st.Rejected[ReasonLength] != 1 || st.Rejected[ReasonGarbage] < 2 || st.Accepted != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestTCPUnknownStationAndBadTime(t *testing.T) {
	s, pl := startSource(t, Config{})
	a := dial(t, s)
	a.send(t, packet(t, "20260315221500127", "FFFF", "2011", 5, dataTime(t), "LA-Rtd=47.3"))
	if p, ok := a.answer(t, 10*time.Second); !ok || p.CN != "9011" || p.CP != "QnRtn=4" {
		t.Fatalf("answer to an unknown MN: %+v, %v; want 9011 QnRtn=4", p, ok)
	}
	a.send(t, packet(t, "20260315221500128", mnNoise, "2011", 5, time.Now().Add(72*time.Hour), "LA-Rtd=47.3"))
	a.send(t, packet(t, "20260315221500129", mnNoise, "2011", 4, dataTime(t), "LA-Rtd=47.4"))
	if b := pl.next(t); b.Readings[0].Value != 47.4 {
		t.Fatalf("batch %+v: want the packet after the one from the future", b)
	}
	if st := s.Stats(); st.Rejected[ReasonUnknownMN] != 1 || st.Rejected[ReasonTime] != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestTCPTwoAnalyzersAndHalfPacket(t *testing.T) {
	s, pl := startSource(t, Config{})
	half := dial(t, s)
	p := packet(t, "20260315221500130", mnNoise, "2011", 4, dataTime(t), "LA-Rtd=40.0")
	half.send(t, p[:30])
	half.c.Close()

	a, b := dial(t, s), dial(t, s)
	var wg sync.WaitGroup
	for i, c := range []*peer{a, b} {
		wg.Go(func() {
			for j := range 5 {
				mn := []string{mnNoise, mnAir}[i]
				cp := fmt.Sprintf("LA-Rtd=%d", 40+j)
				if i == 1 {
					cp = fmt.Sprintf("a21026-Rtd=0.0%d", j+1)
				}
				if _, err := c.c.Write(packet(t, "", mn, "2011", 4, dataTime(t), cp)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	n := map[string]int{}
	for range 10 {
		for _, r := range pl.next(t).Readings {
			n[r.Device]++
		}
	}
	if n["nm1"] != 5 || n["aq1"] != 5 {
		t.Errorf("readings by device %v, want 5 each", n)
	}
	if st := s.Stats(); st.Connections != 3 {
		t.Errorf("connections %d, want 3", st.Connections)
	}
}

func TestTCPMaxConns(t *testing.T) {
	s, _ := startSource(t, Config{MaxConns: 1})
	a := dial(t, s)
	a.send(t, []byte("\r\n")) // make sure the first is being served
	waitStats(t, s, func(st Stats) bool { return st.Rejected[ReasonGarbage] == 1 })
	b := dial(t, s)
	b.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := b.r.ReadByte(); err != io.EOF {
		t.Errorf("second connection over MaxConns 1: read %v, want EOF", err)
	}
	if st := s.Stats(); st.Refused != 1 {
		t.Errorf("refused %d, want 1", st.Refused)
	}
}

func waitStats(t *testing.T, s *Source, cond func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond(s.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: condition not met in 10 s", s.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPTY(t *testing.T) {
	pty := testsvc.PtyPair(t)
	s, pl := startSource(t, Config{Serial: pty.A, Baud: 9600})
	f, err := os.OpenFile(pty.B, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dt := dataTime(t)
	good := packet(t, "20260315221500131", mnNoise, "2011", 5, dt, "LA-Rtd=47.3,LA-Flag=N")
	bad := append([]byte(nil), good...)
	bad[len(bad)-4] ^= 1
	// garbage, a corrupt packet, then a good one written in two pieces
	for _, w := range [][]byte{[]byte("\x00\x13noise\r\n"), bad, good[:20], good[20:]} {
		if _, err := f.Write(w); err != nil {
			t.Fatal(err)
		}
	}
	b := pl.next(t)
	if len(b.Readings) != 1 || b.Readings[0].Value != 47.3 || !b.Readings[0].Time.Equal(dt) {
		t.Fatalf("readings %+v", b.Readings)
	}
	b.Durable(nil)
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatal(err)
		}
		p, err := hj212.Decode(line)
		if err != nil {
			t.Fatalf("answer %q: %v", line, err)
		}
		if p.CN == "9014" {
			if p.QN != "20260315221500131" {
				t.Errorf("9014 with QN %s", p.QN)
			}
			break
		}
	}
	if st := s.Stats(); st.Rejected[ReasonCRC] != 1 || st.Rejected[ReasonGarbage] != 1 {
		t.Errorf("stats %+v", st)
	}
}
