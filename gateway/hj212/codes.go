package hj212

import (
	"math"
	"strconv"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// System codes (ST) of the stations envgate serves, and of answers.
const (
	STSurfaceWater = "21" // surface water quality monitoring
	STAir          = "22" // ambient air quality monitoring
	STAcoustic     = "23" // acoustic environment quality monitoring
	STInteraction  = "91" // system interaction: the answers 9011–9014
)

// Command codes (CN) a data logger sends, answers or is sent.
const (
	CNSetTimeout      = "1000" // centre: set the answer timeout and retry count
	CNGetTime         = "1011" // centre: get the site's time; site: upload it
	CNSetTime         = "1012" // centre: set the site's time
	CNTimeCalibration = "1013" // site: ask the centre for the time
	CNGetRtdInterval  = "1061" // get / upload the real-time data interval
	CNSetRtdInterval  = "1062" // set the real-time data interval (RtdInterval, 30–3600 s)
	CNGetMinInterval  = "1063" // get / upload the minute data interval
	CNSetMinInterval  = "1064" // set the minute data interval (MinInterval)
	CNSetPassword     = "1072" // set the access password
	CNRealtime        = "2011" // real-time data
	CNStopRealtime    = "2012" // stop sending real-time data
	CNStatus          = "2021" // equipment running status
	CNStopStatus      = "2022" // stop sending running status
	CNDaily           = "2031" // daily data
	CNRunTimeDaily    = "2041" // equipment running-time daily data
	CNMinute          = "2051" // minute data
	CNHourly          = "2061" // hourly data
	CNPowerOn         = "2081" // data-logger power-on time
	CNRequestAnswer   = "9011" // site: answer to a request (QnRtn)
	CNExecResult      = "9012" // site: result of a request (ExeRtn)
	CNNotifyAnswer    = "9013" // answer to a notification
	CNDataAnswer      = "9014" // answer to a data upload that asked for one
)

// QnRtn values: the site's answer to a request (CN 9011).
const (
	QnReady   = "1"   // ready to execute
	QnRefused = "2"   // request refused
	QnBadPW   = "3"   // wrong password
	QnBadMN   = "4"   // wrong MN
	QnBadST   = "5"   // wrong ST
	QnBadFlag = "6"   // wrong Flag
	QnBadQN   = "7"   // wrong QN
	QnBadCN   = "8"   // unknown CN
	QnBadCRC  = "9"   // CRC error
	QnUnknown = "100" // unknown error
)

// ExeRtn values: the result of a request (CN 9012).
const (
	ExeOK        = "1"   // success
	ExeFailed    = "2"   // failed, reason unknown
	ExeCondition = "3"   // condition error
	ExeTimeout   = "4"   // communication timeout
	ExeBusy      = "5"   // system busy
	ExeFault     = "6"   // system fault
	ExeNoData    = "100" // no data
)

// Data flags (xxxxxx-Flag, HJ 212-2017 Table 8).
const (
	DataNormal      = "N" // instrument normal: valid
	DataStopped     = "F" // instrument stopped
	DataMaintenance = "M" // maintenance
	DataManual      = "S" // manually entered set value
	DataFault       = "D" // instrument fault
	DataCalibration = "C" // calibration
	DataOverRange   = "T" // above the measuring range's upper limit
	DataCommError   = "B" // communication failure between instrument and logger
)

// DataFlags lists the flags of Table 8, for validation.
var DataFlags = []string{DataNormal, DataStopped, DataMaintenance, DataManual, DataFault, DataCalibration, DataOverRange, DataCommError}

// FactorInfo describes a factor code: what it measures, the unit the standard's
// table gives, and the decimals of its data type (N3.1: one decimal).
type FactorInfo struct {
	Code     string
	Name     string
	Unit     string // as the standard's table prints it ("" dimensionless or not given)
	Decimals int
}

// Factors maps envgate's quantity names (gateway/reading, gateway/noise) to their
// default factor codes (HJ 212-2017 Appendix B; docs/hj212.md lists the sources and
// the unconfirmed codes, such as a05024 for ozone). The uplink's configuration can
// override each one.
var Factors = map[string]FactorInfo{
	// Air, Table B.2. The PM codes' unit is printed as ng/m3 in the table; ambient
	// stations send ug/m3 (docs/hj212.md).
	"pm25":           {"a34004", "PM2.5", "ug/m3", 3},
	"pm10":           {"a34002", "PM10", "ug/m3", 3},
	"pm1":            {"a34005", "PM1.0", "ug/m3", 3},
	"so2":            {"a21026", "SO2", "mg/m3", 2},
	"no2":            {"a21004", "NO2", "mg/m3", 1},
	"co":             {"a21005", "CO", "mg/m3", 3},
	"o3":             {"a05024", "O3", "", 3},
	"temperature":    {"a01001", "air temperature", "degC", 1},
	"humidity":       {"a01002", "humidity", "%", 1},
	"pressure":       {"a01006", "air pressure", "kPa", 2},
	"wind_speed":     {"a01007", "wind speed", "m/s", 1},
	"wind_direction": {"a01008", "wind direction", "deg", 0},
	// Surface water, Table B.1.
	"ph":                {"w01001", "pH", "", 2},
	"do":                {"w01009", "dissolved oxygen", "mg/L", 1},
	"water_temperature": {"w01010", "water temperature", "degC", 1},
	"conductivity":      {"w01014", "conductivity", "uS/cm", 1},
	"bod5":              {"w01017", "BOD5", "mg/L", 1},
	"cod":               {"w01018", "COD", "mg/L", 1},
	"codmn":             {"w01019", "permanganate index", "mg/L", 1},
	"tn":                {"w21001", "total nitrogen", "mg/L", 2},
	"nh3n":              {"w21003", "ammonia nitrogen", "mg/L", 2},
	"tp":                {"w21011", "total phosphorus", "mg/L", 2},
	"turbidity":         {"w01003", "turbidity", "NTU", 1},
	// Noise, Table B.3: all dB, N3.1.
	"la":       {"LA", "A-weighted level", "dB", 1},
	"laeq":     {"Leq", "equivalent level", "dB", 1},
	"laeq_1m":  {"Leq", "equivalent level", "dB", 1},
	"laeq_1h":  {"Leq", "equivalent level", "dB", 1},
	"laeq_24h": {"Leq", "equivalent level", "dB", 1},
	"l5_1h":    {"L5", "L5", "dB", 1},
	"l10_1h":   {"L10", "L10", "dB", 1},
	"l50_1h":   {"L50", "L50", "dB", 1},
	"l90_1h":   {"L90", "L90", "dB", 1},
	"l95_1h":   {"L95", "L95", "dB", 1},
	"lmax_1h":  {"LMx", "maximum level", "dB", 1},
	"lmin_1h":  {"LMn", "minimum level", "dB", 1},
	"ld":       {"Ld", "day equivalent level", "dB", 1},
	"ln":       {"Ln", "night equivalent level", "dB", 1},
	"ldn":      {"Ldn", "day-night level", "dB", 1},
}

// FormatQN writes t in loc as a QN: YYYYMMDDhhmmsszzz.
func FormatQN(t time.Time, loc *time.Location) string {
	t = t.In(loc)
	b := make([]byte, 0, 17)
	b = t.AppendFormat(b, TimeLayout) // QN is a TimeLayout time, then three digits of ms
	ms := t.Nanosecond() / 1e6
	return string(append(b, byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10)))
}

// ParseQN reads a QN in loc.
func ParseQN(qn string, loc *time.Location) (time.Time, error) {
	if !digits(qn, 17) {
		return time.Time{}, &time.ParseError{Layout: "YYYYMMDDhhmmsszzz", Value: qn, Message: ": want 17 digits"}
	}
	t, err := time.ParseInLocation(TimeLayout, qn[:14], loc)
	if err != nil {
		return time.Time{}, err
	}
	ms, _ := strconv.Atoi(qn[14:])
	return t.Add(time.Duration(ms) * time.Millisecond), nil
}

// FormatValue writes v with decimals digits after the point, rounded half to even on
// its shortest decimal form (reading.RoundHalfEven: 55.05 to one decimal is 55.0, 55.15
// is 55.2), as reports round; never in exponent form, never "-0". NaN and infinities
// have no packet form: they are written as "" and the caller must not send them.
func FormatValue(v float64, decimals int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return ""
	}
	r := reading.RoundHalfEven(v, decimals)
	if r == 0 {
		r = 0 // no "-0.0"
	}
	return strconv.FormatFloat(r, 'f', decimals, 64)
}
