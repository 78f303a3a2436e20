package config

import (
	"errors"
	"fmt"
	"github.com/envgate/envgate/gateway/reading"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration file, or with a profile file it
// names in profile_files.
type Problem struct {
	Path string // field path such as "devices[2].interval"; empty for the whole file
	Line int    // 1-based line in the file; 0 when unknown
	Msg  string // what is wrong; never contains a secret
	File string // the profile file the problem is in; empty for the config file itself
}

// Error formats the problem as "devices[2].interval (line 41): must be > 0", leaving
// out the parts that are unknown. A problem in a profile file starts with that file's
// path: "/etc/envgate/profiles/acme.yaml: points[1].type (line 7): ...".
func (p *Problem) Error() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File + ": ")
	}
	switch {
	case p.Path != "" && p.Line > 0:
		fmt.Fprintf(&b, "%s (line %d): ", p.Path, p.Line)
	case p.Path != "":
		b.WriteString(p.Path + ": ")
	case p.Line > 0:
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems unpacks an error returned by Load, Parse or Validate into its problems, in
// order. An error that is not a *Problem (a file that cannot be read) becomes a
// Problem with only Msg set. Problems(nil) is nil.
func Problems(err error) []*Problem {
	var out []*Problem
	var walk func(error)
	walk = func(err error) {
		if p, ok := err.(*Problem); ok {
			out = append(out, p)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var p *Problem
		if errors.As(err, &p) {
			out = append(out, p)
			return
		}
		out = append(out, &Problem{Msg: err.Error()})
	}
	if err != nil {
		walk(err)
	}
	return out
}

// problems collects Problems as validation goes.
type problems []*Problem

func (ps *problems) add(path string, line int, format string, args ...any) {
	*ps = append(*ps, &Problem{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// err joins the problems, or returns nil when there are none.
func (ps problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errors.Join(errs...)
}

// joinPath appends a mapping key to a field path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// indexPath appends a list index to a field path: indexPath("devices", 2) is "devices[2]".
func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// parentPath strips the last key or index from a field path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// name checks a required name (of a gateway, sink, bus, device or site) at path.
func (ps *problems) name(path, s string) {
	if s == "" {
		ps.add(path, 0, "required")
	} else if err := reading.CheckName(s); err != nil {
		ps.add(path, 0, "%v", err)
	}
}

// Where a device's site may be set, for the "required" message of problems.site.
const (
	siteFromGateway = "set it here or as gateway.site"
	siteFromDevice  = "set it here, on the device, or as gateway.site"
)

// site checks the site of a device or monitor at path after defaults: set (from says
// where it may come from) and a valid name.
func (ps *problems) site(path, site, from string) {
	if site == "" {
		ps.add(path, 0, "required (%s)", from)
		return
	}
	ps.name(path, site)
}

// deviceName checks the name of the device at dev (its key is dev+".name") and claims
// it in names (name → the device path of its first use): device names are unique across
// devices, buses, mqtt and pm.
func (ps *problems) deviceName(dev, name string, names map[string]string) {
	path := dev + ".name"
	ps.name(path, name)
	if name == "" {
		return
	}
	if reading.IsReservedDevice(name) {
		ps.add(path, 0, "%q is reserved for the gateway's own health readings; name the device otherwise", name)
	}
	if first, dup := names[name]; dup {
		ps.add(path, 0, "duplicate device name %q (first at %s)", name, first)
	} else {
		names[name] = dev
	}
}
