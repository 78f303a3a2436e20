package hj212test

import "testing"

// TestHJ212CRC checks the table-driven CRC against the standard's example (docs/standards.md
// §4.3) and the acoustic example (§4.9).
func TestHJ212CRC(t *testing.T) {
	for _, tc := range []struct {
		seg  string
		want uint16
	}{
		{"QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&", 0x1C80},
		{"QN=20260315221500123;ST=23;CN=2011;PW=123456;MN=33010500A0010001F0000002;Flag=5;CP=&&DataTime=20260315221500;LA-Rtd=47.3,LA-Flag=N&&", 0xB101},
		{"", 0xFFFF},
	} {
		if got := CRC(tc.seg); got != tc.want {
			t.Errorf("CRC(%.30q…) = %04X, want %04X", tc.seg, got, tc.want)
		}
	}
}

func TestHJ212Parse(t *testing.T) {
	seg := "QN=20260315221500123;ST=23;CN=2011;PW=123456;MN=33010500A0010001F0000002;Flag=5;CP=&&DataTime=20260315221500;LA-Rtd=47.3,LA-Flag=N&&"
	p, err := Parse(Frame(seg))
	if err != nil || p.CN != "2011" || !p.Ack() || p.Split() || p.CP != "DataTime=20260315221500;LA-Rtd=47.3,LA-Flag=N" {
		t.Fatalf("Parse = %+v, %v", p, err)
	}
	for _, bad := range []string{
		"##0001A0000\r\n",
		Frame(seg)[:len(Frame(seg))-6] + "0000\r\n",
		Frame("QN=20260315221500123;ST=23;CN=2011;PW=1;MN=M;Flag=7;CP=&&&&"),              // D without PNUM
		Frame("QN=20260315221500123;ST=23;CN=2011;PW=1;MN=M;Flag=1;CP=&&&&"),              // version 0
		Frame("QN=20260315221500123;ST=23;CN=2011;PW=1;MN=M;Flag=7;PNUM=2;PNO=3;CP=&&&&"), // PNO > PNUM
		Frame("ST=23;CN=2011;PW=1;MN=M;Flag=5;CP=&&&&"),                                   // no QN
	} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q): no error", bad)
		}
	}
}
