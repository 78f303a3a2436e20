package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/envgate/envgate/gateway/reading"
)

// Load reads the configuration file at path and parses it with Parse. The file must be
// a regular file of at most MaxConfigFile bytes (see ReadFile).
func Load(path string) (*Config, error) {
	data, err := ReadFile(path, MaxConfigFile)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes, completes and validates a configuration file. name is the file's
// path; a relative token_file, password_file, web_config_file or profile file is read
// relative to its directory.
//
// Parse expands ${VAR}, ${VAR:-default} and $$ in every scalar value, rejects
// unknown keys, applies defaults, reads token, password and profile files, checks the
// web config file (see checkWebConfig), stats the dead-letter files (see
// checkDeadLetterFiles), validates,
// and resolves the profile of every Modbus device (see ModbusDevice). It returns either a
// config and nil, or nil and the errors.Join of the *Problems found (see Problems):
// those in the config file sorted by line, then those in profile files, each with its
// File set; past the first 100, one last Problem counts the rest (Omitted). Problems
// never contain the value of a secret, and quote a key only if it is a plausible key.
func Parse(data []byte, name string) (*Config, error) {
	root, ps := parseYAML(data)
	if len(ps) > 0 {
		return nil, ps.err()
	}
	d := newDecoder()
	var c Config
	if root != nil {
		d.decode(root, reflect.ValueOf(&c).Elem(), "")
	}
	c.defaults(func(p string) bool { return d.set[p] })
	early := slices.Clone(d.probs)
	early = append(early, c.readSecretFiles(filepath.Dir(name))...)
	early = append(early, c.checkWebConfig(filepath.Dir(name))...)
	early = append(early, c.checkDeadLetterFiles(func(p string) bool { return d.set[p] })...)
	inConfig, inProfiles := c.readProfiles(filepath.Dir(name))
	early = append(early, inConfig...)
	inProfiles = append(slices.Clone(builtinProfiles().probs), inProfiles...)

	// A field that failed to decode is zero now; don't also report it as missing.
	bad := map[string]bool{}
	for _, p := range early {
		bad[p.Path] = true
	}
	all := early
	inFile := func(p string) bool { return d.set[p] || bad[p] }
	for _, p := range c.validate(inFile) {
		if !bad[p.Path] {
			all = append(all, p)
		}
	}
	if len(all) == 0 && len(inProfiles) == 0 {
		c.resolve()
		return &c, nil
	}
	return nil, capped(append(d.finish(all), inProfiles...), d.dropped).err()
}

// maxReported bounds the problems Parse returns: an installer fixes the first ones
// and checks again, and a file with thousands of problems is not a config at all.
const maxReported = 100

// capped keeps the first maxReported problems of ps and, when there were more
// (dropped counts those never kept), adds one that says how many more.
func capped(ps problems, dropped int) problems {
	if n := len(ps) - maxReported; n > 0 {
		dropped += n
		ps = ps[:maxReported]
	}
	if dropped > 0 {
		ps = append(ps, &Problem{Msg: fmt.Sprintf("... and %d more problems", dropped), Omitted: dropped})
	}
	return ps
}

// newDecoder returns a decoder reading the environment.
func newDecoder() *decoder {
	return &decoder{
		lines:    map[string]int{},
		set:      map[string]bool{},
		expanded: map[*yaml.Node]bool{},
		fromEnv:  map[*yaml.Node]bool{},
		broken:   map[*yaml.Node]bool{},
		lookup:   os.LookupEnv,
	}
}

// finish gives each problem of the decoded file without a line the line of its path,
// and sorts them by line.
func (d *decoder) finish(ps problems) problems {
	for _, p := range ps {
		if p.Line == 0 {
			p.Line = d.lineOf(p.Path)
		}
	}
	slices.SortStableFunc(ps, func(a, b *Problem) int { return a.Line - b.Line })
	return ps
}

// parseYAML parses data into the root node of its single document. It returns a nil
// node for an empty file or document.
func parseYAML(data []byte) (root *yaml.Node, ps problems) {
	// yaml.v3 has panicked on malformed input before (go-yaml/yaml#665 and others);
	// a config file must never crash the process that checks it.
	defer func() {
		if r := recover(); r != nil {
			root, ps = nil, nil
			ps.add("", 0, "cannot parse YAML: the parser failed on this input")
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, nil
		}
		ps = append(ps, syntaxProblem(err))
		return nil, ps
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		ps.add("", extra.Line, "the file holds more than one YAML document; use one per box")
	case err != io.EOF:
		ps = append(ps, syntaxProblem(err))
	}
	if len(doc.Content) == 0 {
		return nil, ps
	}
	return doc.Content[0], ps
}

var (
	yamlLine    = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)
	leadingZero = regexp.MustCompile(`^[-+]?0[0-9_]+$`)
)

// syntaxProblem turns a yaml.v3 parser error ("yaml: line 3: did not find expected
// key") into a Problem with that line.
func syntaxProblem(err error) *Problem {
	msg := err.Error()
	p := &Problem{}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	p.Msg = "invalid YAML: " + quietYAML(strings.TrimPrefix(msg, "yaml: "))
	return p
}

// yamlQuoted matches what yaml.v3 quotes from the file in its messages, an anchor name
// ("unknown anchor 'x' referenced", "anchor 'x' value contains itself"); its other
// quotes are of the characters it expected ("did not find expected ',' or ']'").
var yamlQuoted = regexp.MustCompile(`anchor '[^']*'`)

// quietYAML removes the file's text from a yaml.v3 message and bounds its length, so
// that checking a file that is not a config never prints what it holds.
func quietYAML(msg string) string {
	msg = yamlQuoted.ReplaceAllString(msg, "anchor")
	msg = strings.Map(func(r rune) rune {
		if r < ' ' || r > '~' {
			return '?'
		}
		return r
	}, msg)
	if len(msg) > 200 {
		msg = msg[:197] + "..."
	}
	return msg
}

// maxVisits bounds the nodes decoded, counting each use of an alias again, so that
// nested aliases ("billion laughs") cannot make Parse run for long.
const maxVisits = 100_000

// decoder decodes a yaml.Node tree into Config by walking it against the struct's
// yaml tags, recording a Problem with path and line for every unknown key, failed
// ${VAR} expansion and value of the wrong type, and carrying on after each.
type decoder struct {
	probs    problems
	lines    map[string]int      // field path → line of its key or list item
	set      map[string]bool     // field paths given a non-null value
	expanded map[*yaml.Node]bool // scalars already expanded (aliases share nodes)
	fromEnv  map[*yaml.Node]bool // scalars whose value holds environment text
	broken   map[*yaml.Node]bool // scalars whose expansion failed
	lookup   func(string) (string, bool)
	visits   int
	dropped  int // problems found past maxDecodeProblems and not kept
}

// maxDecodeProblems bounds the problems the decoder keeps, so that a large file that
// is not a config (50 MB of text made 2.87 million problems and took 2.6 GB, issue 10)
// costs little memory; the rest are only counted.
const maxDecodeProblems = 1000

// add records a problem, or only counts it past maxDecodeProblems.
func (d *decoder) add(path string, line int, format string, args ...any) {
	if len(d.probs) >= maxDecodeProblems {
		d.dropped++
		return
	}
	d.probs.add(path, line, format, args...)
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
	secretType   = reflect.TypeFor[Secret]()
)

// decode stores n into v, which is addressable. It reports whether n set a value
// (was not null).
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) bool {
	d.visits++
	if d.visits == maxVisits {
		d.add(path, n.Line, "too many values after alias expansion; the file is not a plausible config")
	}
	if d.visits >= maxVisits {
		return false
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return false
		}
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode {
		d.expand(n, path)
		if d.broken[n] {
			return false
		}
		if n.ShortTag() == "!!null" {
			return false
		}
	}
	if v.Type() == durationType || v.Type() == byteSizeType {
		return d.scalar(n, v, path)
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.Type().Elem().Kind() == reflect.Struct && n.Kind != yaml.MappingNode {
			d.add(path, n.Line, "must be a mapping of keys, not %s", kindName(n))
			return false
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return d.decode(n, v.Elem(), path)
	case reflect.Struct:
		return d.mapping(n, v, path)
	case reflect.Slice:
		return d.sequence(n, v, path)
	default:
		return d.scalar(n, v, path)
	}
}

// expand expands ${VAR} in a scalar value, once per node.
func (d *decoder) expand(n *yaml.Node, path string) {
	if d.expanded[n] {
		return
	}
	d.expanded[n] = true
	out, fromEnv, errs := expand(n.Value, d.lookup)
	for _, e := range errs {
		d.add(path, n.Line, "%s", e)
	}
	if len(errs) > 0 {
		d.broken[n] = true
		return
	}
	d.fromEnv[n] = fromEnv
	n.Value = out
}

// mapping decodes a mapping node into struct v; merge keys (<<: *anchor) are applied
// first so that the mapping's own keys override them.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) bool {
	if n.Kind != yaml.MappingNode {
		if path == "" {
			d.add(path, n.Line, "the file must be a mapping with the keys %s, not %s", andList(fieldsOf(v.Type()).names), kindName(n))
		} else {
			d.add(path, n.Line, "must be a mapping of keys, not %s", kindName(n))
		}
		return false
	}
	fs := fieldsOf(v.Type())
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if isMerge(k) {
			d.merge(val, v, path)
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if isMerge(k) {
			continue
		}
		// Unknown keys cost no decode, so count them here: a file of a million lines
		// such as "x:" must not make a million problems.
		if d.visits++; d.visits >= maxVisits {
			if d.visits == maxVisits {
				// Line 0 sorts it first, ahead of the problems it cuts short.
				d.probs.add("", 0, "more than %d keys and values (stopped at line %d); the file is not a plausible config", maxVisits, k.Line)
			}
			return true
		}
		if k.Kind != yaml.ScalarNode {
			d.add(path, k.Line, "keys must be plain words, not %s", kindName(k))
			continue
		}
		idx, ok := fs.index[k.Value]
		if !ok && !plausibleKey(k.Value) {
			// Never quote it: "envgate check -c /etc/shadow" printed every password
			// hash as an unknown key (issue 10).
			d.add(path, k.Line, "unknown key, not shown: it is not a word of letters, digits, \"_\" and \"-\" (known keys: %s)", strings.Join(fs.names, ", "))
			continue
		}
		p := joinPath(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.add(p, k.Line, "duplicate key (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		if !ok {
			d.add(p, k.Line, "%s", unknownKey(k.Value, fs.names))
			continue
		}
		d.lines[p] = k.Line
		if d.decode(val, v.FieldByIndex(idx), p) {
			d.set[p] = true
		}
	}
	return true
}

// merge applies the value of a "<<" key: a mapping, or a list of mappings where the
// earlier ones win, as YAML's merge key type specifies.
func (d *decoder) merge(val *yaml.Node, v reflect.Value, path string) {
	if val.Kind == yaml.AliasNode && val.Alias != nil {
		val = val.Alias
	}
	switch val.Kind {
	case yaml.MappingNode:
		d.decode(val, v, path)
	case yaml.SequenceNode:
		for _, m := range slices.Backward(val.Content) {
			if m.Kind == yaml.AliasNode && m.Alias != nil && m.Alias.Kind == yaml.MappingNode {
				d.decode(m, v, path)
			} else {
				d.add(path, m.Line, `"<<" must merge a mapping or a list of mapping aliases`)
			}
		}
	default:
		d.add(path, val.Line, `"<<" must merge a mapping or a list of mapping aliases`)
	}
}

func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge"
}

// sequence decodes a sequence node into slice v.
func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) bool {
	if n.Kind != yaml.SequenceNode {
		d.add(path, n.Line, "must be a list, not %s", kindName(n))
		return false
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		p := indexPath(path, i)
		d.lines[p] = item.Line
		if d.decode(item, s.Index(i), p) {
			d.set[p] = true
		}
	}
	v.Set(s)
	return true
}

// scalar decodes a single value into a leaf field.
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) bool {
	if n.Kind != yaml.ScalarNode {
		d.add(path, n.Line, "must be a single value, not %s", kindName(n))
		return false
	}
	text := n.Value
	fail := func(want string) bool {
		d.add(path, n.Line, "must be %s%s", want, d.got(n, v.Type()))
		return false
	}
	switch v.Type() {
	case durationType:
		t, err := time.ParseDuration(strings.TrimSpace(text))
		if err != nil {
			return fail(`a duration such as "30s", "1m30s" or "1h"`)
		}
		v.SetInt(int64(t))
		return true
	case byteSizeType:
		b, err := ParseByteSize(text)
		if err != nil {
			return fail(`a size such as "512MiB" or a number of bytes`)
		}
		v.SetInt(int64(b))
		return true
	}
	// Resolve the text as a plain scalar, so that "500" and ${N} that expands to 500
	// both decode into an int.
	plain := yaml.Node{Kind: yaml.ScalarNode, Value: text}
	switch v.Kind() {
	case reflect.String:
		v.SetString(text)
	case reflect.Bool:
		var b bool
		if plain.Decode(&b) != nil {
			return fail("true or false")
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		var i int64
		if plain.ShortTag() != "!!int" || plain.Decode(&i) != nil || v.OverflowInt(i) {
			return fail("a whole number")
		}
		if leadingZero.MatchString(text) {
			// YAML 1.1 reads 010 as octal 8, which nobody writing "address: 010" means.
			return fail("a whole number without a leading 0 (write 0x10 for hex, 0o10 for octal)")
		}
		v.SetInt(i)
	case reflect.Float64:
		var f float64
		if t := plain.ShortTag(); t != "!!int" && t != "!!float" || plain.Decode(&f) != nil {
			return fail("a number")
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fail("a finite number")
		}
		if plain.ShortTag() == "!!int" && leadingZero.MatchString(text) {
			return fail("a number without a leading 0")
		}
		v.SetFloat(f)
	default:
		// Only reachable when a field of a new type is added to Config.
		d.add(path, n.Line, "config field of type %s cannot be decoded", v.Type())
		return false
	}
	return true
}

// got quotes the offending value for a message, unless it could be secret: a Secret
// field, text from the environment, or an anchored value that may be used elsewhere.
func (d *decoder) got(n *yaml.Node, t reflect.Type) string {
	switch {
	case t == secretType || n.Anchor != "":
		return ""
	case d.fromEnv[n]:
		return " (after ${...} expansion)"
	}
	s := n.Value
	if utf8.RuneCountInString(s) > 40 {
		s = string([]rune(s)[:37]) + "..."
	}
	return fmt.Sprintf(", got %q", s)
}

// lineOf returns the line of path, or of its nearest ancestor in the file, so that
// a missing key points at the block that lacks it.
func (d *decoder) lineOf(path string) int {
	for ; path != ""; path = parentPath(path) {
		if l, ok := d.lines[path]; ok {
			return l
		}
	}
	return 0
}

// andList joins names as "a, b and c".
func andList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	}
	return "an alias"
}

// fields maps the yaml tags of a struct to its field indexes (for reflect's
// FieldByIndex). The keys of an embedded struct tagged `yaml:",inline"` are the
// struct's own, as in yaml.v3: a group of keys shared by several blocks (SinkPacing).
type fields struct {
	index map[string][]int
	names []string // in declaration order, for messages
}

func fieldsOf(t reflect.Type) fields {
	fs := fields{index: map[string][]int{}}
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" && opts == "inline" && f.Anonymous && f.Type.Kind() == reflect.Struct {
			inner := fieldsOf(f.Type)
			for _, n := range inner.names {
				fs.index[n] = append([]int{i}, inner.index[n]...)
				fs.names = append(fs.names, n)
			}
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		fs.index[name] = []int{i}
		fs.names = append(fs.names, name)
	}
	return fs
}

// maxKeyLen bounds the length of a key that a problem may quote; the longest key of
// the schema is about 25 bytes.
const maxKeyLen = 40

// plausibleKey reports whether key could be a mistyped key of the schema, and so may
// be quoted in a problem: 1 to maxKeyLen letters, digits, "_" and "-", or "${VAR}". Anything else
// is content of a file that is not a config, and may be a secret.
func plausibleKey(key string) bool {
	if key == "" || len(key) > maxKeyLen {
		return false
	}
	if v, ok := strings.CutPrefix(key, "${"); ok && strings.HasSuffix(v, "}") {
		return isVarName(v[:len(v)-1]) // keys are not expanded; say so about "${VAR}:"
	}
	for _, c := range key {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// unknownKey explains an unknown key, suggesting a known key within edit distance 2
// (ignoring case), or listing the known keys when none is close.
func unknownKey(key string, known []string) string {
	best, bestDist := "", 3
	lk := strings.ToLower(key)
	for _, k := range known {
		if dist := reading.EditDistance(lk, k, bestDist); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best != "" {
		return fmt.Sprintf("unknown key (did you mean %q?)", best)
	}
	return "unknown key (known keys: " + strings.Join(known, ", ") + ")"
}

// readSecretFiles reads every "<key>_file" of the config into its key: the sinks'
// token_file (influxdb), bearer_token_file and password_file (prometheus_remote_write)
// and password_file (mqtt), and the mqtt sources' password_file. dir is the directory
// of the config file, against which relative paths are resolved.
func (c *Config) readSecretFiles(dir string) problems {
	var ps problems
	for i := range c.Sinks {
		s, p := &c.Sinks[i], indexPath("sinks", i)
		if x := s.InfluxDB; x != nil {
			ps.secretFile(p+".influxdb", "token", x.TokenFile, &x.Token, dir, "token")
		}
		if x := s.PrometheusRemoteWrite; x != nil {
			ps.secretFile(p+".prometheus_remote_write", "bearer_token", x.BearerTokenFile, &x.BearerToken, dir, "token")
			ps.secretFile(p+".prometheus_remote_write", "password", x.PasswordFile, &x.Password, dir, "password")
		}
		if x := s.MQTT; x != nil {
			ps.secretFile(p+".mqtt", "password", x.PasswordFile, &x.Password, dir, "password")
		}
	}
	for i := range c.MQTT {
		m := &c.MQTT[i]
		ps.secretFile(indexPath("mqtt", i), "password", m.PasswordFile, &m.Password, dir, "password")
	}
	return ps
}

// secretFile reads file, the value of key+"_file" in the block at path p, into
// *secret (what names it in errors), unless key is set as well: one rule for every
// "key or key_file" pair.
func (ps *problems) secretFile(p, key, file string, secret *Secret, dir, what string) {
	if file == "" {
		return
	}
	path := p + "." + key + "_file"
	if *secret != "" {
		ps.add(path, 0, "set %s or %s_file, not both", key, key)
		return
	}
	v, err := readSecretFile(file, dir, what)
	if err != nil {
		ps.add(path, 0, "%v", err)
		return
	}
	*secret = Secret(v)
}

// readSecretFile reads a secret (what: "token", "password") from the file name,
// relative to dir, without its surrounding spaces and newlines. The file must be a
// regular file of at most MaxSecretFile bytes; no error quotes its content.
func readSecretFile(name, dir, what string) (string, error) {
	if !filepath.IsAbs(name) {
		name = filepath.Join(dir, name)
	}
	data, err := ReadFile(name, MaxSecretFile)
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %w", what, err)
	}
	secret := strings.TrimSpace(string(data))
	if secret == "" {
		return "", errors.New("file is empty")
	}
	return secret, nil
}
