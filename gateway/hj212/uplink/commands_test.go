package uplink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/hj212"
	"github.com/envgate/envgate/gateway/hj212/hj212test"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/clock"
)

// ask sends a command segment with a fresh QN and waits for the sink's 9012 (or, when
// only a 9011 comes, for that), returning the packets with that QN.
func ask(t *testing.T, p *hj212test.Platform, n int, cn, pw, mn, cp string, crcOK bool, final string) []hj212test.Packet {
	t.Helper()
	qn := clock.Now().In(shanghai).Format("20060102150405") + fmt.Sprintf("%03d", n)
	seg := fmt.Sprintf("QN=%s;ST=23;CN=%s;PW=%s;MN=%s;Flag=5;CP=&&%s&&", qn, cn, pw, mn, cp)
	if err := p.Send(seg, crcOK); err != nil {
		t.Fatal(err)
	}
	pks := p.Wait(5*time.Second, "answer to "+cn, func(pk []hj212test.Packet) bool {
		for _, x := range pk {
			if x.QN == qn && x.CN == final {
				return true
			}
		}
		return false
	})
	var out []hj212test.Packet
	for _, x := range pks {
		if x.QN == qn {
			out = append(out, x)
		}
	}
	return out
}

func cns(pks []hj212test.Packet) string {
	var s []string
	for _, p := range pks {
		s = append(s, p.CN+":"+p.CP)
	}
	return strings.Join(s, " ")
}

func TestHJ212Commands(t *testing.T) {
	p := hj212test.New(t)
	t0 := today10()
	held := noiseBatch(t0)
	var asked [2]time.Time
	s := newSink(t, p.Addr(), func(c *Config) {
		c.History = func(ctx context.Context, from, to time.Time, each func([]reading.Reading) error) error {
			if asked[0].IsZero() {
				asked = [2]time.Time{from, to}
			}
			return each(held)
		}
	})
	if err := s.Write(t.Context(), held[:1]); err != nil { // connects
		t.Fatal(err)
	}
	ts := func(t time.Time) string { return t.In(shanghai).Format("20060102150405") }
	for i, tc := range []struct {
		cn, pw, mn, cp string
		crcOK          bool
		final          string
		want           string // the answers' CN:CP, in order; * matches the rest of a CP
	}{
		{"1011", pw, noiseMN, "", true, "9012", "9011:QnRtn=1 1011:SystemTime=* 9012:ExeRtn=1"},
		{"1011", "654321", noiseMN, "", true, "9011", "9011:QnRtn=3"},
		{"1011", pw, "NOSUCHMN", "", true, "9011", "9011:QnRtn=4"},
		{"3020", pw, noiseMN, "", true, "9011", "9011:QnRtn=8"},
		{"1072", pw, noiseMN, "NewPW=111111", true, "9011", "9011:QnRtn=2"},
		{"1011", pw, noiseMN, "", false, "9011", "9011:QnRtn=9"},
		{"1012", pw, noiseMN, "SystemTime=" + ts(t0), true, "9012", "9011:QnRtn=1 9012:ExeRtn=3"},
		{"1062", pw, noiseMN, "RtdInterval=120", true, "9012", "9011:QnRtn=1 9012:ExeRtn=1"},
		{"1061", pw, noiseMN, "", true, "9012", "9011:QnRtn=1 1061:RtdInterval=120 9012:ExeRtn=1"},
		{"1062", pw, noiseMN, "RtdInterval=5", true, "9012", "9011:QnRtn=1 9012:ExeRtn=3"},
		{"2061", pw, noiseMN, "BeginTime=" + ts(t0) + ",EndTime=" + ts(t0.Add(time.Hour)), true, "9012",
			"9011:QnRtn=1 2061:DataTime=" + ts(t0) + ";Leq-Data=55.0,Leq-Flag=N;L10-Data=58.2,L10-Flag=N;LMx-Data=71.0,LMx-Flag=N 9012:ExeRtn=1"},
		{"2051", pw, noiseMN, "BeginTime=" + ts(t0.Add(time.Hour)) + ",EndTime=" + ts(t0.Add(2*time.Hour)), true, "9012", "9011:QnRtn=1 9012:ExeRtn=100"},
		{"2031", pw, noiseMN, "BeginTime=" + ts(t0) + ",EndTime=x", true, "9012", "9011:QnRtn=1 9012:ExeRtn=3"},
	} {
		got := cns(ask(t, p, i, tc.cn, tc.pw, tc.mn, tc.cp, tc.crcOK, tc.final))
		head, tail, star := strings.Cut(tc.want, "*")
		if got != tc.want && !(star && strings.HasPrefix(got, head) && strings.HasSuffix(got, tail)) {
			t.Errorf("CN %s %s (crc ok %v):\n got %s\nwant %s", tc.cn, tc.cp, tc.crcOK, got, tc.want)
		}
	}
	if !asked[0].Equal(t0) {
		t.Errorf("history read from %v, want %v", asked[0], t0)
	}
	// Refused: QnRtn 3, 4, 8, 2 and 9; ExeRtn 3 (set time), 3 (interval 5 s), 100 and 3.
	if st := s.Stats(); st.Commands != 13 || st.Refused != 9 {
		t.Errorf("stats %+v: want 13 commands, 9 refused", st)
	}
	// The platform's interval holds: readings two minutes apart are two real-time packets.
	before := len(p.Packets())
	if err := s.Write(t.Context(), []reading.Reading{rd("canal-east-3", "la", t0.Add(5*time.Minute), 50), rd("canal-east-3", "la", t0.Add(5*time.Minute+50*time.Second), 51)}); err != nil {
		t.Fatal(err)
	}
	if n := len(p.Packets()) - before; n != 1 {
		t.Errorf("%d real-time packets within one 120 s interval, want 1", n)
	}
}

// FuzzHJ212Handle feeds the command handler arbitrary packets: it answers or refuses each,
// and never panics.
func FuzzHJ212Handle(f *testing.F) {
	f.Add("1062", "RtdInterval=30")
	f.Add("2051", "BeginTime=20260101000000,EndTime=20260101010000")
	f.Add("2061", "BeginTime=2026,EndTime=;")
	f.Add("1012", "SystemTime=20261301000000")
	f.Add("9999", "a=b=c")
	p := hj212test.New(f)
	s := newSink(f, p.Addr(), func(c *Config) {
		c.History = func(ctx context.Context, from, to time.Time, each func([]reading.Reading) error) error {
			return each(noiseBatch(today10()))
		}
	})
	if err := s.Write(f.Context(), []reading.Reading{rd("canal-east-3", "la", today10(), 50)}); err != nil {
		f.Fatal(err)
	}
	c := s.current()
	f.Fuzz(func(t *testing.T, cn, cp string) {
		pk := hj212.Packet{QN: "20260101000000000", ST: "23", CN: cn, PW: pw, MN: noiseMN, Flag: 5, CP: cp}
		if pk.Check() != nil {
			return
		}
		s.handle(t.Context(), c, command{p: pk})
	})
}

// A history request stops when its connection closes (the sink closed, or the
// platform gone): it does not read the buffer on for a connection that is no more.
func TestHJ212HistoryStopsWithConnection(t *testing.T) {
	for _, how := range []string{"sink closed", "platform dropped the connection"} {
		t.Run(how, func(t *testing.T) {
			p := hj212test.New(t)
			reads := make(chan struct{})
			stopped := make(chan error, 1)
			s := newSink(t, p.Addr(), func(c *Config) {
				c.History = func(ctx context.Context, from, to time.Time, each func([]reading.Reading) error) error {
					close(reads)
					select {
					case <-ctx.Done():
						stopped <- nil
					case <-time.After(5 * time.Second):
						stopped <- errors.New("history request still reading 5 s after its connection closed")
					}
					return ctx.Err()
				}
			})
			t0 := today10()
			if err := s.Write(t.Context(), []reading.Reading{rd("canal-east-3", "la", t0, 50)}); err != nil { // connects
				t.Fatal(err)
			}
			ts := t0.In(shanghai).Format("20060102150405")
			seg := fmt.Sprintf("QN=20260101000000001;ST=23;CN=2061;PW=%s;MN=%s;Flag=5;CP=&&BeginTime=%s,EndTime=%s&&", pw, noiseMN, ts, ts)
			if err := p.Send(seg, true); err != nil {
				t.Fatal(err)
			}
			<-reads
			if how == "sink closed" {
				s.Close()
			} else {
				p.DropConnection()
			}
			if err := <-stopped; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A history request whose records cannot be sent reports failure (ExeRtn 2), not
// success.
func TestHJ212HistorySendFails(t *testing.T) {
	s := newSink(t, "127.0.0.1:1", func(c *Config) {
		c.History = func(ctx context.Context, from, to time.Time, each func([]reading.Reading) error) error {
			return each(noiseBatch(today10()))
		}
	})
	a, b := net.Pipe()
	b.Close()
	c := newConn(a)
	t.Cleanup(c.close)
	t0 := today10()
	p := hj212.Packet{QN: "20260101000000001", ST: "23", CN: "2061", PW: pw, MN: noiseMN, Flag: 5}
	if got := s.history(t.Context(), c, 0, p, t0, t0.Add(time.Hour)); got != hj212.ExeFailed {
		t.Errorf("history on a broken connection: ExeRtn %s, want %s", got, hj212.ExeFailed)
	}
}

// SetFlag and SetHistory may be called while a history request reads the hooks (the
// race detector checks it).
func TestHJ212HooksSetWhileInUse(t *testing.T) {
	p := hj212test.New(t)
	t0 := today10()
	history := func(ctx context.Context, from, to time.Time, each func([]reading.Reading) error) error {
		return each(noiseBatch(t0))
	}
	s := newSink(t, p.Addr(), func(c *Config) { c.History = history })
	if err := s.Write(t.Context(), []reading.Reading{rd("canal-east-3", "la", t0, 50)}); err != nil { // connects
		t.Fatal(err)
	}
	done := make(chan struct{})
	setting := make(chan struct{})
	go func() {
		defer close(setting)
		for {
			select {
			case <-done:
				return
			default:
			}
			s.SetFlag(func(string, time.Time) (string, bool) { return "M", true })
			s.SetHistory(history)
		}
	}()
	ts := t0.In(shanghai).Format("20060102150405")
	for i := range 3 {
		got := cns(ask(t, p, i, "2061", pw, noiseMN, "BeginTime="+ts+",EndTime="+ts, true, "9012"))
		if !strings.HasSuffix(got, "9012:ExeRtn=1") {
			t.Errorf("history request %d: %s", i, got)
		}
	}
	close(done)
	<-setting
}

// A history request builds records without real-time intervals: a real-time reading
// reaching build then is left out, not divided by a zero interval.
func TestHJ212HistoryBuildSkipsRealtime(t *testing.T) {
	s := newSink(t, "127.0.0.1:1", nil)
	t0 := today10()
	recs, skipped := s.build(noiseBatch(t0), nil, nil, 0)
	for _, r := range recs {
		if r.cn == hj212.CNRealtime {
			t.Errorf("a real-time record built without intervals: %+v", r)
		}
	}
	if len(recs) != 3 || skipped != 0 {
		t.Errorf("%d records (want the minute, hourly and daily ones), %d skipped", len(recs), skipped)
	}
}
