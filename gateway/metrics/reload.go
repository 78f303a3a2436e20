package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	configReloadSuccess = desc("config", "reload_success",
		"1 if the last reload of the config file (SIGHUP, systemctl reload) was applied, 0 if it was refused and the running config kept.")
	configReloadTime = desc("config", "last_reload_success_timestamp_seconds",
		"Unix time the running config was loaded: the start, or the last reload applied.")
)

// ReloadState is the outcome of the config reloads: whether the last one was applied
// (true before any), and when the running config was loaded.
type ReloadState struct {
	OK     bool
	Loaded time.Time
}

// reloadCollector reports the config reloads at scrape time.
type reloadCollector struct {
	mu    sync.Mutex
	state func() ReloadState
}

func (c *reloadCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- configReloadSuccess
	ch <- configReloadTime
}

func (c *reloadCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	state := c.state
	c.mu.Unlock()
	if state == nil {
		return
	}
	s := state()
	ok := 0.0
	if s.OK {
		ok = 1
	}
	ch <- prometheus.MustNewConstMetric(configReloadSuccess, prometheus.GaugeValue, ok)
	ch <- prometheus.MustNewConstMetric(configReloadTime, prometheus.GaugeValue, float64(s.Loaded.UnixMilli())/1000)
}

// SetReload makes envgate_config_reload_success and
// envgate_config_last_reload_success_timestamp_seconds report state, called at every
// scrape. A later call replaces the function.
func (m *Metrics) SetReload(state func() ReloadState) {
	m.reload.mu.Lock()
	defer m.reload.mu.Unlock()
	m.reload.state = state
}
