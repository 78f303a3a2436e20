package influx

import (
	"github.com/influxdata/influxdb-client-go/v2/api/write"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

func TestLine(t *testing.T) {
	at := time.Date(2026, 11, 28, 8, 0, 0, 123456789, time.UTC) // 1795852800.123456789
	suspect := reading.New(at, "s", "d", "la", 55.25)
	suspect.Quality = reading.Suspect
	bad := reading.New(at, "s", "d", "ph", 15)
	bad.Quality = reading.Bad
	tests := []struct {
		name      string
		r         reading.Reading
		precision time.Duration
		want      string
	}{
		{"integral value stays a float", reading.New(at, "canal-east-3", "pm-1", "pm25", 35.0), time.Millisecond,
			`air,device=pm-1,gateway=gw-1,site=canal-east-3 pm25=35 1795852800123`},
		{"CJK site", reading.New(at, "运河东-3", "噪声.1", "la", 61.3), time.Second,
			`noise,device=噪声.1,gateway=gw-1,site=运河东-3 la=61.3 1795852800`},
		{"space and comma escaped", reading.New(at, "运河东 3,北", "pm 1", "pm10", 80.5), time.Second,
			`air,device=pm\ 1,gateway=gw-1,site=运河东\ 3\,北 pm10=80.5 1795852800`},
		{"equals sign escaped", reading.New(at, "a=b", "d", "ph", 7.25), time.Second,
			`water,device=d,gateway=gw-1,site=a\=b ph=7.25 1795852800`},
		{"suspect adds quality field", suspect, time.Second,
			`noise,device=d,gateway=gw-1,site=s la=55.25,la_quality=1i 1795852800`},
		{"bad quality encoded as 2", bad, time.Second,
			`water,device=d,gateway=gw-1,site=s ph=15,ph_quality=2i 1795852800`},
		{"negative", reading.New(at, "s", "d", "temperature", -12.5), time.Second,
			`weather,device=d,gateway=gw-1,site=s temperature=-12.5 1795852800`},
		{"small value", reading.New(at, "s", "d", "tp", 0.00001), time.Second,
			`water,device=d,gateway=gw-1,site=s tp=1e-05 1795852800`},
		{"large value", reading.New(at, "s", "d", "buffer_bytes", 1<<50), time.Second,
			`health,device=d,gateway=gw-1,site=s buffer_bytes=1.125899906842624e+15 1795852800`},
		{"microseconds", reading.New(at, "s", "d", "do", 8), time.Microsecond,
			`water,device=d,gateway=gw-1,site=s do=8 1795852800123456`},
		{"nanoseconds", reading.New(at, "s", "d", "do", 8), time.Nanosecond,
			`water,device=d,gateway=gw-1,site=s do=8 1795852800123456789`},
		{"time zone does not matter", reading.New(at.In(time.FixedZone("CST", 8*3600)), "s", "d", "do", 8), time.Second,
			`water,device=d,gateway=gw-1,site=s do=8 1795852800`},
	}
	for _, tt := range tests {
		if got := Line(tt.r, "gw-1", tt.precision); got != tt.want {
			t.Errorf("%s: Line(%+v, %v) =\n%s\nwant\n%s", tt.name, tt.r, tt.precision, got, tt.want)
		}
	}
}

func BenchmarkLine(b *testing.B) {
	r := reading.New(time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC), "运河东-3", "pm-1", "pm25", 35.2)
	b.ReportAllocs()
	for b.Loop() {
		_ = Line(r, "gw-1", time.Millisecond)
	}
}

// clientLine is Line as it was written before appendLine: through the client library's
// write.Point encoder. appendLine must write the same bytes.
func clientLine(r reading.Reading, gatewayID string, precision time.Duration) string {
	q, _ := reading.Lookup(r.Quantity)
	p := write.NewPointWithMeasurement(string(q.Domain)).
		AddTag("device", r.Device).
		AddTag("gateway", gatewayID).
		AddTag("site", r.Site).
		AddField(r.Quantity, r.Value).
		SetTime(r.Time)
	if r.Quality != reading.Good {
		p.AddField(r.Quantity+"_quality", int64(r.Quality))
	}
	if r.Reason != reading.NoReason {
		p.AddField(r.Quantity+"_reason", r.Reason.String())
	}
	var sb strings.Builder
	write.PointToLineProtocolBuffer(p, &sb, precision)
	return strings.TrimSuffix(sb.String(), "\n")
}

// oddNames are names no valid reading has but dead-lettered ones may: every character
// the encoders escape, invalid UTF-8, empty.
var oddNames = []string{"", "plain", "a b", "a,b", "a=b", `a\b`, "a\nb", "a\rb", "a\tb", "\xff", "a\xc3", "运河 东,=3",
	`"quoted"`, " ", "=", ",", "\\ ,=\n\r\t", "é\u2028x", "\x00", "\x7f"}

func TestAppendLineMatchesClient(t *testing.T) {
	at := time.Date(2026, 11, 28, 8, 0, 0, 123456789, time.UTC)
	values := []float64{0, math.Copysign(0, -1), 35, 35.25, -12.5, 1e-5, 1e-4, 123456789012, 1e21, 1e20, 1 << 50, 0.1 + 0.2,
		math.MaxFloat64, math.SmallestNonzeroFloat64, math.Inf(1), math.Inf(-1), math.NaN()}
	times := []time.Time{at, {}, time.Unix(0, 0), time.Unix(-1, 5), at.In(time.FixedZone("CST", 8*3600))}
	quantities := []string{"pm25", "la", "ph", "buffer_bytes", "no such", "a b=c", ""}
	n := 0
	for _, name := range oddNames {
		for i, v := range values {
			for j, tm := range times {
				for _, prec := range []time.Duration{time.Second, time.Millisecond, time.Microsecond, time.Nanosecond} {
					r := reading.New(tm, name, oddNames[(i+j)%len(oddNames)], quantities[(i+j)%len(quantities)], v)
					r.Quality = reading.Quality((i + j) % 4)
					if r.Quality != reading.Good {
						r.Reason = reading.Reason((i + 2*j) % 5)
					}
					gw := oddNames[(i*3+j)%len(oddNames)]
					if got, want := Line(r, gw, prec), clientLine(r, gw, prec); got != want {
						t.Fatalf("Line(%+v, %q, %v) =\n%q\nclient library writes\n%q", r, gw, prec, got, want)
					}
					n++
				}
			}
		}
	}
	t.Logf("%d readings encoded alike", n)
}

func FuzzAppendLine(f *testing.F) {
	for i, s := range oddNames {
		f.Add(s, oddNames[(i+1)%len(oddNames)], "pm25", 35.25, int64(1795852800123456789), uint8(i%4), uint8(i%5))
	}
	f.Add("s", "d", "la", 1e21, int64(0), uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, site, device, quantity string, v float64, ns int64, quality, reason uint8) {
		r := reading.New(time.Unix(0, ns), site, device, quantity, v)
		r.Quality = reading.Quality(quality)
		r.Reason = reading.Reason(reason % 5)
		if got, want := Line(r, device, time.Millisecond), clientLine(r, device, time.Millisecond); got != want {
			t.Fatalf("Line(%+v) =\n%q\nclient library writes\n%q", r, got, want)
		}
	})
}
