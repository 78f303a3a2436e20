package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"
)

// MaxWebConfigFile bounds gateway.web_config_file: users with bcrypt hashes (60 bytes
// each) and, at most, a certificate chain and key written inline.
const MaxWebConfigFile = 1 * MiB

// WebTLS reports whether gateway.web_config_file configures TLS, so that the server
// speaks HTTPS. It is set by Load and Parse.
func (c *Config) WebTLS() bool { return c.webTLS }

// checkWebConfig resolves gateway.web_config_file against dir (the directory of the
// config file), making it absolute, and checks the file as the HTTP server will read
// it: a regular file of at most MaxWebConfigFile bytes, its cert_file, key_file and
// client_ca_file regular files of at most MaxPEMFile bytes (relative ones are relative
// to the web config file's directory, as exporter-toolkit reads them), and then
// everything exporter-toolkit's web.Validate checks: known keys only, bcrypt hashes,
// a certificate and key that load. The rules are the toolkit's; envgate adds only the
// checks of the files, because the toolkit reads them with os.ReadFile, which waits
// forever on a named pipe (docs/config.md, "Files").
func (c *Config) checkWebConfig(dir string) problems {
	g := &c.Gateway
	if g.WebConfigFile == "" {
		return nil
	}
	name := g.WebConfigFile
	if !filepath.IsAbs(name) {
		name = filepath.Join(dir, name)
	}
	if abs, err := filepath.Abs(name); err == nil {
		name = abs
	}
	// The server reads the file again at every request and TLS handshake, from
	// whatever the working directory is then.
	g.WebConfigFile = name
	var ps problems
	tls, err := checkWebConfigFile(name)
	if err != nil {
		ps.add("gateway.web_config_file", 0, "%v", err)
		return ps
	}
	c.webTLS = tls
	return ps
}

// checkWebConfigFile checks the web config file name (an absolute path) and reports
// whether it configures TLS. Errors name the file and, where the toolkit's message
// does not, the key.
func checkWebConfigFile(name string) (tls bool, err error) {
	data, err := ReadFile(name, MaxWebConfigFile)
	if err != nil {
		return false, fmt.Errorf("cannot read web config: %w", err)
	}
	// A lenient first reading, for the files the file names and the users; the
	// toolkit's strict one below reports what is wrong with the YAML itself.
	var wc web.Config
	if yaml.Unmarshal(data, &wc) == nil {
		wc.TLSConfig.SetDirectory(filepath.Dir(name))
		for _, f := range []struct{ key, path string }{
			{"cert_file", wc.TLSConfig.TLSCertPath},
			{"key_file", wc.TLSConfig.TLSKeyPath},
			{"client_ca_file", wc.TLSConfig.ClientCAs},
		} {
			if f.path == "" {
				continue
			}
			if _, err := ReadFile(f.path, MaxPEMFile); err != nil {
				return false, fmt.Errorf("%s: tls_server_config.%s: %w", name, f.key, err)
			}
		}
	}
	if err := web.Validate(name); err != nil {
		return false, fmt.Errorf("%s: %s", name, webProblem(err, wc))
	}
	return wc.TLSConfig.IsEnabled(), nil
}

var (
	yamlUnknownKey = regexp.MustCompile(`field (\S+) not found in type \S+`)
	yamlValue      = regexp.MustCompile("`[^`]*`")
)

// webProblem rewords an error of web.Validate for an installer: an unknown key is
// called one, a bad hash is given its user, a YAML error fits on one line, and no
// value of the file is quoted (a hash or an inline key).
func webProblem(err error, wc web.Config) string {
	if isBcrypt(err) {
		users := make([]string, 0, len(wc.Users))
		for u := range wc.Users {
			users = append(users, u)
		}
		slices.Sort(users)
		for _, u := range users {
			if _, err := bcrypt.Cost([]byte(wc.Users[u])); err != nil {
				return fmt.Sprintf("basic_auth_users.%s: not a bcrypt hash (%v); make one with \"envgate hash-password\" or \"htpasswd -nBC 10 %s\"", u, err, u)
			}
		}
		return fmt.Sprintf("basic_auth_users: not a bcrypt hash (%v)", err)
	}
	msg := err.Error()
	msg = yamlUnknownKey.ReplaceAllString(msg, `unknown key "$1"`)
	msg = yamlValue.ReplaceAllString(msg, "(value not shown)")
	lines := strings.Split(msg, "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(slices.DeleteFunc(lines, func(s string) bool { return s == "" }), " ")
}

// isBcrypt reports whether err is one of package bcrypt's: a stored hash that is not
// one.
func isBcrypt(err error) bool {
	var ip bcrypt.InvalidHashPrefixError
	var iv bcrypt.HashVersionTooNewError
	var ic bcrypt.InvalidCostError
	return errors.Is(err, bcrypt.ErrHashTooShort) || errors.As(err, &ip) || errors.As(err, &iv) || errors.As(err, &ic) ||
		strings.HasPrefix(err.Error(), "crypto/bcrypt:")
}
