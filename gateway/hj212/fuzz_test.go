package hj212

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzDecode: any bytes either decode to a packet that encodes back to a frame that
// decodes to the same packet, or give an error; never a panic.
func FuzzDecode(f *testing.F) {
	for _, v := range crcVectors {
		f.Add(mustFrame(v.segment))
	}
	f.Add([]byte("##0000\r\n"))
	f.Add([]byte("##0010CP=&&&&FFFF\r\n"))
	f.Add(mustFrame("ST=32;CN=1062;MN=01;Flag=7;PNUM=2;PNO=1;CP=&&a=1&&"))
	f.Add(mustFrame("QN=20260315221500123;ST=91;CN=9014;PW=123456;MN=01;Flag=4;CP=&&&&"))
	f.Fuzz(func(t *testing.T, frame []byte) {
		p, err := Decode(frame)
		if err != nil {
			return
		}
		// Decode accepts some things Encode would not write (a PW with odd
		// characters is still refused by Check); whatever Check accepts round-trips.
		if p.Check() != nil {
			return
		}
		again, err := Encode(p)
		if err != nil {
			if strings.Contains(err.Error(), "limit") {
				return
			}
			t.Fatalf("Encode(%+v): %v", p, err)
		}
		back, err := Decode(again)
		if err != nil || !reflect.DeepEqual(back, p) {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", frame, back, err, p)
		}
	})
}

// FuzzParseRecord: a data record's parameters parse or give an error, and what parses
// writes back (FactorGroup) to parameters that parse to the same factors.
func FuzzParseRecord(f *testing.F) {
	f.Add("DataTime=20260315221500;LA-Rtd=47.3,LA-Flag=N")
	f.Add("DataTime=20260315220000;a34004-Avg=35.000,a34004-Min=30.1,a34004-Max=40,a34004-Flag=N;a21026-Avg=0.01,a21026-Flag=M")
	f.Add("DataTime=20260315000000;Leq-Data=55.2;Ld-DayData=57.0;Ln-NightData=47.1;Ldn-Data=58.3")
	f.Add("DataTime=20260315221500;w01001-Rtd=7.12,w01001-Flag=N,w01001-SampleTime=20260315221000")
	f.Fuzz(func(t *testing.T, cp string) {
		r, err := ParseRecord(cp, time.UTC)
		if err != nil {
			return
		}
		groups := []string{Group(Field{"DataTime", r.DataTime.Format(TimeLayout)})}
		for _, fc := range r.Factors {
			groups = append(groups, FactorGroup(fc.Code, fc.Values...))
		}
		back, err := ParseRecord(strings.Join(groups, ";"), time.UTC)
		if err != nil {
			t.Fatalf("re-parse of %q: %v", cp, err)
		}
		if !back.DataTime.Equal(r.DataTime) || !reflect.DeepEqual(back.Factors, r.Factors) {
			t.Fatalf("re-parse of %q: %+v, want %+v", cp, back, r)
		}
	})
}

// FuzzReader: any stream yields packets and FrameErrors and ends; every packet it
// returns decodes on its own.
func FuzzReader(f *testing.F) {
	f.Add(append(append(mustFrame(crcVectors[0].segment), "junk\r\n"...), mustFrame(crcVectors[1].segment)...))
	f.Add([]byte("##\r\n##01\n\n\r\r\n"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		r := NewReader(bytes.NewReader(stream))
		for range len(stream) + 2 {
			_, frame, err := r.Next()
			var fe *FrameError
			if errors.As(err, &fe) {
				continue
			}
			if err != nil {
				return
			}
			if _, err := Decode(frame); err != nil {
				t.Fatalf("frame %q from the reader does not decode: %v", frame, err)
			}
		}
		t.Fatalf("the reader did not end on %d bytes", len(stream))
	})
}

// FuzzFormatValue: the text parses back to within half a unit of the last place.
func FuzzFormatValue(f *testing.F) {
	f.Add(55.05, uint8(1))
	f.Add(-1.25, uint8(1))
	f.Add(123456.789, uint8(3))
	f.Fuzz(func(t *testing.T, v float64, d uint8) {
		dec := int(d % 7)
		s := FormatValue(v, dec)
		if s == "" {
			return
		}
		if strings.ContainsAny(s, "eE+") || strings.HasPrefix(s, "-0") && strings.Trim(s, "-0.") == "" {
			t.Fatalf("FormatValue(%v, %d) = %q", v, dec, s)
		}
	})
}
