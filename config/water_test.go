package config

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/water"
)

func TestWaterDefaultsAndAggregator(t *testing.T) {
	c, err := Parse([]byte(`
gateway: {id: box-1, site: canal}
water:
  sections:
    - {site: canal-lock-2, waterbody: river}
    - {site: east-lake, waterbody: lake, target: Ⅱ类, window: 24h, min_samples: 3, lateness: 2h, tn_in_class: true, do_exceedance: true, required: [tn, ph]}
    - {site: res-1, waterbody: reservoir, target: 4, required: []}
`), "box.yaml")
	if err != nil {
		t.Fatalf("Parse:\n%s", errLines(err))
	}
	w := c.Water
	if w.Timezone != "Asia/Shanghai" {
		t.Errorf("water.timezone = %q", w.Timezone)
	}
	want := WaterSection{Site: "canal-lock-2", Waterbody: "river", Target: "III", Window: 4 * time.Hour, MinSamples: 1, Lateness: time.Hour}
	if s := w.Sections[0]; !reflect.DeepEqual(s, want) {
		t.Errorf("water.sections[0] = %+v, want %+v", s, want)
	}

	for i := range w.Sections {
		cfg, err := w.Aggregator(i)
		if err != nil {
			t.Fatalf("Aggregator(%d): %v", i, err)
		}
		if _, err := water.NewAggregator(cfg); err != nil {
			t.Errorf("water.NewAggregator(Aggregator(%d)) = %v", i, err)
		}
	}
	cfg, _ := w.Aggregator(0)
	if cfg.Site != "canal-lock-2" || cfg.Device != "" || cfg.Waterbody != water.River || cfg.Target != water.ClassIII ||
		cfg.Window != 4*time.Hour || cfg.MinSamples != 1 || cfg.Lateness != time.Hour || cfg.TNInClass || cfg.DOExceedance ||
		cfg.Required != nil {
		t.Errorf("Aggregator(0) = %+v", cfg)
	}
	if _, off := time.Date(2026, 1, 1, 0, 0, 0, 0, cfg.Location).Zone(); off != 8*3600 {
		t.Errorf("Asia/Shanghai offset = %d s, want UTC+8", off)
	}
	a, _ := water.NewAggregator(cfg)
	if got := a.Config().Required; !reflect.DeepEqual(got, []water.Param{water.ParamPH, water.ParamDO, water.ParamCODMn, water.ParamNH3N, water.ParamTP}) {
		t.Errorf("package default required = %v", got)
	}

	cfg, _ = w.Aggregator(1)
	if cfg.Waterbody != water.Lake || cfg.Target != water.ClassII || cfg.Window != 24*time.Hour || cfg.MinSamples != 3 ||
		cfg.Lateness != 2*time.Hour || !cfg.TNInClass || !cfg.DOExceedance ||
		!reflect.DeepEqual(cfg.Required, []water.Param{water.ParamTN, water.ParamPH}) {
		t.Errorf("Aggregator(1) = %+v", cfg)
	}
	cfg, _ = w.Aggregator(2)
	if cfg.Target != water.ClassIV || cfg.Required == nil || len(cfg.Required) != 0 {
		t.Errorf("Aggregator(2) = %+v, want target IV and an empty, non-nil required", cfg)
	}
}

// TestWaterInCode checks Defaults and Validate on a config built in code, and that
// Aggregator reports a field it cannot convert.
func TestWaterInCode(t *testing.T) {
	c := Config{
		Gateway: Gateway{ID: "box-1"},
		Water:   Water{Sections: []WaterSection{{Site: "canal-lock-2", Waterbody: "river"}}},
	}
	c.Defaults()
	c.Defaults()
	if s := c.Water.Sections[0]; s.Target != "III" || s.Window != 4*time.Hour || s.MinSamples != 1 || s.Lateness != time.Hour {
		t.Errorf("water.sections[0] after Defaults = %+v", s)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
	c.Water.Sections[0].Target = "X"
	if _, err := c.Water.Aggregator(0); err == nil || !strings.HasPrefix(err.Error(), "sections[0].target: ") {
		t.Errorf("Aggregator with target X = %v", err)
	}
	c.Water.Timezone = "Mars/Olympus"
	if _, err := c.Water.Aggregator(0); err == nil || !strings.HasPrefix(err.Error(), "timezone: ") {
		t.Errorf("Aggregator with an unknown zone = %v", err)
	}
}

// TestWaterCheck feeds values past validateWater's own checks straight to check, which
// reports what water.NewAggregator refuses against the config keys.
func TestWaterCheck(t *testing.T) {
	w := Water{Timezone: "UTC", Sections: []WaterSection{{Site: "bad site", Waterbody: "sea", Target: "劣V",
		Window: 5 * time.Hour, MinSamples: -1, Lateness: -time.Second, Required: []string{"fecal_coliform", "tn"}}}}
	var got []string
	for _, p := range w.check(0) {
		got = append(got, p.Error())
	}
	want := []string{
		"water.sections[0].site: character ' ' not allowed (letters, digits, '-', '_', '.')",
		`water.sections[0].waterbody: "sea" is not river, lake or reservoir`,
		"water.sections[0].target: worse than V is not a class from I to V",
		"water.sections[0].window: 5h0m0s does not divide 24h",
		"water.sections[0].min_samples: -1 must not be negative",
		"water.sections[0].lateness: -1s must not be negative",
		`water.sections[0].required[0]: "fecal_coliform" is not one of [ph do codmn cod bod5 nh3n tp tn]`,
		"water.sections[0].required[1]: tn has no class in a sea (lakes and reservoirs only)",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("check(0) =\n  %q\nwant\n  %q", got, want)
	}
}

// TestWaterParams keeps waterParams in step with what gateway/water averages.
func TestWaterParams(t *testing.T) {
	var params []water.Param
	for _, p := range waterParams {
		params = append(params, water.Param(p))
	}
	a, err := water.NewAggregator(water.Config{Site: "s", Waterbody: water.Lake, Required: params})
	if err != nil {
		t.Fatalf("water.NewAggregator(required: %v) = %v", waterParams, err)
	}
	if got := a.Config().Required; len(got) != len(waterParams) {
		t.Errorf("required = %v, want all of %v", got, waterParams)
	}
	if _, err := water.NewAggregator(water.Config{Site: "s", Waterbody: water.Lake, Required: []water.Param{water.ParamWaterTemperature}}); err == nil {
		t.Error("water.NewAggregator accepts water_temperature as required; update waterParams")
	}
}
