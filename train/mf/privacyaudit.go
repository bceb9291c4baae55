package mf

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/veil-privacy/veil/privacy/audit"
	"github.com/veil-privacy/veil/privacy/dp"
)

// ErrAuditViolation reports an empirical ε lower bound above the proven ε:
// the trainer or its accounting is broken.
var ErrAuditViolation = errors.New("privacy audit: the empirical lower bound exceeds the proven ε")

// AuditConfig sets up the one-run privacy audit (Steinke, Nasr and
// Jagielski 2023) and the membership-inference baseline.
type AuditConfig struct {
	Canaries    int     `yaml:"canaries"`     // m canary subjects, each included with probability ½ (default 1000)
	CanaryItems int     `yaml:"canary_items"` // interactions of each canary, each with its own new item (default 10)
	Guesses     int     `yaml:"guesses"`      // r: the top r/2 scores are guessed in, the bottom r/2 out (default m/5)
	Confidence  float64 `yaml:"confidence"`   // of the lower bound (default 0.95)
	// MembershipHoldout is the share of real subjects left out of the
	// audit's training run, the non-members of the membership-inference
	// baseline (default 0.1).
	MembershipHoldout float64 `yaml:"membership_holdout"`
}

// DefaultAuditConfig returns the defaults above.
func DefaultAuditConfig() AuditConfig {
	return AuditConfig{Canaries: 1000, CanaryItems: 10, Confidence: 0.95, MembershipHoldout: 0.1}
}

// UnmarshalYAML fills what the YAML leaves out from DefaultAuditConfig.
func (c *AuditConfig) UnmarshalYAML(unmarshal func(any) error) error {
	type plain AuditConfig
	p := plain(DefaultAuditConfig())
	if err := unmarshal(&p); err != nil {
		return err
	}
	*c = AuditConfig(p)
	return nil
}

// Validate checks the settings against the model's.
func (c AuditConfig) Validate(model Config) error {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w: privacy_audit: %s", ErrConfig, fmt.Sprintf(f, a...))
	}
	switch {
	case c.Canaries < 10 || c.Canaries > 1_000_000:
		return bad("canaries %d: want 10..1000000", c.Canaries)
	case c.CanaryItems < 1 || c.CanaryItems > model.MaxInteractions:
		return bad("canary_items %d: want 1..max_interactions (%d)", c.CanaryItems, model.MaxInteractions)
	case c.Guesses < 0 || c.Guesses > c.Canaries:
		return bad("guesses %d: want 0 (m/5) .. canaries", c.Guesses)
	case !(c.Confidence > 0.5 && c.Confidence < 1):
		return bad("confidence %v: want (0.5, 1)", c.Confidence)
	case !(c.MembershipHoldout > 0 && c.MembershipHoldout < 0.5):
		return bad("membership_holdout %v: want (0, 0.5)", c.MembershipHoldout)
	}
	return nil
}

// AuditResult is what the privacy audit found.
type AuditResult struct {
	Canaries int `json:"canaries"`
	Included int `json:"canaries_included"`
	Guesses  int `json:"guesses"`
	Correct  int `json:"correct_guesses"`
	// EpsilonLowerBound: with the stated confidence the trainer is not
	// (ε', δ)-DP for any ε' below it.
	EpsilonLowerBound float64  `json:"epsilon_lower_bound"`
	ProvenEpsilon     *float64 `json:"proven_epsilon"` // null: non-private
	Delta             float64  `json:"delta"`
	Confidence        float64  `json:"confidence"`
	// MembershipAUC is the AUC of a loss-threshold membership-inference
	// attack (lower loss: member) on real subjects in and out of the
	// audit's training run; 0.5 is a coin flip.
	MembershipAUC float64 `json:"membership_inference_auc"`
	Members       int     `json:"mia_members"`
	NonMembers    int     `json:"mia_non_members"`
	Violation     bool    `json:"violation"`
}

// AuditPrivacy runs the one-run audit: it adds m canary subjects, each with
// its own new items, includes each with probability ½ (secure randomness
// the trainer never sees), leaves a share of the real subjects out, trains
// once with cfg and plan (the production settings; its spend must have
// been recorded), then guesses which canaries were in from their scores
// under the trained model and turns the correct guesses into an ε lower
// bound. A lower bound above the proven ε returns the result and an error
// wrapping ErrAuditViolation.
func AuditPrivacy(ctx context.Context, d *Data, cfg Config, plan Plan, ac AuditConfig, log *slog.Logger) (*AuditResult, error) {
	if err := ac.Validate(cfg); err != nil {
		return nil, err
	}
	coin := rand.New(dp.NewSecureSource())
	m := ac.Canaries
	r := ac.Guesses
	if r == 0 {
		r = max(2, m/5)
	}
	r -= r % 2
	res := &AuditResult{Canaries: m, Guesses: r, Delta: plan.Delta, Confidence: ac.Confidence}
	// The audit's data: members among the real subjects, the included
	// canaries, and every canary item in the catalog (the catalog is
	// public; only the interactions are the canaries' data).
	ad := &Data{Items: slices.Clone(d.Items)}
	member := make([]bool, len(d.Subjects))
	for s := range d.Subjects {
		if coin.Float64() >= ac.MembershipHoldout {
			member[s] = true
			ad.Subjects = append(ad.Subjects, d.Subjects[s])
			ad.Rows = append(ad.Rows, d.Rows[s])
		}
	}
	canaryRows := make([][]Interaction, m)
	included := make([]bool, m)
	for i := range m {
		rows := make([]Interaction, ac.CanaryItems)
		for j := range rows {
			rows[j] = Interaction{Item: int32(len(ad.Items)), Weight: 1}
			ad.Items = append(ad.Items, fmt.Sprintf("__veil_canary_%d_%d", i, j))
		}
		canaryRows[i] = rows
		if coin.IntN(2) == 1 {
			included[i] = true
			res.Included++
			ad.Subjects = append(ad.Subjects, fmt.Sprintf("__veil_canary_%d", i))
			ad.Rows = append(ad.Rows, rows)
		}
	}
	// The audit's items are its catalog, in ad's order, so that the model
	// indexes items as ad does; only the guesses of this run are released.
	cfg.Catalog = ad.Items
	// The audit observes DP-SGD's own output: the shrinkage toward the
	// prior is post-processing of it, and it assumes the planned noise, so
	// that it would hide a trainer that skipped the noise.
	cfg.rawIterate = true
	model, _, err := Fit(ctx, ad, cfg, plan, FitOptions{Log: log})
	if err != nil {
		return nil, fmt.Errorf("privacy audit: %w", err)
	}
	// Score: the canary's predicted preference for its own items, its
	// factor solved from its own interactions, the same for every canary.
	solver := NewSolver(model)
	u, a, rhs := make([]float64, model.Dim), make([]float64, model.Dim*model.Dim), make([]float64, model.Dim)
	type scored struct {
		score float64
		in    bool
	}
	scores := make([]scored, m)
	for i, rows := range canaryRows {
		if err := solver.Solve(rows, u, a, rhs); err != nil {
			return nil, err
		}
		s := 0.0
		for _, x := range rows {
			s += model.predict(u, int(x.Item))
		}
		scores[i] = scored{s / float64(len(rows)), included[i]}
	}
	slices.SortFunc(scores, func(x, y scored) int { return cmp.Compare(y.score, x.score) })
	for k := range r / 2 {
		if scores[k].in {
			res.Correct++
		}
		if !scores[m-1-k].in {
			res.Correct++
		}
	}
	if res.EpsilonLowerBound, err = audit.EpsilonLowerBound(m, r, res.Correct, plan.Delta, 1-ac.Confidence); err != nil {
		return nil, err
	}
	res.MembershipAUC, res.Members, res.NonMembers = membershipAUC(model, d, member, coin)
	if cfg.Private() {
		e := plan.Epsilon
		res.ProvenEpsilon = &e
		if res.EpsilonLowerBound > e {
			res.Violation = true
			return res, fmt.Errorf("%w: %.3g > %.3g (%d of %d guesses right)", ErrAuditViolation, res.EpsilonLowerBound, e, res.Correct, r)
		}
	}
	return res, nil
}

func (m *Model) predict(u []float64, j int) float64 {
	r := m.Row(j)
	p := r[m.Dim]
	for q := range m.Dim {
		p += u[q] * r[q]
	}
	return p
}

// membershipAUC runs a loss-threshold attack: a subject's loss is the mean
// squared error of its own interactions under its solved factor; members
// should have lower losses. At most 5000 subjects per side are scored.
func membershipAUC(model *Model, d *Data, member []bool, r *rand.Rand) (float64, int, int) {
	solver := NewSolver(model)
	u, a, rhs := make([]float64, model.Dim), make([]float64, model.Dim*model.Dim), make([]float64, model.Dim)
	// Items the model does not know (none here) are skipped.
	var in, out []float64
	for _, s := range r.Perm(len(d.Subjects)) {
		if len(in) >= 5000 && len(out) >= 5000 {
			break
		}
		rows := d.Rows[s]
		if len(rows) == 0 || (member[s] && len(in) >= 5000) || (!member[s] && len(out) >= 5000) {
			continue
		}
		if solver.Solve(rows, u, a, rhs) != nil {
			continue
		}
		loss := 0.0
		for _, x := range rows {
			e := 1 - model.predict(u, int(x.Item))
			loss += e * e
		}
		loss /= float64(len(rows))
		if member[s] {
			in = append(in, loss)
		} else {
			out = append(out, loss)
		}
	}
	if len(in) == 0 || len(out) == 0 {
		return math.NaN(), len(in), len(out)
	}
	// AUC = P[loss(member) < loss(non-member)], ties half (Mann–Whitney).
	slices.Sort(out)
	wins := 0.0
	for _, l := range in {
		lo, _ := slices.BinarySearch(out, l)
		hi := lo
		for hi < len(out) && out[hi] == l {
			hi++
		}
		wins += float64(len(out)-hi) + 0.5*float64(hi-lo)
	}
	return wins / float64(len(in)*len(out)), len(in), len(out)
}
