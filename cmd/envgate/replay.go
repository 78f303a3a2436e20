package main

import (
	"bufio"
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/envgate/envgate/config"
	"github.com/envgate/envgate/gateway/influx"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/replay"
)

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
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: envgate replay -c FILE [flags] INPUT.csv   (INPUT - reads stdin)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" || fs.NArg() != 1 || (*format != "lp" && *format != "csv") {
		fs.Usage()
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
	input := fs.Arg(0)
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
		}
		if *raw {
			emit(rs)
		}
		derived = set.Add(derived[:0], rs...)
		emit(derived)
	}
	if !*noFlush && !last.IsZero() {
		emit(set.Flush(derived[:0], last))
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintf(stderr, "envgate replay: write: %v\n", err)
		return 1
	}
	if bad > 0 {
		fmt.Fprintf(stderr, "%s: %d of %d rows skipped (%d described above), %d readings replayed\n", input, bad, rows, min(bad, maxReportedRows), nIn)
		return 1
	}
	return 0
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
