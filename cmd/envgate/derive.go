package main

import (
	"fmt"

	"github.com/envgate/envgate/config"
	"github.com/envgate/envgate/gateway/derive"
)

// buildDerive turns the config's noise monitors into the derivers the pipeline and
// replay share.
func buildDerive(cfg *config.Config) (*derive.Set, error) {
	var ms []derive.Noise
	for i, s := range cfg.Noise.Sites {
		ac, err := cfg.Noise.Aggregator(i)
		if err != nil {
			return nil, fmt.Errorf("noise: %w", err)
		}
		ms = append(ms, derive.Noise{Zone: s.ZoneLabel(), QuietDistrict: s.QuietDistrict, Weather: s.Weather, Config: ac})
	}
	set, err := derive.New(derive.Monitors{Noise: ms, CloseAfter: cfg.Noise.CloseAfter})
	if err != nil {
		return nil, fmt.Errorf("noise.sites: %w", err)
	}
	return set, nil
}
