package influx

import (
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
