// Package dp holds veil's differential privacy mechanisms: a cryptographically
// secure random source, Gaussian noise for vectors (secure against the
// floating-point attack: values rounded to a power-of-two lattice, exact
// discrete Gaussian noise on it; see secure.go), and the exact discrete
// Gaussian and discrete Laplace samplers of Canonne, Kamath and Steinke (2020)
// for integer counts released to people.
//
// Every release made with these mechanisms must be accounted for with
// privacy/accountant and recorded in the budget ledger of privacy/budget.
package dp
