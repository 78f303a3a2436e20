package hj212

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

var beijing = time.FixedZone("CST", 8*3600)

func TestEncodeWorkedPackets(t *testing.T) {
	for _, v := range crcVectors[:2] {
		p, err := ParseSegment(v.segment)
		if err != nil {
			t.Fatalf("ParseSegment(%q): %v", v.segment, err)
		}
		got, err := Encode(p)
		if err != nil {
			t.Fatal(err)
		}
		want := "##" + pad4(len(v.segment)) + v.segment + hex4(v.crc) + "\r\n"
		if string(got) != want {
			t.Errorf("Encode:\n got %q\nwant %q", got, want)
		}
		back, err := Decode(got)
		if err != nil || !reflect.DeepEqual(back, p) {
			t.Errorf("Decode(Encode(p)) = %+v, %v; want %+v", back, err, p)
		}
	}
	// The standard's packet starts ##0101 and ends &&1C80.
	got, _ := Frame([]byte(crcVectors[0].segment))
	if !strings.HasPrefix(string(got), "##0101QN=") || !strings.HasSuffix(string(got), "&&1C80\r\n") {
		t.Errorf("Frame = %q", got)
	}
}

func pad4(n int) string {
	return string([]byte{byte('0' + n/1000), byte('0' + n/100%10), byte('0' + n/10%10), byte('0' + n%10)})
}
func hex4(c uint16) string { return string(appendCRC(nil, c)) }

func TestPacketFlags(t *testing.T) {
	for _, c := range []struct {
		flag       int
		ack, split bool
		version    int
	}{{4, false, false, 1}, {5, true, false, 1}, {7, true, true, 1}, {6, false, true, 1}, {0, false, false, 0}, {NoFlag, false, false, -1}} {
		p := Packet{Flag: c.flag}
		if p.Ack() != c.ack || p.Split() != c.split || p.Version() != c.version {
			t.Errorf("Flag=%d: ack %v split %v version %d", c.flag, p.Ack(), p.Split(), p.Version())
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	good, _ := Frame([]byte(crcVectors[0].segment))
	corrupt := []byte(strings.Replace(string(good), "RtdInterval=30", "RtdInterval=31", 1))
	var ce *CRCError
	if _, err := Decode(corrupt); !errors.As(err, &ce) || ce.Sent != 0x1C80 || ce.Computed == 0x1C80 {
		t.Errorf("corrupt value: %v", err)
	}
	var le *LengthError
	if _, err := Decode([]byte(strings.Replace(string(good), "##0101", "##0102", 1))); !errors.As(err, &le) || le.Field != 102 || le.Bytes != 101 {
		t.Errorf("wrong length: %v", err)
	}
	lower := []byte(strings.Replace(string(good), "1C80", "1c80", 1))
	if _, err := Decode(lower); err != nil {
		t.Errorf("lower-case CRC: %v", err)
	}
	lf := []byte(strings.TrimSuffix(string(good), "\r\n") + "\n")
	if _, err := Decode(lf); err != nil {
		t.Errorf("bare LF: %v", err)
	}
	for name, frame := range map[string]string{
		"no header":    "#0101" + crcVectors[0].segment + "1C80\r\n",
		"short":        "##01\r\n",
		"length":       "##01a1" + crcVectors[0].segment + "1C80\r\n",
		"crc digits":   "##0101" + crcVectors[0].segment + "1CX0\r\n",
		"no CP":        string(mustFrame("QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=01")),
		"unknown":      string(mustFrame("QN=20160801085857223;st=32;CN=1062;MN=01;CP=&&&&")),
		"repeated":     string(mustFrame("ST=32;ST=32;CN=1062;MN=01;CP=&&&&")),
		"flag":         string(mustFrame("ST=32;CN=1062;MN=01;Flag=256;CP=&&&&")),
		"split no pno": string(mustFrame("ST=32;CN=1062;MN=01;Flag=7;PNUM=2;CP=&&&&")),
		"pno > pnum":   string(mustFrame("ST=32;CN=1062;MN=01;Flag=7;PNUM=2;PNO=3;CP=&&&&")),
		"pnum no D":    string(mustFrame("ST=32;CN=1062;MN=01;Flag=5;PNUM=2;PNO=1;CP=&&&&")),
		"cn":           string(mustFrame("ST=32;CN=10;MN=01;CP=&&&&")),
		"qn":           string(mustFrame("QN=2016;ST=32;CN=1062;MN=01;CP=&&&&")),
		"no MN":        string(mustFrame("ST=32;CN=1062;CP=&&&&")),
		"cp end":       string(mustFrame("ST=32;CN=1062;MN=01;CP=&&a=1&")),
		"cp inner":     string(mustFrame("ST=32;CN=1062;MN=01;CP=&&a=1&&b=2&&")),
	} {
		if p, err := Decode([]byte(frame)); err == nil {
			t.Errorf("%s: %q decoded as %+v", name, frame, p)
		}
	}
}

func mustFrame(seg string) []byte {
	b, err := Frame([]byte(seg))
	if err != nil {
		panic(err)
	}
	return b
}

func TestDecodeUTF8LengthInCharacters(t *testing.T) {
	seg := "ST=22;CN=2011;MN=01;Flag=4;CP=&&DataTime=20260315221500;a34004-Rtd=35.0,a34004-EFlag=正常&&"
	chars := []rune(seg)
	frame := "##" + pad4(len(chars)) + seg + hex4(CRC([]byte(seg))) + "\r\n"
	if _, err := Decode([]byte(frame)); err != nil {
		t.Errorf("length in characters: %v", err)
	}
	if _, err := Decode(mustFrame(seg)); err != nil {
		t.Errorf("length in bytes: %v", err)
	}
}

func TestEncodeRefuses(t *testing.T) {
	base := Packet{QN: "20260315221500123", ST: STAcoustic, CN: CNRealtime, PW: "123456", MN: "33010500A0010001F0000002", Flag: 5, CP: "DataTime=20260315221500"}
	for name, mod := range map[string]func(*Packet){
		"separator in PW": func(p *Packet) { p.PW = "12;456" },
		"&& in CP":        func(p *Packet) { p.CP = "a=1&&" },
		"CRLF in CP":      func(p *Packet) { p.CP = "a=1\r\n" },
		"QN short":        func(p *Packet) { p.QN = "2026" },
		"CN letters":      func(p *Packet) { p.CN = "20a1" },
		"no ST":           func(p *Packet) { p.ST = "" },
		"no MN":           func(p *Packet) { p.MN = "" },
		"flag":            func(p *Packet) { p.Flag = 300 },
		"split bad":       func(p *Packet) { p.Flag = 7; p.PNUM, p.PNO = 1, 2 },
		"pnum no D":       func(p *Packet) { p.PNUM, p.PNO = 1, 1 },
		"too long":        func(p *Packet) { p.CP = strings.Repeat("a=1;", 300) + "a=1" },
	} {
		p := base
		mod(&p)
		if b, err := Encode(p); err == nil {
			t.Errorf("%s: encoded %q", name, b)
		}
	}
	if _, err := Encode(base); err != nil {
		t.Fatal(err)
	}
}

func TestParseRecord(t *testing.T) {
	r, err := ParseRecord("DataTime=20260315221500;LA-Rtd=47.3,LA-Flag=N;a34004-Rtd=35.0;a34004-Flag=M;RtdInterval=30", beijing)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 3, 15, 22, 15, 0, 0, beijing); !r.DataTime.Equal(want) {
		t.Errorf("DataTime %v, want %v", r.DataTime, want)
	}
	want := []Factor{
		{Code: "LA", Values: []Field{{"Rtd", "47.3"}, {"Flag", "N"}}},
		{Code: "a34004", Values: []Field{{"Rtd", "35.0"}, {"Flag", "M"}}},
	}
	if !reflect.DeepEqual(r.Factors, want) {
		t.Errorf("factors %+v, want %+v", r.Factors, want)
	}
	if v, ok := r.Factors[1].Value("Flag"); !ok || v != "M" {
		t.Errorf("Value(Flag) = %q, %v", v, ok)
	}
	for _, cp := range []string{
		"LA-Rtd=47.3",                               // no DataTime
		"DataTime=2026;LA-Rtd=47.3",                 // bad DataTime
		"DataTime=20260315221500;LA-Rtd=1;LA-Rtd=2", // repeated
		"DataTime=20260315221500;-Rtd=1",            // no code
		"DataTime=20260315221500;;LA-Rtd=1",         // empty group
		"DataTime=20260315221500;LA-Rtd",            // no '='
		"DataTime=20260315221500;DataTime=20260315221500",
	} {
		if r, err := ParseRecord(cp, beijing); err == nil {
			t.Errorf("ParseRecord(%q) = %+v", cp, r)
		}
	}
}

func TestGroupsRoundTrip(t *testing.T) {
	cp := Group(Field{"DataTime", "20260315221500"}) + ";" + FactorGroup("LA", Field{"Rtd", "47.3"}, Field{"Flag", "N"})
	if cp != "DataTime=20260315221500;LA-Rtd=47.3,LA-Flag=N" {
		t.Fatalf("cp %q", cp)
	}
	gs, err := ParseCP(cp)
	if err != nil || len(gs) != 2 || len(gs[1]) != 2 {
		t.Fatalf("ParseCP = %v, %v", gs, err)
	}
	if v, ok := Param(gs, "DataTime"); !ok || v != "20260315221500" {
		t.Errorf("Param = %q, %v", v, ok)
	}
}

func TestSplit(t *testing.T) {
	head := Packet{QN: "20260315221500123", ST: STAir, CN: CNHourly, PW: "123456", MN: "33010500A0010001F0000002", Flag: Version2017 | FlagAck}
	common := []string{"DataTime=20260315220000"}
	one, err := Split(head, common, []string{FactorGroup("a34004", Field{"Avg", "35.000"}, Field{"Flag", "N"})})
	if err != nil || len(one) != 1 || one[0].Split() || one[0].PNUM != 0 {
		t.Fatalf("short record: %+v, %v", one, err)
	}
	var groups []string
	for i := range 60 {
		groups = append(groups, FactorGroup("w"+pad4(i)+"x", Field{"Avg", "123.456"}, Field{"Min", "100.000"}, Field{"Max", "150.000"}, Field{"Flag", "N"}))
	}
	parts, err := Split(head, common, groups)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) < 2 {
		t.Fatalf("%d parts", len(parts))
	}
	var seen []string
	for i, p := range parts {
		frame, err := Encode(p)
		if err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
		back, err := Decode(frame)
		if err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
		if !back.Split() || !back.Ack() || back.PNUM != len(parts) || back.PNO != i+1 || back.QN != head.QN {
			t.Errorf("part %d: %+v", i+1, back)
		}
		r, err := ParseRecord(back.CP, beijing)
		if err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
		if r.DataTime.IsZero() {
			t.Errorf("part %d: no DataTime", i+1)
		}
		for _, f := range r.Factors {
			seen = append(seen, f.Code)
		}
		if seg, _ := p.Segment(); len(seg) > MaxSegment {
			t.Errorf("part %d: %d characters", i+1, len(seg))
		}
	}
	if len(seen) != len(groups) {
		t.Errorf("%d factors across the parts, want %d", len(seen), len(groups))
	}
	if _, err := Split(head, common, []string{strings.Repeat("x", MaxSegment)}); err == nil {
		t.Error("a group longer than a packet was split")
	}
}

func TestReader(t *testing.T) {
	good1, _ := Frame([]byte(crcVectors[0].segment))
	good2, _ := Frame([]byte(crcVectors[1].segment))
	corrupt := []byte(strings.Replace(string(good1), "=30", "=31", 1))
	stream := "garbage\r\n" + "noise before" + string(good1) + string(corrupt) + strings.Repeat("x", MaxFrame+10) + "\r\n" + string(good2) + "##0010unfinished"
	r := NewReader(strings.NewReader(stream))
	var got []string
	var bad int
	for {
		p, _, err := r.Next()
		var fe *FrameError
		if errors.As(err, &fe) {
			bad++
			continue
		}
		if err != nil {
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("end of stream: %v", err)
			}
			break
		}
		got = append(got, p.CN)
	}
	if !reflect.DeepEqual(got, []string{"1062", "2011"}) || bad != 3 {
		t.Errorf("packets %v, %d bad; want [1062 2011], 3 bad", got, bad)
	}
}

func TestFormatValue(t *testing.T) {
	for _, c := range []struct {
		v    float64
		d    int
		want string
	}{
		{55.05, 1, "55.0"}, {55.15, 1, "55.2"}, {55.25, 1, "55.2"}, {47.3, 1, "47.3"}, {35, 3, "35.000"},
		{2.675, 2, "2.68"}, {0.125, 2, "0.12"}, {9.95, 1, "10.0"}, {99.96, 1, "100.0"}, {-0.04, 1, "0.0"},
		{-1.25, 1, "-1.2"}, {1e-7, 3, "0.000"}, {123456789, 0, "123456789"}, {7.5, 0, "8"}, {6.5, 0, "6"},
	} {
		if got := FormatValue(c.v, c.d); got != c.want {
			t.Errorf("FormatValue(%v, %d) = %q, want %q", c.v, c.d, got, c.want)
		}
	}
}

func TestQN(t *testing.T) {
	at := time.Date(2026, 3, 15, 14, 15, 0, 123e6, time.UTC)
	qn := FormatQN(at, beijing)
	if qn != "20260315221500123" {
		t.Fatalf("FormatQN = %q", qn)
	}
	back, err := ParseQN(qn, beijing)
	if err != nil || !back.Equal(at) {
		t.Errorf("ParseQN = %v, %v", back, err)
	}
	if _, err := ParseQN("2026031522150012", beijing); err == nil {
		t.Error("16 digits accepted")
	}
}

func TestBadFrameHeader(t *testing.T) {
	good, err := Encode(Packet{QN: "20250301120000123", ST: "22", CN: "2011", PW: "123456", MN: "AIR01", Flag: 5,
		CP: "DataTime=20250301120000;a34004-Rtd=35"})
	if err != nil {
		t.Fatal(err)
	}
	badCRC := []byte(strings.Replace(string(good), "a34004-Rtd=35", "a34004-Rtd=36", 1))
	badLength := append([]byte(nil), good...)
	badLength[5]++
	noQN := []byte(strings.Replace(string(badCRC), "QN=20250301120000123;", "QN=2025;", 1))
	check := func(name string, frame []byte, want Packet, wantOK bool) {
		t.Helper()
		_, err := Decode(frame)
		got, ok := BadFrameHeader(&FrameError{Raw: frame, Err: err})
		if ok != wantOK || (ok && got != want) {
			t.Errorf("%s: BadFrameHeader(%v) = %+v, %v; want %+v, %v", name, err, got, ok, want, wantOK)
		}
	}
	want := Packet{QN: "20250301120000123", ST: "22", CN: "2011", PW: "123456", MN: "AIR01", Flag: NoFlag}
	check("crc", badCRC, want, true)
	check("length", badLength, want, true)
	check("no QN", noQN, Packet{}, false)
	check("garbage", []byte("##00"), Packet{}, false)
	check("good", good, Packet{}, false)
}
