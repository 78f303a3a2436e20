// Package replay reads recorded readings from CSV (an export from a handheld sound level
// meter, a data logger, or envgate's own InfluxDB) so that `envgate replay` can run them
// through the same derivation as live data (gateway/derive). The format is documented
// in docs/replay.md.
package replay

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// Options are the defaults for what the file does not say.
type Options struct {
	Site, Device string         // for rows without a site or device column
	Location     *time.Location // for times without a UTC offset; nil: UTC
}

// Reader reads readings from a CSV file with a header row. It is not safe for
// concurrent use.
type Reader struct {
	r    *csv.Reader
	opt  Options
	cols columns
}

// columns is the layout the header gave.
type columns struct {
	time, site, device, quantity, value, unit, quality int // -1: absent
	wide                                               []wideColumn
}

// wideColumn is a column named after a quantity: a value per row.
type wideColumn struct {
	index    int
	quantity string
}

// RowError is a row that could not be read. The Reader goes on with the next row.
type RowError struct {
	Line int    // line in the file, from 1
	Col  string // column name, "" for the whole row
	Err  error
}

func (e *RowError) Error() string {
	if e.Col == "" {
		return fmt.Sprintf("line %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("line %d, column %s: %v", e.Line, e.Col, e.Err)
}

func (e *RowError) Unwrap() error { return e.Err }

// NewReader reads the header row and checks the layout: a time column, and either
// quantity and value columns (long form) or one column per quantity (wide form);
// site and device columns or Options for them.
func NewReader(in io.Reader, opt Options) (*Reader, error) {
	if opt.Location == nil {
		opt.Location = time.UTC
	}
	r := csv.NewReader(in)
	r.Comment = '#'
	r.FieldsPerRecord = -1 // rows are checked against the header here, with a better message
	r.TrimLeadingSpace = true
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("line 1: empty file: want a header row such as time,site,device,quantity,value")
		}
		return nil, fmt.Errorf("header: %w", err)
	}
	c := columns{time: -1, site: -1, device: -1, quantity: -1, value: -1, unit: -1, quality: -1}
	seen := map[string]bool{}
	var unknown []string
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if seen[name] {
			return nil, fmt.Errorf("line 1: column %q appears twice", name)
		}
		seen[name] = true
		switch name {
		case "time":
			c.time = i
		case "site":
			c.site = i
		case "device":
			c.device = i
		case "quantity":
			c.quantity = i
		case "value":
			c.value = i
		case "quality":
			c.quality = i
		case "unit":
			c.unit = i
		default:
			if _, ok := reading.Lookup(name); ok {
				c.wide = append(c.wide, wideColumn{i, name})
			} else {
				unknown = append(unknown, name)
			}
		}
	}
	var problems []string
	if c.time < 0 {
		problems = append(problems, "no time column")
	}
	long := c.quantity >= 0 || c.value >= 0
	switch {
	case long && (c.quantity < 0 || c.value < 0):
		problems = append(problems, "the long form needs both quantity and value columns")
	case long && len(c.wide) > 0:
		problems = append(problems, fmt.Sprintf("columns %s name quantities, but the file has quantity and value columns: use one form", wideNames(c.wide)))
	case !long && len(c.wide) == 0:
		problems = append(problems, "no value column: want quantity,value columns, or columns named after quantities such as la")
	case !long && c.unit >= 0:
		// One unit cell cannot say which of several quantity columns it is for.
		problems = append(problems, fmt.Sprintf("a unit column needs the long form (quantity,value,unit); columns %s are read in the catalog's units (docs/data-model.md)", wideNames(c.wide)))
	}
	if len(unknown) > 0 {
		problems = append(problems, fmt.Sprintf("unknown columns %s (known: time, site, device, quantity, value, quality, unit, or a quantity such as la, laeq, rain_rate)", strings.Join(unknown, ", ")))
	}
	if c.site < 0 && opt.Site == "" {
		problems = append(problems, "no site column: add one or give a site (--site)")
	}
	if c.device < 0 && opt.Device == "" {
		problems = append(problems, "no device column: add one or give a device (--device)")
	}
	for _, o := range []struct{ flag, v string }{{"--site", opt.Site}, {"--device", opt.Device}} {
		if o.v == "" {
			continue
		}
		if err := reading.CheckName(o.v); err != nil {
			problems = append(problems, fmt.Sprintf("%s %q: %v", o.flag, o.v, err))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("line 1: %s", strings.Join(problems, "; "))
	}
	return &Reader{r: r, opt: opt, cols: c}, nil
}

func wideNames(ws []wideColumn) string {
	names := make([]string, len(ws))
	for i, w := range ws {
		names[i] = w.quantity
	}
	return strings.Join(names, ", ")
}

// Next returns the readings of the next row (several in the wide form; none for a row
// whose cells are all empty). At the end it returns io.EOF. A bad row returns a
// *RowError; the caller may report it and call Next again.
func (r *Reader) Next() ([]reading.Reading, error) {
	rec, err := r.r.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, &RowError{Line: pe.Line, Err: pe.Err}
		}
		return nil, err
	}
	line, _ := r.r.FieldPos(0) // valid only after a successful Read
	c := r.cols
	cell := func(i int) string {
		if i < 0 || i >= len(rec) {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	rowErr := func(col string, format string, args ...any) error {
		return &RowError{Line: line, Col: col, Err: fmt.Errorf(format, args...)}
	}
	t, err := parseTime(cell(c.time), r.opt.Location)
	if err != nil {
		return nil, rowErr("time", "%v", err)
	}
	if t.Before(reading.MinTime) || !t.Before(reading.MaxTime) {
		return nil, rowErr("time", "%s is outside %s to %s", t.Format(time.RFC3339Nano),
			reading.MinTime.Format(time.DateOnly), reading.MaxTime.Format(time.DateOnly))
	}
	// Each problem is reported in the column that has it, so the user knows which cell
	// to fix; Validate below is a last check.
	site, device := cell(c.site), cell(c.device)
	if site == "" {
		site = r.opt.Site
	} else if err := reading.CheckName(site); err != nil {
		return nil, rowErr("site", "%q: %v", site, err)
	}
	if device == "" {
		device = r.opt.Device
	} else if err := reading.CheckName(device); err != nil {
		return nil, rowErr("device", "%q: %v", device, err)
	}
	q := reading.Good
	if c.quality >= 0 {
		if q, err = parseQuality(cell(c.quality)); err != nil {
			return nil, rowErr("quality", "%v", err)
		}
	}
	// build reads the value v of quantity in unit ("" is the catalog unit) from column
	// col and converts it to the catalog unit as the drivers do (reading.Convert).
	build := func(col, quantity, v, unit string) (reading.Reading, error) {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return reading.Reading{}, rowErr(col, "%q is not a number", v)
		}
		cq, _ := reading.Lookup(quantity)
		conv, err := reading.Convert(quantity, f, unit)
		switch {
		case errors.Is(err, reading.ErrUnknownUnit):
			return reading.Reading{}, rowErr("unit", "%v", err)
		case err != nil:
			return reading.Reading{}, rowErr(col, "%v", err)
		case !cq.Plausible(conv) && conv != f:
			return reading.Reading{}, rowErr(col, "%v %s is %v %s, outside the possible range of %s, %v to %v %s", f, unit, conv, cq.Unit, quantity, cq.Min, cq.Max, cq.Unit)
		case !cq.Plausible(conv):
			return reading.Reading{}, rowErr(col, "%v is outside the possible range of %s, %v to %v %s", f, quantity, cq.Min, cq.Max, cq.Unit)
		}
		rd := reading.New(t, site, device, quantity, conv)
		rd.Quality = q
		if err := rd.Validate(); err != nil {
			return reading.Reading{}, rowErr(col, "%v", err)
		}
		return rd, nil
	}
	if c.quantity >= 0 {
		quantity := cell(c.quantity)
		if quantity == "" {
			return nil, rowErr("quantity", "empty")
		}
		if _, ok := reading.Lookup(quantity); !ok {
			return nil, rowErr("quantity", "%v", reading.CheckQuantity(quantity))
		}
		rd, err := build("value", quantity, cell(c.value), cell(c.unit))
		if err != nil {
			return nil, err
		}
		return []reading.Reading{rd}, nil
	}
	out := make([]reading.Reading, 0, len(c.wide))
	for _, w := range c.wide {
		v := cell(w.index)
		if v == "" {
			continue
		}
		rd, err := build(w.quantity, w.quantity, v, "")
		if err != nil {
			return nil, err
		}
		out = append(out, rd)
	}
	return out, nil
}

// Local layouts: the time is in Options.Location.
var localLayouts = []string{
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006/01/02 15:04:05.999999999",
	"2006-01-02 15:04",
	"2006/01/02 15:04",
}

// parseTime reads RFC 3339 (with an offset), a local date and time, or Unix seconds.
func parseTime(s string, loc *time.Location) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("empty")
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, l := range localLayouts {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t, nil
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 && f < 1e11 {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e9))), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: want RFC 3339 (2026-11-28T21:00:00+08:00), a local time (2026-11-28 21:00:00) or Unix seconds", s)
}

// parseQuality reads good|suspect|bad or 0|1|2; empty is good.
func parseQuality(s string) (reading.Quality, error) {
	switch strings.ToLower(s) {
	case "", "good", "0":
		return reading.Good, nil
	case "suspect", "1":
		return reading.Suspect, nil
	case "bad", "2":
		return reading.Bad, nil
	}
	return 0, fmt.Errorf("%q is not a quality: good, suspect or bad (0, 1, 2)", s)
}
