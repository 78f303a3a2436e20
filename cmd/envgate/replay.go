package main

import (
	"bufio"
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/envgate/envgate/config"
	"github.com/envgate/envgate/gateway/air"
	"github.com/envgate/envgate/gateway/derive"
	"github.com/envgate/envgate/gateway/influx"
	"github.com/envgate/envgate/gateway/maint"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/replay"
)

// replayUsage is the synopsis of envgate replay.
const replayUsage = "usage: envgate replay -c FILE [flags] INPUT.csv   (INPUT - reads stdin; flags may also follow INPUT)"

// maxReportedRows bounds the bad rows replay describes one by one; the rest are counted.
const maxReportedRows = 20

// cmdReplay runs recorded readings (CSV, docs/replay.md) through the derivation of a
// config's noise, air and water monitors and prints the derived series as line
// protocol or CSV.
func cmdReplay(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file whose noise, air and water monitors derive the series (required)")
	site := fs.String("site", "", "site of rows without a site column")
	device := fs.String("device", "", "device of rows without a device column")
	format := fs.String("format", "lp", "output: lp (InfluxDB line protocol, ms) or csv")
	raw := fs.Bool("raw", false, "also print the input readings")
	noFlush := fs.Bool("no-flush", false, "at the end, leave the windows still open instead of closing them")
	maintFile := fs.String("maint", "", "maintenance log whose windows keep readings out of the derivations, as the gateway did "+
		"(default: the config's state_dir/"+maint.FileName+" if there is one; none: apply no windows)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, replayUsage)
		fs.PrintDefaults()
	}
	inputs, err := parseInterleaved(fs, args)
	if err != nil {
		return 2 // the flag package has printed the error and the usage
	}
	// Say exactly what is wrong, every problem at once, then the one-line usage.
	var problems []string
	if *path == "" {
		problems = append(problems, "-c FILE is required: the config whose noise, air and water monitors derive the series")
	}
	switch len(inputs) {
	case 0:
		problems = append(problems, "no input: give INPUT.csv, or - for stdin")
	case 1:
	default:
		problems = append(problems, fmt.Sprintf("one input file, got %d: %s", len(inputs), strings.Join(inputs, " ")))
	}
	if *format != "lp" && *format != "csv" {
		problems = append(problems, fmt.Sprintf("--format %q: want lp or csv", *format))
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintf(stderr, "envgate replay: %s\n", p)
		}
		fmt.Fprintf(stderr, "%s\n(envgate replay -h lists the flags)\n", replayUsage)
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "envgate replay: %v\n", err)
		return 1
	}
	set, err := buildDerive(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "envgate replay: %s: %v\n", *path, err)
		return 1
	}
	set.ForReplay()
	if set.Empty() {
		fmt.Fprintf(stderr, "envgate replay: %s has no noise.sites, air.sites or water.sections: nothing to derive\n", *path)
		return 1
	}
	windows, err := replayMaint(*maintFile, cfg.Gateway.StateDir)
	if err != nil {
		fmt.Fprintf(stderr, "envgate replay: %v\n", err)
		return 1
	}
	if windows != nil {
		set.Exclude(windows.Covers)
	}
	input := inputs[0]
	var in io.Reader = os.Stdin
	if input != "-" {
		// A regular file only (a FIFO would block, a device never end); any size.
		// A pipe can still come in on stdin ("-").
		f, err := config.OpenFile(input)
		if err != nil {
			fmt.Fprintf(stderr, "envgate replay: %v\n", err)
			return 1
		}
		defer f.Close()
		in = f
	}
	// Local times in the file are in the monitors' zone: noise's, else air's, else
	// water's (defaulted only when that section has monitors), else Asia/Shanghai.
	zone := cmp.Or(cfg.Noise.Timezone, cfg.Air.Timezone, cfg.Water.Timezone, config.DefaultNoiseTimezone)
	loc, err := config.LoadLocation(zone)
	if err != nil {
		fmt.Fprintf(stderr, "envgate replay: timezone %q: %v\n", zone, err)
		return 1
	}
	rd, err := replay.NewReader(bufio.NewReaderSize(in, 1<<16), replay.Options{Site: *site, Device: *device, Location: loc})
	if err != nil {
		fmt.Fprintf(stderr, "envgate replay: %s: %v\n", input, err)
		return 1
	}

	out := bufio.NewWriterSize(stdout, 1<<16)
	emit := newEmitter(out, *format, cfg.Gateway.ID)
	var (
		derived        []reading.Reading
		last           time.Time
		rows, bad, nIn int
		tally          = newReplayTally()
	)
	for {
		rs, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		rows++
		var re *replay.RowError
		if errors.As(err, &re) {
			bad++
			if bad <= maxReportedRows {
				fmt.Fprintf(stderr, "%s: %v\n", input, re)
			}
			continue
		}
		if err != nil {
			fmt.Fprintf(stderr, "envgate replay: %s: %v\n", input, err)
			return 1
		}
		nIn += len(rs)
		for _, r := range rs {
			if r.Time.After(last) {
				last = r.Time
			}
			tally.input(r)
		}
		if *raw {
			emit(rs)
		}
		derived = set.Add(derived[:0], rs...)
		tally.output(derived)
		emit(derived)
	}
	if !*noFlush && !last.IsZero() {
		derived = set.Flush(derived[:0], last)
		tally.output(derived)
		emit(derived)
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintf(stderr, "envgate replay: write: %v\n", err)
		return 1
	}
	code := 0
	if bad > 0 {
		fmt.Fprintf(stderr, "%s: %d of %d rows skipped (%d described above), %d readings replayed\n", input, bad, rows, min(bad, maxReportedRows), nIn)
		code = 1
	}
	if !tally.report(stderr, input, *path, cfg, set, last) {
		code = 1
	}
	if ex := set.Excluded(); len(ex) > 0 {
		for _, d := range slices.Sorted(maps.Keys(ex)) {
			fmt.Fprintf(stderr, "%s: %d readings of %s kept out of the derivations: measured in its maintenance or calibration windows\n", input, ex[d], d)
		}
	}
	return code
}

// replayMaint reads the maintenance log replay applies: flag names it ("none": no
// log); "" is the state directory's, if it has one (a replay on another machine than
// the gateway's finds none, and applies no windows). The log holds the last
// maint.MaxPerDevice windows of each device: older recordings may predate it.
func replayMaint(flag, stateDir string) (*maint.Log, error) {
	switch flag {
	case "none":
		return nil, nil
	case "":
		l, err := maint.Read(maintPath(stateDir))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return l, err
	}
	return maint.Read(flag)
}

// replayTally follows what replay fed the derivation and what came out, so that an
// empty or short output is explained on stderr: readings no monitor took, readings out
// of time order or dropped as late, air readings too sparse for their configured
// sample.
type replayTally struct {
	readings   int
	outOfOrder int                           // readings older than an earlier one of their series
	latest     map[seriesKey]time.Time       // newest time of each series
	minGap     map[seriesKey]time.Duration   // smallest positive step between a series' readings in file order
	means      map[[2]string]int             // derived 1-h air means by site and device
	seen       map[[2]string]map[string]bool // quantities of each site and device
	order      [][2]string                   // site and device pairs in order of appearance
}

// seriesKey names a series of readings: a quantity of a device at a site.
type seriesKey struct{ site, device, quantity string }

func newReplayTally() *replayTally {
	return &replayTally{latest: map[seriesKey]time.Time{}, minGap: map[seriesKey]time.Duration{},
		means: map[[2]string]int{}, seen: map[[2]string]map[string]bool{}}
}

// input notes a reading read from the file.
func (t *replayTally) input(r reading.Reading) {
	t.readings++
	k := seriesKey{r.Site, r.Device, r.Quantity}
	if prev, ok := t.latest[k]; ok {
		switch d := r.Time.Sub(prev); {
		case d < 0:
			t.outOfOrder++
		case d > 0:
			if g, ok := t.minGap[k]; !ok || d < g {
				t.minGap[k] = d
			}
		}
	}
	if r.Time.After(t.latest[k]) {
		t.latest[k] = r.Time
	}
	sd := [2]string{r.Site, r.Device}
	if t.seen[sd] == nil {
		t.seen[sd] = map[string]bool{}
		t.order = append(t.order, sd)
	}
	t.seen[sd][r.Quantity] = true
}

// output notes derived readings.
func (t *replayTally) output(rs []reading.Reading) {
	for _, r := range rs {
		if p, ok := strings.CutSuffix(r.Quantity, "_1h"); ok {
			if _, ok := air.PollutantOf(p); ok {
				t.means[[2]string{r.Site, r.Device}]++
			}
		}
	}
}

// sampleCounts are the monitors' counts of the readings routed to them.
type sampleCounts struct{ accepted, late, rejected uint64 }

// counts sums the monitors' counts. derive replaces a monitor's aggregator, and its
// counts, after a jump of more than derive.MaxGap in its readings' time, so the counts
// cover the readings since the last such gap.
func counts(set *derive.Set, at time.Time) (c sampleCounts) {
	for _, s := range set.NoiseStates(at) {
		c.accepted, c.late, c.rejected = c.accepted+s.Accepted, c.late+s.Late, c.rejected+s.Rejected
	}
	for _, s := range set.AirStates(at) {
		c.accepted, c.late, c.rejected = c.accepted+s.Accepted, c.late+s.Late, c.rejected+s.Rejected
	}
	for _, s := range set.WaterStates(at) {
		c.accepted, c.late, c.rejected = c.accepted+s.Accepted, c.late+s.Late, c.rejected+s.Rejected
	}
	return c
}

// report writes to w what went wrong beyond bad rows: no reading taken by a monitor
// (then it returns false), readings dropped as late or out of time order, air monitors
// whose readings are too sparse for their sample setting. last is the newest reading's
// time.
func (t *replayTally) report(w io.Writer, input, cfgPath string, cfg *config.Config, set *derive.Set, last time.Time) bool {
	if t.readings == 0 {
		fmt.Fprintf(w, "%s: no readings to replay, nothing derived\n", input)
		return false
	}
	c := counts(set, last)
	if c.accepted+c.late+c.rejected == 0 && !t.weatherOnly(cfg) {
		var have []string
		for i, sd := range t.order {
			if i == 5 {
				have = append(have, fmt.Sprintf("and %d more", len(t.order)-5))
				break
			}
			have = append(have, fmt.Sprintf("site %s device %s (%s)", sd[0], sd[1], strings.Join(slices.Sorted(maps.Keys(t.seen[sd])), ", ")))
		}
		fmt.Fprintf(w, "%s: none of its %d readings belongs to a monitor of %s, so nothing was derived: the file has %s; the monitors take %s\n",
			input, t.readings, cfgPath, strings.Join(have, "; "), monitorList(cfg))
		return false
	}
	if c.late > 0 || t.outOfOrder > 0 {
		fmt.Fprintf(w, "%s: readings dropped as late: %d (their window had closed: sort the file by time, or raise the lateness in the config); out of time order: %d (those within the lateness were used)\n",
			input, c.late, t.outOfOrder)
	}
	t.sparseAir(w, cfg)
	return true
}

// weatherOnly reports whether the file has rain_rate or wind_speed of a noise
// monitor's weather device: the monitors do not count those readings (they only mark
// windows wet), but they belong to a monitor.
func (t *replayTally) weatherOnly(cfg *config.Config) bool {
	for _, s := range cfg.Noise.Sites {
		for sd, qs := range t.seen {
			if s.Weather != "" && sd[1] == s.Weather && (qs["rain_rate"] || qs["wind_speed"]) {
				return true
			}
		}
	}
	return false
}

// sparseAir hints at the air monitors whose readings, spaced Δ apart, cover less of
// each hour than a valid 1-h mean needs, because each stands only for its configured
// sample: hourly data with the default sample of 1 min give 1 minute an hour, and no
// means at all (issue 11).
func (t *replayTally) sparseAir(w io.Writer, cfg *config.Config) {
	for i, site := range cfg.Air.Sites {
		ac, err := cfg.Air.Aggregator(i)
		if err != nil {
			continue // buildDerive has already accepted it
		}
		var gap time.Duration // the largest of the pollutants' smallest steps
		var sparse []string
		for _, q := range site.Pollutants {
			g, ok := t.minGap[seriesKey{ac.Site, ac.Device, q}]
			if !ok || g <= ac.Sample {
				continue
			}
			// Readings Δ apart: max(1, ⌊1 h / Δ⌋) of them in an hour, each standing
			// for Sample.
			n := max(1, int64(time.Hour/g))
			if covered := min(time.Hour, time.Duration(n)*ac.Sample); covered < ac.Validity.MinCoverage {
				sparse = append(sparse, q)
				gap = max(gap, g)
			}
		}
		if len(sparse) == 0 {
			continue
		}
		key := fmt.Sprintf("air.sites[%d].sample", i)
		derived := "only hours with more readings got a 1-h mean"
		if t.means[[2]string{ac.Site, ac.Device}] == 0 {
			derived = "no 1-h mean, AQI or daily figure was derived"
		}
		fmt.Fprintf(w, "hint: air monitor site %s device %s: its %s readings are %s apart, but %s is %s: each reading stands for %s of sampling, fewer than the %s an hour a valid 1-h mean needs (air.min_minutes_hour), so %s; set %s: %s (docs/config.md)\n",
			ac.Site, ac.Device, strings.Join(sparse, ", "), shortDuration(gap), key, shortDuration(ac.Sample),
			shortDuration(ac.Sample), shortDuration(ac.Validity.MinCoverage), derived, key, shortDuration(min(gap, time.Hour)))
	}
}

// monitorList describes the monitors of cfg: what a reading must name to be taken.
func monitorList(cfg *config.Config) string {
	var ms []string
	for _, s := range cfg.Noise.Sites {
		m := fmt.Sprintf("noise: site %s device %s (la, laeq)", s.Site, s.Device)
		if s.Weather != "" {
			m += fmt.Sprintf(" and device %s (rain_rate, wind_speed)", s.Weather)
		}
		ms = append(ms, m)
	}
	for _, s := range cfg.Air.Sites {
		ms = append(ms, fmt.Sprintf("air: site %s device %s (%s)", s.Site, s.Device, strings.Join(s.Pollutants, ", ")))
	}
	for _, s := range cfg.Water.Sections {
		ms = append(ms, fmt.Sprintf("water: site %s (any device)", s.Site))
	}
	return strings.Join(ms, "; ")
}

// shortDuration prints d without trailing zero units: 1h, 5m, 1h30m.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// parseInterleaved parses the flags of fs wherever they stand in args, before or after
// the other arguments, and returns those in order: `envgate replay -c C in.csv --format
// csv` is `envgate replay -c C --format csv in.csv`. After a "--" every argument is an
// argument, even one starting with "-". The flag package alone stops at the first
// argument that is not a flag and leaves the rest unparsed.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var out []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return out, nil
		}
		if used := args[:len(args)-len(rest)]; len(used) > 0 && used[len(used)-1] == "--" && !isFlagValue(fs, used) {
			return append(out, rest...), nil
		}
		out = append(out, rest[0])
		args = rest[1:]
	}
}

// isFlagValue reports whether the last of used, the arguments fs.Parse consumed, was
// the value of the flag before it (`--site --`) rather than the "--" ending the flags.
func isFlagValue(fs *flag.FlagSet, used []string) bool {
	if len(used) < 2 {
		return false
	}
	prev := used[len(used)-2]
	if !strings.HasPrefix(prev, "-") || strings.Contains(prev, "=") {
		return false
	}
	f := fs.Lookup(strings.TrimLeft(prev, "-"))
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

// newEmitter returns a function printing readings in format: line protocol with
// millisecond timestamps, as the InfluxDB sink writes them, or CSV in the long form
// replay reads (plus unit), so its output can be replayed again.
func newEmitter(w *bufio.Writer, format, gatewayID string) func([]reading.Reading) {
	if format == "csv" {
		w.WriteString("time,site,device,quantity,value,unit,quality\n")
		return func(rs []reading.Reading) {
			for _, r := range rs {
				fmt.Fprintf(w, "%s,%s,%s,%s,%s,%s,%s\n", r.Time.Format(time.RFC3339Nano), r.Site, r.Device, r.Quantity,
					strconv.FormatFloat(r.Value, 'g', -1, 64), r.Unit, r.Quality)
			}
		}
	}
	return func(rs []reading.Reading) {
		for _, r := range rs {
			w.WriteString(influx.Line(r, gatewayID, time.Millisecond))
			w.WriteByte('\n')
		}
	}
}
