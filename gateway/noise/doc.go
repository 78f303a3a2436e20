// Package noise is the acoustic maths of envgate: energy averages, percentile levels,
// day/night periods and GB 3096-2008 limits as pure functions, and an Aggregator that
// turns one noise device's samples into the derived series of the noise measurement.
//
// Section references (§1.x) are to the project's domain reference, docs/standards.md. Levels are float64 throughout;
// nothing is rounded on the way, reading.RoundHalfEven is for output (HJ 212 carries one
// decimal).
//
// # Derived quantities
//
// The Aggregator emits these readings. Time is the start of the window (docs/data-model.md)
// except for lmax_burst, stamped at the burst's peak. gateway/derive registers them in
// the reading catalog (reading.Register(Quantities()...)).
//
//	name              unit   per                   meaning
//	laeq_1m           dB(A)  clock minute          LAeq of the minute
//	laeq_1h           dB(A)  clock hour            LAeq of the hour
//	l5_1h             dB(A)  clock hour            L5 (exceeded by 5 % of the samples)
//	l10_1h            dB(A)  clock hour            L10, peaks
//	l50_1h            dB(A)  clock hour            L50, median
//	l90_1h            dB(A)  clock hour            L90, background
//	l95_1h            dB(A)  clock hour            L95
//	lmax_1h           dB(A)  clock hour            largest sample
//	lmin_1h           dB(A)  clock hour            smallest sample
//	sd_1h             dB     clock hour            sample standard deviation (n−1)
//	vdr_1h            %      clock hour            valid-data rate; always emitted, always good
//	exceedance_1h     dB     clock hour            laeq_1h − limit of the period the hour starts in; may be negative
//	ld                dB(A)  day period            LAeq of the day (energy mean of the valid samples)
//	ln                dB(A)  night period          LAeq of the night, labelled by its start
//	exceedance_day    dB     day period            ld − day limit, with ld's quality; may be negative
//	exceedance_night  dB     night period          ln − night limit, with ln's quality
//	vdr_period        %      day or night period   valid-data rate; always emitted, always good
//	ldn               dB(A)  day + next night      Ldn, 10 dB night penalty, configured hours (16/8)
//	laeq_24h          dB(A)  calendar day          LAeq of local 00:00–24:00 (energy mean of the valid samples)
//	vdr_24h           %      calendar day          valid-data rate; always emitted, always good
//	lden_day          dB(A)  EU day                Lday: energy mean of the part's hourly LAeq (Config.Lden, 07–19)
//	lden_evening      dB(A)  EU evening            Levening, no penalty (19–23)
//	lden_night        dB(A)  EU night              Lnight, no penalty (23–07), labelled by its start
//	lden              dB(A)  Lden 24 h             EU Lden from the three parts, weighted by their hour counts
//	lmax_burst        dB(A)  night burst event     peak of a run of samples above night limit + margin
//
// A window without data emits only its valid-data rate (0 %), so missing data is
// explicit. Level readings are Suspect when the window's valid-data rate is below
// Config.MinValidHour (minutes and hours) or Config.MinValidPeriod (periods and
// calendar days; Ldn if its day or night is Suspect; a part of Lden if fewer than that
// fraction of its hours have a good laeq_1h, and Lden if a part is), or when weather
// invalidated the window; otherwise Good. The Lden 24 hours run from Config.Lden's day
// start to the same hour the next day, so its night is one night; each part is emitted
// when its last hour closes. Values are not rounded: use reading.RoundHalfEven(v, 1) for display.
//
// # Validity
//
// The valid-data rate is VDR = n/N (HJ 906-2017, docs/standards.md §1.6) with both counted as
// time: the duration covered by valid samples over the window's length, at most 100 %.
// An `la` sample covers Config.Sample; a meter's own `laeq` value covers its period
// (Config.LaeqPeriod, or the cadence learned from its times), never the gap before it,
// so missing values lower the rate (docs/standards.md §1.3, §1.6).
// The Leq of a window is the energy mean over the valid data only (the natural reading
// of HJ 906 formula (2), which was not read [U]). HJ 906's minimum VDR and its rain and
// wind exclusion rules were not read either [U]; the thresholds are configuration, with
// a placeholder of 75 % that is not from HJ 906, and VDR is stored next to every
// aggregate so it can be judged again later.
package noise
