package screen_test

import (
	"testing"
	"time"

	"github.com/envgate/envgate/drivers/sim"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/screen"
)

// A healthy simulated box (drivers/sim: realistic diurnal cycles, noise, bursts,
// episodes, the sensors' resolutions) gets no flag from the default rules over a week
// in each season: noise every second (two days), air and weather every 10 s, water
// every 5 minutes. The weeks are fixed (the simulator is a pure function of time), so
// the test judges the same data on any day it runs.
func TestSimulatorWeekHasNoFalseFlags(t *testing.T) {
	for _, start := range []time.Time{
		time.Date(2026, 1, 12, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 13, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 7, 13, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 12, 0, 0, 0, 0, time.UTC),
	} {
		for _, c := range []struct {
			kind       string
			quantities []string
			every      time.Duration
			days       int
		}{
			{"noise", []string{"la"}, time.Second, 2},
			{"air", []string{"pm1", "pm25", "pm10", "so2", "no2", "o3", "co"}, 10 * time.Second, 7},
			{"weather", []string{"temperature", "humidity", "pressure", "wind_speed", "wind_direction", "rain_rate"}, 10 * time.Second, 7},
			{"water", []string{"water_temperature", "ph", "do", "codmn", "nh3n", "tp", "conductivity", "turbidity"}, 5 * time.Minute, 7},
		} {
			for seed := int64(1); seed <= 3; seed++ {
				s := screen.New(func(k screen.Key) (screen.Rules, bool) { return screen.Defaults(k.Quantity), true }, nil)
				var out []reading.Reading
				flagged := map[string]int{}
				n := 0
				for at := start; at.Before(start.AddDate(0, 0, c.days)); at = at.Add(c.every) {
					for _, q := range c.quantities {
						r := reading.New(at, "site", c.kind+"-1", q, sim.Value(c.kind, seed, c.kind+"-1", q, at))
						out = s.Add(out[:0], r, at)
						for _, x := range out {
							if x.Reason != reading.NoReason {
								if flagged[q+" "+x.Reason.String()]++; flagged[q+" "+x.Reason.String()] == 1 {
									t.Errorf("week of %s, %s seed %d: %s %v at %s flagged %s", start.Format(time.DateOnly),
										c.kind, seed, q, x.Value, x.Time.Format(time.DateTime), x.Reason)
								}
							}
						}
						n++
					}
				}
				if len(flagged) > 0 {
					t.Errorf("week of %s, %s seed %d: %d readings, flagged %v", start.Format(time.DateOnly), c.kind, seed, n, flagged)
				}
			}
		}
	}
}
