package hj212src

import (
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/hj212"
	"github.com/envgate/envgate/gateway/reading"
)

func TestConvert(t *testing.T) {
	now := time.Date(2026, 3, 15, 22, 16, 0, 0, shanghai)
	air := stations[1]
	check := func(cn, cp string, st Station, want map[string]float64, wantErr string) {
		t.Helper()
		p := hj212.Packet{ST: "22", CN: cn, MN: st.MN, Flag: 4, CP: "DataTime=20260315221500;" + cp}
		res, err := Convert(p, st, shanghai, now)
		if wantErr != "" {
			ce, ok := err.(*ConvertError)
			if !ok || ce.Reason != wantErr {
				t.Errorf("Convert(%s, %q) = %v, want a %s error", cn, cp, err, wantErr)
			}
			return
		}
		got := map[string]float64{}
		for _, r := range res.Readings {
			got[r.Quantity] = r.Value
			if !r.Time.Equal(time.Date(2026, 3, 15, 14, 15, 0, 0, time.UTC)) {
				t.Errorf("Convert(%s, %q): time %v", cn, cp, r.Time)
			}
		}
		if len(got) != len(want) {
			t.Errorf("Convert(%s, %q) = %v (skipped %v), want %v", cn, cp, got, res.Skipped, want)
		}
		for q, v := range want {
			if g, ok := got[q]; !ok || g < v*0.999999 || g > v*1.000001 {
				t.Errorf("Convert(%s, %q): %s = %v, want %v", cn, cp, q, g, v)
			}
		}
	}
	// Defaults: PM as sent, NO2 mg/m3 → ug/m3, pressure kPa → hPa, the O3 alias.
	check("2011", "a34004-Rtd=35.0,a34004-Flag=N;a21004-Rtd=0.040;a01006-Rtd=101.32;O3-Rtd=80", Station{MN: "x", Site: "s", Device: "d"},
		map[string]float64{"pm25": 35, "no2": 40, "pressure": 1013.2, "o3": 80}, "")
	// A configured code overrides the default (so2 sent in ug/m3 here).
	check("2011", "a21026-Rtd=12", air, map[string]float64{"so2": 12}, "")
	// Minute and hourly data: configured codes only, Avg.
	check("2061", "a21026-Avg=9,a21026-Max=20;a34004-Avg=35", air, map[string]float64{"so2": 9}, "")
	// Unknown codes, no number, out of range: skipped, the others kept.
	check("2011", "zz-Rtd=1;a34004-Rtd=abc;a34002-Rtd=-5;a34005-Rtd=3", air, map[string]float64{"pm1": 3}, "")
	// Daily data and status give no readings.
	check("2031", "a34004-Avg=35", air, map[string]float64{}, "")
	check("2011", "a34004-Rtd=35,a34004-Rtd=36", air, nil, ReasonField)
	p := hj212.Packet{ST: "22", CN: "2011", MN: "x", Flag: 4, CP: "DataTime=20260320000000;a34004-Rtd=1"}
	if _, err := Convert(p, air, shanghai, now); err == nil {
		t.Error("Convert: DataTime four days ahead accepted")
	}
	p.CP = "DataTime=19991231000000;a34004-Rtd=1"
	if _, err := Convert(p, air, shanghai, time.Time{}); err == nil {
		t.Error("Convert: DataTime in 1999 accepted")
	}
	// Every flag but N makes the reading suspect and is reported.
	p.CP = "DataTime=20260315221500;a34004-Rtd=1,a34004-Flag=T;a34002-Rtd=2,a34002-Flag=N;a34005-Rtd=3,a34005-Flag=M"
	res, err := Convert(p, air, shanghai, now)
	if err != nil || len(res.Readings) != 3 || res.Readings[0].Quality != reading.Suspect || res.Readings[1].Quality != reading.Good ||
		res.Readings[2].Quality != reading.Suspect || len(res.Flagged) != 2 || res.Flagged[1].Flag != "M" {
		t.Errorf("Convert(flags) = %+v, %v", res, err)
	}
}

// FuzzConvert feeds data segments through the source's path (ParseSegment, Convert):
// no panics, and every reading is valid, plausible and within the time bounds.
func FuzzConvert(f *testing.F) {
	for _, s := range []string{
		"QN=20260315221500123;ST=23;CN=2011;PW=123456;MN=33010500A0010001F0000002;Flag=5;CP=&&DataTime=20260315221500;LA-Rtd=47.3,LA-Flag=N&&",
		"QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&",
		"ST=22;CN=2011;PW=1;MN=x;CP=&&DataTime=20260315221500;a34004-Rtd=35.0,a34004-Flag=T;O3-Rtd=1e3;a21004-Rtd=NaN&&",
		"ST=22;CN=2061;MN=010000A8900016F000169DC0;Flag=7;PNUM=2;PNO=1;CP=&&DataTime=20260315220000;a21026-Avg=0x10;a21026-Avg=1&&",
		"ST=91;CN=9014;PW=1;MN=x;Flag=4;CP=&&&&",
		"ST=23;CN=2011;MN=y;CP=&&DataTime=20260315221500;Leq-Rtd=-0,Leq-Flag=;LA-Rtd=+1.5e1&&",
	} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 15, 22, 16, 0, 0, shanghai)
	f.Fuzz(func(t *testing.T, seg string) {
		p, err := hj212.ParseSegment(seg)
		if err != nil {
			return
		}
		for _, st := range append(stations, Station{MN: p.MN, Site: "s", Device: "d"}) {
			res, err := Convert(p, st, shanghai, now)
			if err != nil {
				if _, ok := err.(*ConvertError); !ok {
					t.Fatalf("Convert(%q): error %v is not a *ConvertError", seg, err)
				}
				continue
			}
			for _, r := range res.Readings {
				q, _ := reading.Lookup(r.Quantity)
				if err := r.Validate(); err != nil || !q.Plausible(r.Value) {
					t.Fatalf("Convert(%q): reading %+v: %v", seg, r, err)
				}
				if r.Time.Before(reading.MinPayloadTime) || r.Time.After(now.Add(reading.MaxPayloadFuture)) {
					t.Fatalf("Convert(%q): reading at %v", seg, r.Time)
				}
			}
		}
	})
}
