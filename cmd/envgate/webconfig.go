package main

import (
	"log/slog"
	"net"
	"net/http"

	"github.com/envgate/envgate/config"
	"github.com/prometheus/exporter-toolkit/web"
)

// serveHTTP serves srv on l until srv is shut down: plain HTTP when webConfig is
// empty, else TLS and basic auth as the web config file says (gateway.web_config_file,
// the file format of Prometheus exporters, read by github.com/prometheus/exporter-toolkit).
// The toolkit wraps srv.Handler, so every path the server answers is behind it, and
// serves on l itself, so the limits of newHTTPServer (connection caps, eviction,
// timeouts) hold for TLS connections too: net/http bounds a TLS handshake by the
// shortest of the read-header, read and write timeouts, and the limitListener counts
// a connection as waiting for its headers from the moment it is accepted, handshake
// included. The toolkit reads the file again at every request and handshake, so
// changed users and renewed certificates apply without a restart.
func serveHTTP(srv *http.Server, l net.Listener, webConfig string, log *slog.Logger) error {
	if webConfig == "" {
		return srv.Serve(l)
	}
	listen := []string{l.Addr().String()}
	systemd := false
	return web.Serve(l, srv, &web.FlagConfig{WebListenAddresses: &listen, WebSystemdSocket: &systemd, WebConfigFile: &webConfig},
		log.With("component", "http"))
}

// httpScheme returns the scheme the gateway's HTTP server speaks.
func httpScheme(cfg *config.Config) string {
	if cfg.WebTLS() {
		return "https"
	}
	return "http"
}
