// Package accountant computes the (ε, δ) that a sequence of differentially
// private releases spends, under the add-or-remove-one neighbouring relation
// with the subject as the unit of privacy.
//
// RDP is the Rényi DP accountant of Mironov, Talwar and Zhang (2019) for the
// Poisson-subsampled Gaussian, over the default orders of Google's
// dp_accounting, converted to (ε, δ) with the bound of Canonne, Kamath and
// Steinke (2020, Proposition 12) that dp_accounting uses. PLD is the privacy
// loss distribution accountant with the pessimistic connect-the-dots
// discretization of Doroshenko et al. (2022), as in dp_accounting's
// PLDAccountant; it is tighter than RDP and never reports less ε than the
// true value. Calibrate finds the smallest noise multiplier for a target ε;
// under PLD it searches on a 20× coarser discretization first and decides
// on the fine one, so the answer and its ε are those of the
// fine discretization. Composed PLDs are memoized, keyed by every
// parameter they depend on, so that a run's spend reuses the composition
// its calibration ended on, bit for bit.
//
// The formulas follow dp_accounting (github.com/google/differential-privacy,
// python/dp_accounting, Apache-2.0); tests compare with the reference values
// of its test suites and of Opacus.
package accountant
