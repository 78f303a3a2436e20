// Package noise is the acoustic maths of envgate: energy averages, percentile levels,
// day/night periods and GB 3096-2008 limits as pure functions, and an Aggregator that
// turns one noise device's samples into the derived series of the noise measurement.
//
// Section references (§1.x) are to the project's domain reference, docs/standards.md. Levels are float64 throughout;
// nothing is rounded on the way, RoundHalfEven is for output (HJ 212 carries one
// decimal).
//
// # Derived quantities
//
// The Aggregator emits these readings. Time is the start of the window (docs/data-model.md)
// except for lmax_burst, stamped at the burst's peak. gateway/derive registers them in
// the reading catalog (reading.Register(Quantities()...)).
//
//	name           unit   per                   meaning
//	laeq_1m        dB(A)  clock minute          LAeq of the minute
//	laeq_1h        dB(A)  clock hour            LAeq of the hour
//	l5_1h          dB(A)  clock hour            L5 (exceeded by 5 % of the samples)
//	l10_1h         dB(A)  clock hour            L10, peaks
//	l50_1h         dB(A)  clock hour            L50, median
//	l90_1h         dB(A)  clock hour            L90, background
//	l95_1h         dB(A)  clock hour            L95
//	lmax_1h        dB(A)  clock hour            largest sample
//	lmin_1h        dB(A)  clock hour            smallest sample
//	sd_1h          dB     clock hour            sample standard deviation (n−1)
//	vdr_1h         %      clock hour            valid-data rate; always emitted, always good
//	exceedance_1h  dB     clock hour            laeq_1h − limit of the period the hour starts in; may be negative
//	ld             dB(A)  day period            LAeq of the day (energy mean of the valid samples)
//	ln             dB(A)  night period          LAeq of the night, labelled by its start
//	vdr_period     %      day or night period   valid-data rate; always emitted, always good
//	ldn            dB(A)  day + next night      Ldn, 10 dB night penalty, configured hours (16/8)
//	lden           dB(A)  the same 24 h         EU Lden (07/19/23) from the hourly LAeq
//	lmax_burst     dB(A)  night burst event     peak of a run of samples above night limit + margin
//
// A window without data emits only its valid-data rate (0 %), so missing data is
// explicit. Level readings are Suspect when the window's valid-data rate is below
// Config.MinValidHour (minutes and hours) or Config.MinValidPeriod (periods; Ldn if its
// day or night is Suspect; Lden if fewer than that fraction of the hours of its day,
// evening or night have a good laeq_1h), or when weather invalidated the window;
// otherwise Good. Values are not rounded: use RoundHalfEven(v, 1) for display.
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
