package noise

// Zone is a GB 3096-2008 acoustic functional zone class: "0", "1", "2", "3", "4a" or
// "4b". The class of a sensor comes from the city's zoning plan (声环境功能区划), i.e.
// from configuration: whether a canal bank is 4a, for instance, is the plan's decision.
type Zone string

// The GB 3096-2008 classes.
const (
	Zone0  Zone = "0"  // convalescent areas needing special quiet
	Zone1  Zone = "1"  // mainly housing, medical, education, research, administration
	Zone2  Zone = "2"  // commerce, markets, mixed housing/commerce/industry
	Zone3  Zone = "3"  // industry, warehousing, logistics
	Zone4a Zone = "4a" // both sides of trunk roads, urban rail (surface), inland waterways
	Zone4b Zone = "4b" // both sides of railway trunk lines
)

// limits is the GB 3096-2008 table of LAeq limits in dB(A), day and night
// (docs/standards.md §1.1, [S]: several independent copies of the 2008 table; not the 1993 one).
var limits = map[Zone][2]float64{
	Zone0:  {50, 40},
	Zone1:  {55, 45},
	Zone2:  {60, 50},
	Zone3:  {65, 55},
	Zone4a: {70, 55},
	// 4b night 60 applies to railway trunk projects whose EIA was approved from
	// 2011-01-01; for older lines crossing a city the background without trains is held
	// to 70/55 (docs/standards.md §1.1) — configure that with Config.NightLimit.
	Zone4b: {70, 60},
}

// Limits returns the GB 3096-2008 day and night LAeq limits of zone z in dB(A), and
// false for a string that is not a class.
func Limits(z Zone) (day, night float64, ok bool) {
	l, ok := limits[z]
	return l[0], l[1], ok
}
