package reading

import "slices"

// Domain names the InfluxDB measurement a quantity is written to.
type Domain string

// The measurements of docs/data-model.md.
const (
	Noise   Domain = "noise"   // sound levels, dB(A)
	Air     Domain = "air"     // particulates and gases
	Water   Domain = "water"   // surface-water section parameters
	Weather Domain = "weather" // meteorology next to the sensors
	Health  Domain = "health"  // the gateway's own pipeline health
)

// Quantity is one entry of the catalog: a canonical name (the InfluxDB field key), its
// unit, its measurement and the range outside which a value is physically impossible.
type Quantity struct {
	Name   string
	Unit   string
	Domain Domain
	Min    float64 // smallest possible value, inclusive
	Max    float64 // largest possible value, inclusive
	Doc    string
}

// Plausible reports whether v lies within the quantity's possible range.
func (q Quantity) Plausible(v float64) bool { return v >= q.Min && v <= q.Max }

// The catalog. Names are InfluxDB field keys: lowercase, no unit in the name, never
// reused with another meaning or type. Ranges are "impossible beyond", not limits:
// they reject a decoding error (a register read in the wrong word order), not pollution.
// Units are ASCII so they survive every terminal and CSV export; docs/data-model.md
// gives the usual symbols.
var catalog = []Quantity{
	// Noise (GB 3096-2008; sound level meters cover roughly 20-140 dB).
	{"la", "dB(A)", Noise, 0, 160, "A-weighted sound level sampled by the sensor (LAF or LAS, 1 s or faster)"},
	{"laeq", "dB(A)", Noise, 0, 160, "A-weighted equivalent level computed by a smart meter over its own period"},

	// Air (GB 3095 reports particulates and gases in ug/m3, CO in mg/m3, at reference conditions).
	{"pm1", "ug/m3", Air, 0, 2000, "PM1.0 mass concentration"},
	{"pm25", "ug/m3", Air, 0, 2000, "PM2.5 mass concentration"},
	{"pm10", "ug/m3", Air, 0, 5000, "PM10 mass concentration"},
	{"so2", "ug/m3", Air, 0, 10000, "sulphur dioxide"},
	{"no2", "ug/m3", Air, 0, 5000, "nitrogen dioxide"},
	{"o3", "ug/m3", Air, 0, 5000, "ozone"},
	{"co", "mg/m3", Air, 0, 200, "carbon monoxide"},

	// Weather (also the validity channel for noise: rain and wind).
	{"temperature", "degC", Weather, -60, 70, "air temperature"},
	{"humidity", "%", Weather, 0, 100, "relative humidity"},
	{"pressure", "hPa", Weather, 300, 1100, "barometric pressure"},
	{"wind_speed", "m/s", Weather, 0, 75, "wind speed"},
	{"wind_direction", "deg", Weather, 0, 360, "wind direction, from true north, clockwise"},
	{"rain_rate", "mm/h", Weather, 0, 500, "rainfall intensity"},

	// Water (GB 3838-2002 Table 1 parameters an automatic station measures).
	{"water_temperature", "degC", Water, -5, 50, "water temperature"},
	{"ph", "pH", Water, 0, 14, "pH"},
	{"do", "mg/L", Water, 0, 25, "dissolved oxygen"},
	{"codmn", "mg/L", Water, 0, 200, "permanganate index CODMn"},
	{"cod", "mg/L", Water, 0, 2000, "chemical oxygen demand COD (dichromate method, CODCr)"},
	{"bod5", "mg/L", Water, 0, 1000, "five-day biochemical oxygen demand BOD5"},
	{"nh3n", "mg/L", Water, 0, 200, "ammonia nitrogen NH3-N"},
	{"tp", "mg/L", Water, 0, 50, "total phosphorus (as P)"},
	{"tn", "mg/L", Water, 0, 200, "total nitrogen (as N)"},
	{"conductivity", "uS/cm", Water, 0, 200000, "electrical conductivity"},
	{"turbidity", "NTU", Water, 0, 10000, "turbidity"},

	// Health: the gateway reports on itself through its own buffer, so operators of many
	// boxes behind 4G NAT see them in InfluxDB without scraping each box.
	{"buffer_bytes", "bytes", Health, 0, 1 << 50, "bytes held by the durable buffer"},
	{"buffer_unsent", "1", Health, 0, 1 << 53, "readings in the buffer not yet delivered to the slowest sink"},
	{"buffer_oldest_unsent", "s", Health, 0, 1 << 40, "age of the oldest undelivered reading"},
	{"buffer_dropped", "1", Health, 0, 1 << 53, "readings dropped by the buffer's bounds since the gateway started"},
	{"buffer_quarantined", "1", Health, 0, 1 << 53, "corrupt records quarantined since the gateway started"},
	{"sink_written", "1", Health, 0, 1 << 53, "readings delivered by all sinks since the gateway started"},
	{"uptime", "s", Health, 0, 1 << 40, "seconds since the gateway started"},
}

var byName = func() map[string]Quantity {
	m := make(map[string]Quantity, len(catalog))
	for _, q := range catalog {
		m[q.Name] = q
	}
	return m
}()

// Register adds quantities derived by other packages (noise levels, AQI, water class)
// to the catalog. It is meant for package initialisation, before any reading is
// validated: it is not safe to call concurrently with Lookup. Registering a name again
// with the same entry is a no-op; with a different entry it panics (a programming
// error: one name, one meaning).
func Register(qs ...Quantity) {
	for _, q := range qs {
		if old, ok := byName[q.Name]; ok {
			if old != q {
				panic("reading: quantity " + q.Name + " registered twice with different entries")
			}
			continue
		}
		if err := CheckName(q.Name); err != nil {
			panic("reading: quantity " + q.Name + ": " + err.Error())
		}
		byName[q.Name] = q
		catalog = append(catalog, q)
	}
}

// Lookup returns the catalog entry of a canonical quantity name.
func Lookup(name string) (Quantity, bool) {
	q, ok := byName[name]
	return q, ok
}

// Quantities returns a copy of the catalog in documentation order.
func Quantities() []Quantity { return slices.Clone(catalog) }
