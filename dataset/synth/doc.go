// Package synth generates a synthetic shop that looks like real e-commerce
// data: a category tree, Zipf item popularity, latent taste groups that give
// cohorts and recommendations structure to find, sessions of views, carts and
// purchases, returns and regions; and a consent ledger with realistic grant,
// deny and withdraw rates per purpose and jurisdiction, GPC opt-outs and a
// few erasure requests.
//
// Output is a pure function of the Config: every (subject, day) draws from a
// random stream of its own, so days are generated in parallel and the result
// does not depend on the number of workers. Events stream to Parquet one day
// partition at a time, so memory does not grow with the number of events.
package synth
