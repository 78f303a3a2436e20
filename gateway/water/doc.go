// Package water is the surface-water maths of envgate: GB 3838-2002 classes per
// parameter and the single-factor section class as pure functions, and an Aggregator
// that turns the readings of one monitoring section (a site, fed by any number of
// devices) into the derived series of the water measurement.
//
// Section references (§3.x) are to the project's domain reference, docs/standards.md; its
// tags are [T] read in the standard, [S] confirmed by secondary sources, [U] not
// confirmed (configurable here).
//
// # Classes
//
// ParamClass classifies one value against Table 1 (docs/standards.md §3.1 [T]): the best class
// whose limit the value meets, "≤ limit" for concentrations and "≥ limit" for
// dissolved oxygen, a value equal to a limit meeting that class (§3.2); ClassWorseThanV
// (劣V, 6) if it meets not even V. Comparisons are exact.
//
//	param           direction  I      II     III   IV     V      note
//	ph              within     6–9 ⇒ I, outside ⇒ 劣V           no gradation (§3.2)
//	do              ≥          7.5    6      5     3      2      I: 90 % saturation or 7.5 mg/L; 7.5 used (§3.2)
//	codmn           ≤          2      4      6     10     15
//	cod             ≤          15     15     20    30     40     COD (dichromate, CODCr); never II: I and II share 15
//	bod5            ≤          3      3      4     6      10     never II: I and II share 3
//	nh3n            ≤          0.15   0.5    1.0   1.5    2.0
//	tp, river       ≤          0.02   0.1    0.2   0.3    0.4
//	tp, lake/res.   ≤          0.01   0.025  0.05  0.1    0.2
//	tn, lake/res.   ≤          0.2    0.5    1.0   1.5    2.0    ErrNotApplicable in a river
//	fecal_coliform  ≤          200    2000   10000 20000  40000  per litre; not in the catalog
//	water_temperature          —                                 ErrNotClassified (limits a change, not a level)
//
// Evaluate applies the single-factor rule (GB 3838-2002 §5.1 [T], 2011 method §3.2
// [S]): the section class is the worst class of the evaluated parameters, which are
// all classified ones except water temperature, fecal coliform and TN. TN is
// classified for lakes and reservoirs and reported (class_tn), but counts in the
// section class only with Rules.TNInClass; in a river it has no limits, so it is
// averaged (tn_mean) but neither classified nor evaluated. For the parameters worse
// than the target class Evaluate gives the exceedance multiple (超标倍数)
// (C − L)/L against the target's limit L, which with the default target III is the
// (C − C_III)/C_III of §3.2 [U]. pH has none; DO has none unless Rules.DOExceedance,
// then (L − C)/L, positive when the target is missed like the others (§3.2 [U]:
// whether practice excludes DO is not confirmed).
//
// # Derived quantities
//
// The Aggregator emits these readings for each window, stamped with the window's
// start, with Site = Config.Site and Device = Config.Device ("section" by default).
// gateway/derive registers them in the reading catalog (see Quantities).
//
//	name            unit      when                                meaning
//	<p>_mean        as <p>    ≥ 1 sample of <p>                   arithmetic mean of the window (§3.2), p = ph, do, codmn, cod, bod5, nh3n, tp, tn
//	class_<p>       1         ≥ MinSamples samples, classified    class of <p>_mean, 1–5 = I–V, 6 = 劣V (no class_tn in a river)
//	class           1         an evaluated parameter is valid     section class: the largest evaluated class_<p>
//	target_class    1         with class                          Config.Target, 1–5; always Good
//	target_missed   1         with class                          number of evaluated parameters worse than the target
//	worst_param     1         with class                          Param.Code of the worst evaluated parameter (below)
//	params_missing  1         every window, even empty            required parameters without a valid mean; always Good
//
// worst_param carries the number of the parameter's HJ 212-2017 factor code (Table
// B.1, docs/standards.md §4.8 [T]), so it needs no private table:
//
//	1001 ph (w01001)   1009 do (w01009)   1019 codmn (w01019)   1018 cod (w01018)
//	1017 bod5 (w01017)   21003 nh3n (w21003)   21011 tp (w21011)
//	21001 tn (w21001, only with TNInClass)
//
// The worst parameter is the one with the worst class; a tie goes to the larger
// exceedance multiple (one without a multiple ranks last), then to the order of
// Params(). Main pollutants (MainPollutants, §3.2 [S]) are ranked the same way.
//
// # Insufficient data and quality
//
// A parameter with fewer than Config.MinSamples samples in a window gets a Suspect
// <p>_mean and no class_<p>, and takes no part in the section class. A required
// parameter (Config.Required) without a valid mean counts in params_missing and makes
// class, target_missed and worst_param Suspect: a class from fewer parameters is only
// a lower bound of the true one. COD and BOD5 are not required by default (an
// automatic station measures the permanganate index; COD by dichromate and BOD5 over
// five days are laboratory methods few stations run online): when a section reports
// them they are classified and count in the section class like any other evaluated
// parameter, and a window without them is not suspect. A laboratory BOD5 result is
// known five days after its sample; stamped with the sample's time it is later than
// any usual Lateness and is dropped as late. A window where no evaluated parameter is valid emits
// no class at all; params_missing is emitted for every window, so a silent station is
// explicit. A Suspect input sample makes its mean, its class and (for an evaluated
// parameter) the section results Suspect. Bad readings are never used.
//
// # Window
//
// Multiple measurements in a period are averaged (§3.2); the standards do not fix the
// period. A national surface-water automatic station analyses one sample every 4 hours
// (not in docs/standards.md [U]), so the default window is 4 hours aligned to local
// midnight in Asia/Shanghai (00–04, 04–08, … 20–24 h): one window per station cycle,
// whose class is the station's result. An hourly window would leave three hours in four
// empty. The window is configurable to any length dividing 24 h, so a continuous probe
// polled every minute can be evaluated hourly (raise MinSamples accordingly), and a
// daily class is one window of 24 h. The default MinSamples is 1 (one station result
// per window) and the default Lateness 1 h (analysis takes tens of minutes): project
// choices, not from a standard. Means are rounded to MeanDigits (10) significant
// digits so that averaging cannot push a value sitting on a limit into the next class.
//
// The Aggregator keeps no state on disk: after a restart the window in progress has
// only the samples received since.
package water
