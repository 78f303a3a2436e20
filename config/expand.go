package config

import (
	"fmt"
	"strings"
)

// expand replaces ${VAR} and ${VAR:-default} in s with values from lookup and $$ with
// a single $. A $ followed by anything else is kept as it is. ":-" uses the default
// when the variable is unset or empty, as in the shell.
//
// fromEnv reports whether an environment value went into the result (its text may be
// a secret, so callers must not echo it). The returned problems name variables but
// never quote s, which may be a secret.
func expand(s string, lookup func(string) (string, bool)) (out string, fromEnv bool, errs []string) {
	if !strings.Contains(s, "$") {
		return s, false, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i += 2
			continue
		case '{':
		default:
			b.WriteByte(c)
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			errs = append(errs, `"${" without a closing "}" (write "$$" for a literal "$")`)
			return "", fromEnv, errs
		}
		expr := s[i+2 : i+2+end]
		i += 2 + end + 1
		name, def, hasDef := strings.Cut(expr, ":-")
		if !isVarName(name) {
			errs = append(errs, `"${...}" needs a variable name of letters, digits and "_", not starting with a digit`)
			continue
		}
		v, ok := lookup(name)
		switch {
		case hasDef && v == "":
			v = def
		case !ok:
			errs = append(errs, fmt.Sprintf("environment variable %s is not set (write ${%s:-default} to give a default)", name, name))
			continue
		default:
			fromEnv = true
		}
		b.WriteString(v)
	}
	return b.String(), fromEnv, errs
}

// isVarName reports whether s is a shell-style variable name.
func isVarName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
