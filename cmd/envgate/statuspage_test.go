package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/envgate/envgate/config"
	"github.com/envgate/envgate/internal/testsvc"
)

// statusPageConfig is the demo config (config.Demo) with its state in state, HTTP on
// listen, its devices polled every second, and one more device that is dead: a Modbus
// TCP meter on a loopback port where nothing listens.
func statusPageConfig(t *testing.T, state, listen string, deadPort int) (yaml string, devices []string) {
	t.Helper()
	demo := string(config.Demo())
	const stateLine = "  state_dir: envgate-demo-state\n"
	if !strings.Contains(demo, stateLine) {
		t.Fatalf("the demo config lacks %q; update this test", stateLine)
	}
	demo = strings.Replace(demo, stateLine, fmt.Sprintf("  state_dir: %s\n  listen: %s\n  health_interval: 1s\n", state, listen), 1)
	for _, iv := range []string{"10s", "60s"} {
		demo = strings.ReplaceAll(demo, "interval: "+iv+"\n", "interval: 1s\n")
	}
	demo += fmt.Sprintf(`
buses:
  - name: bus-dead
    tcp: {address: "127.0.0.1:%d"}
    timeout: 200ms
    devices:
      - name: meter-dead
        slave: 1
        profile: generic-noise
        interval: 1s
# A limit every humidity reading breaks: the data-quality section shows it flagged.
screening:
  channels:
    - {device: weather-1, quantity: humidity, high: 1}
`, deadPort)
	cfg, err := config.Parse([]byte(demo), "status page config")
	if err != nil {
		t.Fatalf("config: %v\n%s", err, demo)
	}
	for _, d := range cfg.Devices {
		devices = append(devices, d.Name)
	}
	return demo, devices
}

// chromium starts a headless Chromium for the test, with the flags that keep it off
// the network (a closed network makes it hang otherwise) and a fresh profile in dir,
// and returns a browser context sized like a small phone, 360 CSS pixels wide.
func chromium(t *testing.T, dir string) context.Context {
	t.Helper()
	exe := testsvc.Binary(t, "chromium", "apt-get install chromium (scripts/install-deps.sh)")
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	t.Cleanup(cancel)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(filepath.Join(dir, "chromium-profile")),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(360, 800),
	)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(360, 800)); err != nil {
		t.Fatalf("start chromium %s: %v", exe, err)
	}
	return bctx
}

// TestStatusPageInChromium runs envgate on the demo config plus a dead Modbus meter and
// opens its status page in headless Chromium at phone width: every device of the demo
// config is shown and up, the noise level shown changes as readings arrive, the dead
// meter is shown down with its error, the bus's warning is listed, and nothing is
// wider than the screen. The screenshot is kept as an artifact: in
// $ENVGATE_TEST_ARTIFACTS if set, else in the test's temp dir (its path is logged).
func TestStatusPageInChromium(t *testing.T) {
	skipSubprocess(t)
	dir := t.TempDir()
	bctx := chromium(t, dir)
	bin := buildBinary(t)
	addr := loopback(t)
	yaml, devices := statusPageConfig(t, filepath.Join(dir, "state"), addr, testsvc.FreePort(t))
	cfgPath := filepath.Join(dir, "box.yaml")
	writeFile(t, cfgPath, yaml)
	p := startEnvgate(t, bin, cleanEnv(), "run", "-c", cfgPath)
	p.waitMetrics(t, addr, 10*time.Second, func(string) bool { return true })

	if err := chromedp.Do(bctx, chromedp.Navigate("http://"+addr+"/")); err != nil {
		t.Fatalf("open the status page: %v", err)
	}
	var shown []string
	upAll := waitFor(t, 20*time.Second, func() bool {
		var err error
		if shown, err = evalJS[[]string](bctx, `[...document.querySelectorAll("article[data-device]")].map(e => e.dataset.device + "=" + e.dataset.up)`); err != nil {
			return false
		}
		for _, d := range devices {
			if !slices.Contains(shown, d+"=up") {
				return false
			}
		}
		return true
	})
	if !upAll {
		t.Fatalf("the page shows devices %v; want each of the demo's %v up", shown, devices)
	}

	// The noise level shown changes as readings arrive (noise-1 reads every second).
	const laCell = `article[data-device="noise-1"] tr[data-quantity="la"] td[data-role="value"]`
	cell := `document.querySelector('` + laCell + `').textContent`
	first, err := evalJS[string](bctx, cell)
	if err != nil || !strings.HasSuffix(first, " dB(A)") {
		t.Fatalf("noise-1's la cell = %q (%v), want a level in dB(A)", first, err)
	}
	if !waitFor(t, 15*time.Second, func() bool {
		now, err := evalJS[string](bctx, cell)
		return err == nil && now != first
	}) {
		t.Errorf("noise-1's la stayed %q for 15 s; the page does not update", first)
	}

	// The dead meter: down, with its error; the bus's warning in the error list.
	type deadState struct {
		Up     string `json:"up"`
		Badge  string `json:"badge"`
		Error  string `json:"error"`
		Errors string `json:"errors"`
	}
	var dead deadState
	if !waitFor(t, 20*time.Second, func() bool {
		dead, err = evalJS[deadState](bctx, `(() => { const e = document.querySelector('article[data-device="meter-dead"]');
			return {up: e ? e.dataset.up : "", badge: e ? e.querySelector('[data-role="up"]').textContent : "",
				error: e && e.querySelector('[data-role="error"]') ? e.querySelector('[data-role="error"]').textContent : "",
				errors: document.querySelector("#errors").textContent}; })()`)
		return err == nil && dead.Up == "down" && dead.Error != "" && strings.Contains(dead.Errors, "bus down")
	}) {
		t.Errorf("meter-dead on the page: %+v; want up=down, badge DOWN, its last error, and the bus's warning listed", dead)
	}
	if dead.Badge != "DOWN" {
		t.Errorf("meter-dead's badge reads %q, want DOWN", dead.Badge)
	}

	// The data-quality section lists the channel the screening flags, with its reason.
	const flagged = `document.querySelector('tr[data-quality="weather-1/humidity"]')?.textContent ?? ""`
	var quality string
	if !waitFor(t, 20*time.Second, func() bool {
		quality, err = evalJS[string](bctx, flagged)
		return err == nil && strings.Contains(quality, "FLAGGED: RANGE") && strings.Contains(quality, "range ")
	}) {
		t.Errorf("data-quality row of weather-1/humidity: %q (%v); want it flagged, reason range, with a count", quality, err)
	}

	// Readable at 360 px: nothing wider than the screen, type at least 16 px.
	type measures struct {
		ScrollWidth float64  `json:"scrollWidth"`
		ClientWidth float64  `json:"clientWidth"`
		FontSize    float64  `json:"fontSize"`
		Wide        []string `json:"wide"` // elements reaching past the right edge
	}
	layout, err := evalJS[measures](bctx, `({scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth,
		fontSize: parseFloat(getComputedStyle(document.querySelector("td")).fontSize),
		wide: [...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth)
			.slice(0, 8).map(e => e.tagName + "." + e.className + ": " + e.textContent.slice(0, 40))})`)
	if err != nil {
		t.Fatalf("cannot measure the page: %v", err)
	}
	if layout.ScrollWidth > layout.ClientWidth || layout.FontSize < 16 {
		t.Errorf("page at 360 px: scroll width %v, client width %v, table text %v px; want no horizontal scrolling and text >= 16 px; too wide: %q",
			layout.ScrollWidth, layout.ClientWidth, layout.FontSize, layout.Wide)
	}

	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100)) // 100: PNG; less is JPEG
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	out := dir
	if d := os.Getenv("ENVGATE_TEST_ARTIFACTS"); d != "" {
		out = d
	}
	shot := filepath.Join(out, "statuspage-360px.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatalf("save screenshot: %v", err)
	}
	t.Logf("screenshot of the status page: %s (%d bytes)", shot, len(png))
}

// evalJS evaluates the JavaScript expression expr in the page of ctx and decodes its
// value into a T.
func evalJS[T any](ctx context.Context, expr string) (T, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}
