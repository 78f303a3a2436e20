package config

import (
	"reflect"
	"testing"

	"github.com/envgate/envgate/gateway/water"
)

// TestWaterRequiredCODBOD5: a section may require COD and BOD5 (averaged and
// classified by gateway/water, optional unless listed); the list of what required may
// name follows the package, in Table 1 order.
func TestWaterRequiredCODBOD5(t *testing.T) {
	c, err := Parse([]byte(`
gateway: {id: box-1, site: canal}
water:
  sections:
    - {site: outfall-1, waterbody: river, required: [ph, do, cod, bod5]}
`), "box.yaml")
	if err != nil {
		t.Fatalf("Parse:\n%s", errLines(err))
	}
	cfg, err := c.Water.Aggregator(0)
	if err != nil {
		t.Fatal(err)
	}
	a, err := water.NewAggregator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.Config().Required, []water.Param{water.ParamPH, water.ParamDO, water.ParamCOD, water.ParamBOD5}; !reflect.DeepEqual(got, want) {
		t.Errorf("required = %v, want %v", got, want)
	}
	if want := []string{"ph", "do", "codmn", "cod", "bod5", "nh3n", "tp", "tn"}; !reflect.DeepEqual(waterParams, want) {
		t.Errorf("waterParams = %v, want %v", waterParams, want)
	}
	if !c.Water.Averaged("outfall-1", "cod") || !c.Water.Averaged("outfall-1", "bod5") || c.Water.Averaged("outfall-1", "turbidity") {
		t.Error("Averaged: want cod and bod5 averaged at the section's site, turbidity not")
	}
}
