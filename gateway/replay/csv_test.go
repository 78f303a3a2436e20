package replay

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

var cst = time.FixedZone("CST", 8*3600)

func readAll(t *testing.T, in string, opt Options) (rs []reading.Reading, errs []string) {
	t.Helper()
	r, err := NewReader(strings.NewReader(in), opt)
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	for {
		got, err := r.Next()
		if errors.Is(err, io.EOF) {
			return rs, errs
		}
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		rs = append(rs, got...)
	}
}

func TestLongForm(t *testing.T) {
	rs, errs := readAll(t, `# exported from envgate
time,site,device,quantity,value,unit,quality
2026-11-28T21:00:00+08:00,canal,n-1,la,62.5,dB(A),good
2026-11-28 21:00:01,canal,n-1,la,63,,suspect
1795870802.5,canal,n-1,rain_rate,0.2,,
`, Options{Location: cst})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	want := []reading.Reading{
		{Time: time.Date(2026, 11, 28, 21, 0, 0, 0, cst), Site: "canal", Device: "n-1", Quantity: "la", Value: 62.5, Unit: "dB(A)"},
		{Time: time.Date(2026, 11, 28, 21, 0, 1, 0, cst), Site: "canal", Device: "n-1", Quantity: "la", Value: 63, Unit: "dB(A)", Quality: reading.Suspect},
		{Time: time.Unix(1795870802, 5e8), Site: "canal", Device: "n-1", Quantity: "rain_rate", Value: 0.2, Unit: "mm/h"},
	}
	if len(rs) != len(want) {
		t.Fatalf("got %d readings: %+v", len(rs), rs)
	}
	for i := range want {
		if !rs[i].Time.Equal(want[i].Time) || rs[i].Site != want[i].Site || rs[i].Device != want[i].Device ||
			rs[i].Quantity != want[i].Quantity || rs[i].Value != want[i].Value || rs[i].Unit != want[i].Unit || rs[i].Quality != want[i].Quality {
			t.Errorf("reading %d = %+v, want %+v", i, rs[i], want[i])
		}
	}
}

// A handheld meter's export: one column per quantity, site and device from options.
func TestWideFormAndBadRows(t *testing.T) {
	rs, errs := readAll(t, "\ufeffTime,LA,rain_rate\n"+
		"2026-11-28 21:00:00,55.1,\n"+
		"2026-11-28 21:00:01,abc,0\n"+ // bad value: the whole row is skipped
		"yesterday,55,\n"+
		"2026-11-28 21:00:03,170,\n"+ // implausible for la
		"2026-11-28 21:00:04,,\n"+ // empty cells: nothing
		"2026-11-28 21:00:05,56\n"+ // short row: missing cells are empty
		"2026-11-28 21:00:06,57,0.1\n",
		Options{Site: "canal", Device: "meter", Location: cst})
	wantErrs := []string{
		`line 3, column la: "abc" is not a number`,
		`line 4, column time: "yesterday" is not a time`,
		`line 5, column la:`,
	}
	if len(errs) != len(wantErrs) {
		t.Fatalf("errors = %q", errs)
	}
	for i, w := range wantErrs {
		if !strings.HasPrefix(errs[i], w) {
			t.Errorf("error %d = %q, want prefix %q", i, errs[i], w)
		}
	}
	var got []float64
	for _, r := range rs {
		got = append(got, r.Value)
		if r.Site != "canal" || r.Device != "meter" {
			t.Errorf("reading %+v: site/device not from options", r)
		}
	}
	if want := []float64{55.1, 56, 57, 0.1}; len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
		t.Errorf("values = %v, want %v", got, want)
	}
}

// Issue 11: the unit column was ignored, so 0.125 mg/m3 of PM2.5 was read as
// 0.125 ug/m3. Values are now converted to the catalog unit by reading.Convert, the
// function the Modbus and MQTT drivers use, and an unknown unit is a bad row.
func TestUnitColumnConverts(t *testing.T) {
	rs, errs := readAll(t, `time,site,device,quantity,value,unit
2026-11-28 21:00:00,canal,aq-1,pm25,0.125,mg/m3
2026-11-28 21:00:00,canal,aq-1,so2,100,ppb
2026-11-28 21:00:00,canal,aq-1,no2,40,µg/m³
2026-11-28 21:00:00,canal,aq-1,co,1.2,mg/m3
2026-11-28 21:00:00,canal,aq-1,co,1.2,
2026-11-28 21:00:00,canal,wx-1,temperature,50,degF
2026-11-28 21:00:00,canal,n-1,la,62.5,dB(A)
2026-11-28 21:00:00,canal,aq-1,pm25,3,ppm
2026-11-28 21:00:00,canal,aq-1,pm25,34.5,mg/m3
2026-11-28 21:00:00,canal,n-1,la,62.5,dB
`, Options{Location: cst})
	so2, err := reading.Convert("so2", 100, "ppb")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		quantity string
		value    float64
	}{
		{"pm25", 125}, // 0.125 × 1000: exact in binary
		{"so2", so2},  // 100 ppb × 64.07 / 24.4654 (reading.MolarVolume), as a driver converts it
		{"no2", 40},
		{"co", 1.2},
		{"co", 1.2},
		{"temperature", 10}, // (50 − 32) × 5/9
		{"la", 62.5},
	}
	if len(rs) != len(want) {
		t.Fatalf("got %d readings %+v, want %d", len(rs), rs, len(want))
	}
	for i, w := range want {
		q, _ := reading.Lookup(w.quantity)
		if rs[i].Quantity != w.quantity || rs[i].Value != w.value || rs[i].Unit != q.Unit {
			t.Errorf("reading %d = %s %v %s, want %s %v %s", i, rs[i].Quantity, rs[i].Value, rs[i].Unit, w.quantity, w.value, q.Unit)
		}
	}
	wantErrs := []string{
		`line 9, column unit: unknown unit "ppm" for pm25: want ug/m3, mg/m3`,
		`line 10, column value: 34.5 mg/m3 is 34500 ug/m3, outside the possible range of pm25, 0 to 2000 ug/m3`,
		`line 11, column unit: unknown unit "dB" for la: want dB(A)`,
	}
	if strings.Join(errs, "\n") != strings.Join(wantErrs, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(errs, "\n"), strings.Join(wantErrs, "\n"))
	}
}

// Issue 11: an unknown quantity was reported in "column value"; each problem is now
// reported in the column that has it.
func TestProblemsNameTheirColumn(t *testing.T) {
	_, errs := readAll(t, `time,site,device,quantity,value
2026-11-28 21:00:00,canal,aq-1,pm99,3
2026-11-28 21:00:00,canal,aq-1,,3
2026-11-28 21:00:00,canal east,aq-1,pm25,3
2026-11-28 21:00:00,canal,aq/1,pm25,3
1969-12-31 23:00:00,canal,aq-1,pm25,3
`, Options{Location: time.UTC})
	wantErrs := []string{
		`line 2, column quantity: unknown quantity "pm99" (did you mean `,
		`line 3, column quantity: empty`,
		`line 4, column site: "canal east": character ' ' not allowed`,
		`line 5, column device: "aq/1": character '/' not allowed`,
		`line 6, column time: 1969-12-31T23:00:00Z is outside 1970-01-01 to 2200-01-01`,
	}
	if len(errs) != len(wantErrs) {
		t.Fatalf("errors = %q, want %d", errs, len(wantErrs))
	}
	for i, w := range wantErrs {
		if !strings.HasPrefix(errs[i], w) {
			t.Errorf("error %d = %q, want prefix %q", i, errs[i], w)
		}
	}
}

func TestHeaderProblems(t *testing.T) {
	for in, want := range map[string]string{
		"":                                  "line 1: empty file",
		"site,device,la\n":                  "no time column",
		"time,quantity\n":                   "needs both quantity and value",
		"time,quantity,value,la\n":          "use one form",
		"time,site,device\n":                "no value column",
		"time,la,lafast\n":                  `unknown columns lafast`,
		"time,la\n":                         "no site column",
		"time,la,la\n":                      `column "la" appears twice`,
		"time,site,device,pm25,unit\n":      "a unit column needs the long form",
		"time,site,device,quantity,value\n": "",
	} {
		_, err := NewReader(strings.NewReader(in), Options{})
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", in, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: error %v, want it to contain %q", in, err, want)
		}
	}
}

func FuzzReader(f *testing.F) {
	f.Add("time,site,device,quantity,value\n2026-11-28T21:00:00+08:00,canal,n-1,la,62.5\n")
	f.Add("time,la,laeq\n2026-11-28 21:00:00,55,\n1795870802,\"5\n6\",1\n")
	f.Add("time,la\n,,,,\n\"unterminated\n")
	f.Add("time,site,device,quantity,value,unit\n2026-11-28 21:00:00,canal,aq-1,pm25,0.125,mg/m3\n2026-11-28 21:00:00,canal,aq-1,so2,100,ppb\n")
	f.Add("time,quantity,value,unit\n1795870802,co,1e308,ppm\n1795870802,temperature,-1e400,K\n1795870802,la,60,dB\n")
	f.Add("time,quantity,value,unit\n1795870802,no2,40,µg/m³\n1795870802,wind_speed,10,knots\n1795870802,pm99,1,\n")
	f.Fuzz(func(t *testing.T, in string) {
		r, err := NewReader(strings.NewReader(in), Options{Site: "s", Device: "d"})
		if err != nil {
			return
		}
		for range 1000 {
			rs, err := r.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			var re *RowError
			if err != nil && !errors.As(err, &re) {
				t.Fatalf("Next returned %T %v, want *RowError or io.EOF", err, err)
			}
			for _, rd := range rs {
				if err := rd.Validate(); err != nil {
					t.Fatalf("Next returned an invalid reading %+v: %v", rd, err)
				}
			}
		}
	})
}
