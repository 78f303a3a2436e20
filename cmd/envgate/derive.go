package main

import (
	"fmt"

	"github.com/envgate/envgate/config"
	"github.com/envgate/envgate/gateway/derive"
)

// buildDerive turns the config's noise, air and water monitors into the Set the
// pipeline and replay share.
func buildDerive(cfg *config.Config) (*derive.Set, error) {
	ms := derive.Monitors{CloseAfter: cfg.Noise.CloseAfter}
	for i, s := range cfg.Noise.Sites {
		ac, err := cfg.Noise.Aggregator(i)
		if err != nil {
			return nil, fmt.Errorf("noise: %w", err)
		}
		ms.Noise = append(ms.Noise, derive.Noise{Zone: s.ZoneLabel(), QuietDistrict: s.QuietDistrict, Weather: s.Weather, Config: ac})
	}
	for i := range cfg.Air.Sites {
		ac, err := cfg.Air.Aggregator(i)
		if err != nil {
			return nil, fmt.Errorf("air.sites[%d]: %w", i, err)
		}
		ms.Air = append(ms.Air, derive.Air{Config: ac})
	}
	for i := range cfg.Water.Sections {
		wc, err := cfg.Water.Aggregator(i)
		if err != nil {
			return nil, fmt.Errorf("water.sections[%d]: %w", i, err)
		}
		ms.Water = append(ms.Water, derive.Water{Config: wc})
	}
	if sc := &cfg.Screening; !sc.Off {
		ms.Screening = &derive.Screening{Rules: sc.Rules, References: sc.References(), UseSuspect: sc.UseSuspect,
			Hold: sc.Hold, Reach: sc.Reach()}
	}
	set, err := derive.New(ms)
	if err != nil {
		return nil, err
	}
	return set, nil
}
