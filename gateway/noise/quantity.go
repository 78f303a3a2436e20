package noise

import (
	"slices"

	"github.com/envgate/envgate/gateway/reading"
)

// Input quantities of the catalog (gateway/reading/quantity.go) the Aggregator consumes.
const (
	inLA        = "la"         // instantaneous A-weighted level
	inLAeq      = "laeq"       // a smart meter's own Leq over its period
	inRainRate  = "rain_rate"  // mm/h, weather validity
	inWindSpeed = "wind_speed" // m/s, weather validity
)

// Derived quantities the Aggregator emits. Their Time is the start of the window they
// describe (docs/data-model.md), except QuantityLmaxBurst. Quantities gives their
// catalog entries, which gateway/derive registers (reading.Register).
const (
	QuantityLAeqMinute       = "laeq_1m"          // dB(A): LAeq of a clock minute
	QuantityLAeqHourly       = "laeq_1h"          // dB(A): LAeq of a clock hour
	QuantityL5Hourly         = "l5_1h"            // dB(A): L5 of the hour
	QuantityL10Hourly        = "l10_1h"           // dB(A): L10 of the hour
	QuantityL50Hourly        = "l50_1h"           // dB(A): L50 of the hour
	QuantityL90Hourly        = "l90_1h"           // dB(A): L90 of the hour
	QuantityL95Hourly        = "l95_1h"           // dB(A): L95 of the hour
	QuantityLmaxHourly       = "lmax_1h"          // dB(A): largest sample of the hour
	QuantityLminHourly       = "lmin_1h"          // dB(A): smallest sample of the hour
	QuantitySDHourly         = "sd_1h"            // dB: sample standard deviation of the hour
	QuantityVDRHourly        = "vdr_1h"           // %: valid-data rate of the hour
	QuantityExceedanceHourly = "exceedance_1h"    // dB: laeq_1h minus the limit at the hour's start
	QuantityLd               = "ld"               // dB(A): LAeq of a day period
	QuantityLn               = "ln"               // dB(A): LAeq of a night period
	QuantityExceedanceDay    = "exceedance_day"   // dB: ld minus the day limit
	QuantityExceedanceNight  = "exceedance_night" // dB: ln minus the night limit
	QuantityVDRPeriod        = "vdr_period"       // %: valid-data rate of a day or night period
	QuantityLdn              = "ldn"              // dB(A): day-night level of a day and its following night
	QuantityLAeqDaily        = "laeq_24h"         // dB(A): LAeq of a calendar day, local midnight to midnight
	QuantityVDRDaily         = "vdr_24h"          // %: valid-data rate of a calendar day
	QuantityLdenDay          = "lden_day"         // dB(A): Lday, the EU day part of Lden
	QuantityLdenEvening      = "lden_evening"     // dB(A): Levening, the EU evening part of Lden (no penalty)
	QuantityLdenNight        = "lden_night"       // dB(A): Lnight, the EU night part of Lden (no penalty)
	QuantityLden             = "lden"             // dB(A): EU day-evening-night level of the Lden 24 hours
	QuantityLmaxBurst        = "lmax_burst"       // dB(A): peak of a night burst event, at its time
)

// Units of the derived quantities (ASCII, like the catalog).
const (
	unitLevel = "dB(A)" // an A-weighted level
	unitDelta = "dB"    // a level difference or spread, not a level
	unitRate  = "%"
)

// derived is the catalog entries of the derived quantities, in emission order.
var derived = []reading.Quantity{
	{Name: QuantityLAeqMinute, Unit: unitLevel, Domain: reading.Noise, Min: 0, Max: 160, Doc: "A-weighted equivalent level of a clock minute"},
	{Name: QuantityLAeqHourly, Unit: unitLevel, Domain: reading.Noise, Min: 0, Max: 160, Doc: "A-weighted equivalent level of a clock hour"},
	{Name: QuantityL5Hourly, Unit: unitLevel, Domain: reading.Noise, Min: 0, Max: 160, Doc: "level exceeded by 5 % of the hour's samples"},
	{Name: QuantityL10Hourly, Unit: unitLevel, Domain: reading.Noise, Min: 0, Max: 160, Doc: "level exceeded by 10 % of the hour's samples"},
	{Name: QuantityL50Hourly, Unit: unitLevel, Domain: reading.Noise, Min: 0, Max: 160, Doc: "level exceeded by 50 % of the hour's samples"},
	{Name: QuantityL90Hourly, Unit: unitLevel, Domain: reading.Noise, Min: 0, Max: 160, Doc: "level exceeded by 90 % of the hour's samples"},
	{Name: QuantityL95Hourly, Unit: unitLevel, Domain: reading.Noise, Min: 0, Max: 160, Doc: "level exceeded by 95 % of the hour's samples"},
	{Name: QuantityLmaxHourly, Unit: unitLevel, Domain: reading.Noise, Min: 0, Max: 160, Doc: "largest sample of the hour"},
	{Name: QuantityLminHourly, Unit: unitLevel, Domain: reading.Noise, Min: 0, Max: 160, Doc: "smallest sample of the hour"},
	{Name: QuantitySDHourly, Unit: unitDelta, Domain: reading.Noise, Min: 0, Max: 160, Doc: "sample standard deviation (n-1) of the hour's samples"},
	{Name: QuantityVDRHourly, Unit: unitRate, Domain: reading.Noise, Min: 0, Max: 100, Doc: "valid-data rate of the hour (HJ 906-2017)"},
	{Name: QuantityExceedanceHourly, Unit: unitDelta, Domain: reading.Noise, Min: -160, Max: 160, Doc: "hourly LAeq minus the GB 3096 limit of the period the hour starts in"},
	{Name: QuantityLd, Unit: unitLevel, Domain: reading.Noise, Min: 0, Max: 160, Doc: "equivalent level of a day period (GB 3096-2008)"},
	{Name: QuantityLn, Unit: unitLevel, Domain: reading.Noise, Min: 0, Max: 160, Doc: "equivalent level of a night period, labelled by its start date"},
	{Name: QuantityExceedanceDay, Unit: unitDelta, Domain: reading.Noise, Min: -160, Max: 160, Doc: "day-period LAeq (ld) minus the GB 3096 day limit"},
	{Name: QuantityExceedanceNight, Unit: unitDelta, Domain: reading.Noise, Min: -160, Max: 160, Doc: "night-period LAeq (ln) minus the GB 3096 night limit"},
	{Name: QuantityVDRPeriod, Unit: unitRate, Domain: reading.Noise, Min: 0, Max: 100, Doc: "valid-data rate of a day or night period"},
	{Name: QuantityLdn, Unit: unitLevel, Domain: reading.Noise, Min: 0, Max: 170, Doc: "day-night level, 10 dB night penalty, the configured day/night hours"},
	{Name: QuantityLAeqDaily, Unit: unitLevel, Domain: reading.Noise, Min: 0, Max: 160, Doc: "equivalent level of a calendar day, local midnight to midnight"},
	{Name: QuantityVDRDaily, Unit: unitRate, Domain: reading.Noise, Min: 0, Max: 100, Doc: "valid-data rate of a calendar day"},
	{Name: QuantityLdenDay, Unit: unitLevel, Domain: reading.Noise, Min: 0, Max: 160, Doc: "Lday: energy mean of the hourly LAeq of the EU day (default 07-19)"},
	{Name: QuantityLdenEvening, Unit: unitLevel, Domain: reading.Noise, Min: 0, Max: 160, Doc: "Levening: energy mean of the hourly LAeq of the EU evening (default 19-23), no penalty"},
	{Name: QuantityLdenNight, Unit: unitLevel, Domain: reading.Noise, Min: 0, Max: 160, Doc: "Lnight: energy mean of the hourly LAeq of the EU night (default 23-07), no penalty"},
	{Name: QuantityLden, Unit: unitLevel, Domain: reading.Noise, Min: 0, Max: 170, Doc: "EU day-evening-night level (2002/49/EC, configured hours, default 07/19/23) from hourly LAeq"},
	{Name: QuantityLmaxBurst, Unit: unitLevel, Domain: reading.Noise, Min: 0, Max: 160, Doc: "peak level of a night burst event above the night limit plus margin"},
}

var derivedByName = func() map[string]reading.Quantity {
	m := make(map[string]reading.Quantity, len(derived))
	for _, q := range derived {
		m[q.Name] = q
	}
	return m
}()

// Quantities returns the catalog entries of the quantities the Aggregator derives, for
// the integrator to add to gateway/reading. Ranges are "impossible beyond", like the
// catalog's: Ldn and Lden carry a penalty of up to 10 dB on top of a 160 dB level.
func Quantities() []reading.Quantity { return slices.Clone(derived) }
