package config

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/envgate/envgate/gateway/reading"
)

// Profile is the register map of one device model: the points a ModbusDevice gets by
// naming it in its profile key. The built-in profiles are the files in
// config/profiles, documented in docs/devices.md; users add their own with the
// profile_files key, in the same format.
type Profile struct {
	Name        string          `yaml:"name"`        // required, CheckName; what a device's profile key names
	Description string          `yaml:"description"` // the device model(s) it fits
	Source      string          `yaml:"source"`      // where the register map comes from, and how sure it is
	Defaults    ProfileDefaults `yaml:"defaults"`    // the model's factory settings; informative only
	Points      []ModbusPoint   `yaml:"points"`      // at least one; defaults applied; Interval 0 means the device's
}

// ProfileDefaults is a device model's factory serial settings and slave address, as
// its manual gives them. They configure nothing: docs/devices.md shows them, and
// `envgate scan` tries them first and prints them in its snippets. Zero means unknown.
type ProfileDefaults struct {
	Baud     int    `yaml:"baud"`      // 1200 ... 115200, as serial.baud
	DataBits int    `yaml:"data_bits"` // 8
	Parity   string `yaml:"parity"`    // none|even|odd
	StopBits int    `yaml:"stop_bits"` // 1 or 2
	Slave    int    `yaml:"slave"`     // 1..255
}

//go:embed profiles/*.yaml
var profileFiles embed.FS

// profileSet is the parsed built-in profiles.
type profileSet struct {
	byName map[string]*Profile
	names  []string // sorted
	probs  problems // only if a built-in file is broken; TestBuiltinProfiles keeps it empty
}

// builtinProfiles parses the embedded profiles once.
var builtinProfiles = sync.OnceValue(func() *profileSet {
	set := &profileSet{byName: map[string]*Profile{}}
	files, _ := fs.Glob(profileFiles, "profiles/*.yaml")
	for _, file := range files { // sorted by fs.Glob
		data, err := profileFiles.ReadFile(file)
		if err != nil {
			set.probs = append(set.probs, &Problem{Msg: err.Error(), File: "built-in " + file})
			continue
		}
		want := strings.TrimSuffix(path.Base(file), ".yaml")
		p, ps := parseProfile(data, func(name string) string {
			switch {
			case name != want:
				return fmt.Sprintf("a built-in profile is named after its file: %q", want)
			case set.byName[name] != nil:
				return "duplicate built-in profile"
			}
			return ""
		})
		for _, q := range ps {
			q.File = "built-in " + file
		}
		set.probs = append(set.probs, ps...)
		if len(ps) == 0 {
			set.byName[p.Name] = p
			set.names = append(set.names, p.Name)
		}
	}
	slices.Sort(set.names)
	return set
})

// BuiltinProfiles returns a copy of every built-in profile, sorted by name.
func BuiltinProfiles() []Profile {
	set := builtinProfiles()
	out := make([]Profile, 0, len(set.names))
	for _, n := range set.names {
		out = append(out, set.byName[n].clone())
	}
	return out
}

// clone returns a deep copy of p.
func (p *Profile) clone() Profile {
	c := *p
	c.Points = make([]ModbusPoint, len(p.Points))
	for i, pt := range p.Points {
		c.Points[i] = pt.clone()
	}
	return c
}

// ParseProfile decodes, completes and validates a profile file, as Parse does a
// config file: unknown keys are errors, ${VAR} is expanded, point defaults are applied
// (function 3, order ABCD, scale 1; the interval stays 0 unless set, meaning the
// device's), and every problem is returned at once, sorted by line. name is the file's
// path; the problems do not include it (Parse sets Problem.File on them).
func ParseProfile(data []byte, name string) (*Profile, error) {
	p, ps := parseProfile(data, nil)
	if len(ps) > 0 {
		return nil, ps.err()
	}
	return p, nil
}

// parseProfile is ParseProfile returning a profile even when it has problems (for its
// name). taken, if not nil, returns why a profile name cannot be used, or "".
func parseProfile(data []byte, taken func(name string) string) (*Profile, problems) {
	var p Profile
	root, ps := parseYAML(data)
	if len(ps) > 0 {
		return &p, ps
	}
	d := newDecoder()
	if root != nil {
		d.decode(root, reflect.ValueOf(&p).Elem(), "")
	}
	for k := range p.Points {
		p.Points[k].defaults(indexPath("points", k)+".", 0, func(s string) bool { return d.set[s] })
	}
	bad := map[string]bool{}
	for _, q := range d.probs {
		bad[q.Path] = true
	}
	inFile := func(s string) bool { return d.set[s] || bad[s] }
	all := d.probs
	for _, q := range p.validate(inFile, taken) {
		if !bad[q.Path] {
			all = append(all, q)
		}
	}
	return &p, d.finish(all)
}

// validate checks a profile; inFile and taken are as for parseProfile.
func (p *Profile) validate(inFile func(string) bool, taken func(string) string) problems {
	var ps problems
	add := func(path, format string, args ...any) { ps.add(path, 0, format, args...) }
	switch {
	case p.Name == "":
		add("name", "required")
	case reading.CheckName(p.Name) != nil:
		add("name", "%v", reading.CheckName(p.Name))
	case taken != nil && taken(p.Name) != "":
		add("name", "%s", taken(p.Name))
	}
	if len(p.Points) == 0 {
		add("points", "required: a profile has at least one point")
	}
	quantities := map[string]string{}
	for k, pt := range p.Points {
		pp := indexPath("points", k)
		ps = append(ps, pt.validate(pp, false, inFile)...)
		if first, dup := quantities[pt.Quantity]; dup && pt.Quantity != "" {
			add(pp+".quantity", "duplicate quantity %q (first at %s); a device reads each quantity once", pt.Quantity, first)
		} else {
			quantities[pt.Quantity] = pp
		}
	}
	df := p.Defaults
	if df.Baud != 0 && !slices.Contains(serialBauds, df.Baud) {
		add("defaults.baud", "must be one of %s", joinInts(serialBauds))
	}
	if df.DataBits != 0 && df.DataBits != 8 {
		add("defaults.data_bits", "%s", dataBits8)
	}
	if df.Parity != "" && !slices.Contains(parities, df.Parity) {
		add("defaults.parity", "must be one of %s", strings.Join(parities, ", "))
	}
	if df.StopBits != 0 && df.StopBits != 1 && df.StopBits != 2 {
		add("defaults.stop_bits", "must be 1 or 2")
	}
	if df.Slave < 0 || df.Slave > maxSlave || (df.Slave == 0 && inFile("defaults.slave")) {
		add("defaults.slave", "must be between 1 and %d", maxSlave)
	}
	return ps
}

// Limits on profile_files (issue 10 review: 5000 entries naming one 1 MiB file took
// 175 s to check). A box has a handful of device models; the built-in profiles are
// 1-3 KiB each.
const (
	MaxProfileFiles = 64      // entries in profile_files, as written or expanded from an alias
	MaxProfileTotal = 4 * MiB // bytes read from all of them together
)

// readProfiles reads c.ProfileFiles, relative to dir, into c.profiles. A file that
// cannot be read is a problem of the config (at profile_files[i]); problems inside a
// file are returned separately, each with the file's path in File. A path named twice
// (after cleaning) is read once. It reads nothing when the list is longer than
// MaxProfileFiles (validate reports that), and stops at the file that takes the bytes
// read past MaxProfileTotal.
func (c *Config) readProfiles(dir string) (inConfig, inFiles problems) {
	if len(c.ProfileFiles) > MaxProfileFiles {
		return nil, nil
	}
	defined := map[string]string{} // profile name → file
	seen := map[string]bool{}      // cleaned paths read
	var total int64
	for i, f := range c.ProfileFiles {
		if f == "" {
			continue // reported by validate
		}
		name := f
		if !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		name = filepath.Clean(name)
		if seen[name] {
			continue
		}
		seen[name] = true
		data, err := readProfileFile(name)
		if err != nil {
			inConfig.add(indexPath("profile_files", i), 0, "%v", err)
			continue
		}
		if total += int64(len(data)); total > int64(MaxProfileTotal) {
			inConfig.add(indexPath("profile_files", i), 0, "the profile files up to this one hold more than %v together, the limit for all of them; no more are read", MaxProfileTotal)
			break
		}
		p, ps := parseProfile(data, func(n string) string {
			if _, ok := builtinProfiles().byName[n]; ok {
				return fmt.Sprintf("%q is a built-in profile; give yours another name (docs/devices.md)", n)
			}
			if first, ok := defined[n]; ok {
				return fmt.Sprintf("profile %q is also defined in %s", n, first)
			}
			return ""
		})
		for _, q := range ps {
			q.File = name
		}
		inFiles = append(inFiles, ps...)
		if p.Name == "" || reading.CheckName(p.Name) != nil {
			continue
		}
		if _, ok := defined[p.Name]; ok {
			continue
		}
		if _, ok := builtinProfiles().byName[p.Name]; ok {
			continue
		}
		defined[p.Name] = name
		if c.profiles == nil {
			c.profiles = map[string]*Profile{}
		}
		c.profiles[p.Name] = nil // known, but not usable: its problems are reported
		if len(ps) == 0 {
			c.profiles[p.Name] = p
		}
	}
	return inConfig, inFiles
}

// readProfileFile reads a profile file, refusing anything but a regular file of at
// most MaxProfileFile bytes (a FIFO or device would block or never end).
func readProfileFile(name string) ([]byte, error) {
	data, err := ReadFile(name, MaxProfileFile)
	if err != nil {
		return nil, fmt.Errorf("cannot read profile: %w", err)
	}
	return data, nil
}
