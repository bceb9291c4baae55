package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/dataset/synth"
	"github.com/veil-privacy/veil/lineage"
	"github.com/veil-privacy/veil/lineage/lineagetest"
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/privacy/release"
	"github.com/veil-privacy/veil/train/mf"
)

var update = flag.Bool("update", false, "rewrite golden files")

var logical = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

func shop(t *testing.T, subjects int) string {
	t.Helper()
	dir := t.TempDir()
	cfg := synth.DefaultConfig()
	cfg.Subjects, cfg.Items, cfg.Days, cfg.Groups = subjects, 300, 30, 5
	s, err := synth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	store, _ := dataset.NewFileStore(filepath.Join(dir, "shop"))
	if _, err := s.Write(context.Background(), store, "", "test"); err != nil {
		t.Fatal(err)
	}
	return dir
}

func jobConfig(dir string) JobConfig {
	cfg := DefaultJobConfig()
	cfg.Events = filepath.Join(dir, "shop", "events")
	cfg.Output = filepath.Join(dir, "out")
	cfg.Model.Dim, cfg.Model.Epsilon, cfg.Model.Accountant = 16, 8, "rdp"
	cfg.Budget = &budget.Config{Ledger: filepath.Join(dir, "ledger"), Policy: budget.Policy{Epsilon: 40, Delta: 1e-4, Period: "month"}}
	return cfg
}

func TestJobEndToEnd(t *testing.T) {
	dir := shop(t, 3000)
	cfg := jobConfig(dir)
	cfg.Evaluation.Curve, cfg.FactorsArrow = true, true
	ac := mf.DefaultAuditConfig()
	ac.Canaries, ac.CanaryItems = 200, 5
	cfg.Evaluation.PrivacyAudit = &ac
	rep, err := Run(context.Background(), cfg, logical, dataset.URLOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("subjects %d items %d: model %+v, non-private %+v, popularity %+v", rep.Subjects, rep.Items, rep.Eval.Model, *rep.Eval.NonPrivate, rep.Eval.Popularity)
	if rep.Guarantee == nil || rep.Guarantee.Epsilon > 8 || rep.Spent == nil || len(rep.Spent.Events) != 6*3 { // six runs: histogram, DP-SGD, partition selection each
		t.Fatalf("privacy: %+v, spent %+v", rep.Guarantee, rep.Spent)
	}
	if len(rep.Curve) != 5 || !math.IsInf(rep.Curve[4].Epsilon, 1) || rep.Recommended == 0 || rep.Contributors == nil || rep.Contributors.Capacity < rep.Subjects ||
		!strings.Contains(rep.Contributors.Filter, "/_steward/") {
		t.Fatalf("report %+v", rep)
	}
	if e := rep.Exposure; e == nil || e.Recommendations == 0 || !(e.Gini > 0 && e.Gini < 1) {
		t.Errorf("exposure %+v", e)
	}
	if a := rep.Audit; a == nil || a.Violation || a.ProvenEpsilon == nil || a.Canaries != 200 {
		t.Errorf("privacy audit %+v", a)
	}
	if rep.Eval.NonPrivate.Recall20 <= rep.Eval.Popularity.Recall20 {
		t.Errorf("non-private Recall@20 %.3f not above popularity %.3f", rep.Eval.NonPrivate.Recall20, rep.Eval.Popularity.Recall20)
	}
	// Committed outputs, all listed in their manifests: the release and
	// the steward report apart.
	ref, _ := open.Ref(context.Background(), rep.Output, dataset.URLOptions{})
	m, err := dataset.VerifyManifest(context.Background(), ref.Store, ref.Key)
	if err != nil {
		t.Fatal(err)
	}
	sref, _ := open.Ref(context.Background(), rep.Steward, dataset.URLOptions{})
	sm, err := dataset.VerifyManifest(context.Background(), sref.Store, sref.Key)
	if err != nil {
		t.Fatal(err)
	}
	if m.Class != dataset.ClassRelease || sm.Class != dataset.ClassSteward || !strings.HasPrefix(rep.Steward, "file://"+filepath.Join(dir, "_steward", "train", "dt=2026-11-27")) {
		t.Errorf("release class %q, steward report %s class %q", m.Class, rep.Steward, sm.Class)
	}
	for _, f := range []string{FactorsFile, RecommendationsFile, CardJSONFile, CardMarkdownFile} {
		if _, ok := m.Find(f); !ok {
			t.Errorf("release lacks %s (has %v)", f, m.Files)
		}
	}
	for _, f := range []string{StewardReportFile, StewardCardFile, CurvePNGFile, ExposurePNGFile, lineage.ContributorsFile} {
		if _, ok := sm.Find(f); !ok {
			t.Errorf("steward report lacks %s (has %v)", f, sm.Files)
		}
	}
	key := func(name string) string { f, _ := m.Find(name); return dataset.Join(ref.Key, f.Key) }
	read := func(name string) []byte {
		b, err := dataset.ReadAll(context.Background(), ref.Store, key(name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	readSteward := func(name string) []byte {
		f, _ := sm.Find(name)
		b, err := dataset.ReadAll(context.Background(), sref.Store, dataset.Join(sref.Key, f.Key))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, err := png.Decode(bytes.NewReader(readSteward(CurvePNGFile))); err != nil {
		t.Errorf("curve: %v", err)
	}
	if err := lineagetest.ValidateCard("..", read(CardJSONFile)); err != nil {
		t.Errorf("model card does not validate: %v", err)
	}
	md := string(read(CardMarkdownFile))
	for _, want := range []string{"## Privacy and risks", "this model's own guarantee", "budget charged for this run", "release: privacy-utility curve point ε 4", "subject", "Checking the guarantee empirically", "## Limitations"} {
		if !strings.Contains(md, want) {
			t.Errorf("card lacks %q:\n%s", want, md)
		}
	}
	smd := string(readSteward(StewardCardFile))
	for _, want := range []string{"steward appendix", "popularity baseline", "empirical ε lower bound (95%)", "membership inference AUC", "mean gradient norm before clipping", "![privacy-utility curve](privacy_utility-", "![exposure of the recommendations](exposure-"} {
		if !strings.Contains(smd, want) {
			t.Errorf("steward appendix lacks %q:\n%s", want, smd)
		}
	}
	var report Report
	if err := json.Unmarshal(readSteward(StewardReportFile), &report); err != nil || report.Subjects != rep.Subjects || report.Charged == nil {
		t.Fatalf("steward report: %+v, %v", report, err)
	}
	// Factors: one row per item of the model (chosen by DP partition
	// selection here: no catalog); recommendations only for consenting
	// subjects, never an item the subject already has.
	f, err := dataset.OpenParquet(context.Background(), ref.Store, key(FactorsFile), dataset.ItemFactorsContract)
	if err != nil {
		t.Fatal(err)
	}
	if f.NumRows() != int64(rep.Training.Items) || rep.Training.Items > rep.Items {
		t.Errorf("%d factor rows for %d items of the model, %d in the data", f.NumRows(), rep.Training.Items, rep.Items)
	}
	ar, err := ipc.NewFileReader(bytes.NewReader(read(FactorsArrowFile)))
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := ar.RecordBatch(0); err != nil || rec.NumRows() != int64(rep.Training.Items) || rec.Schema().Field(2).Type.String() != "fixed_size_list<item: float32, nullable>[16]" {
		t.Errorf("Arrow factors: %v rows, schema %v, %v", rec.NumRows(), rec.Schema(), err)
	}
	// No checkpoint left behind.
	if _, err := os.Stat(filepath.Join(dir, "out", "_checkpoints", "dt=2026-11-27", checkpointFile)); !os.IsNotExist(err) {
		t.Errorf("checkpoint left after commit: %v", err)
	}
}

func TestJobWarnsOfLargeDelta(t *testing.T) {
	dir := shop(t, 500)
	cfg := jobConfig(dir)
	cfg.Model.Delta, cfg.Budget.Delta, cfg.TopK = 0.01, 0.5, 0
	rep, err := Run(context.Background(), cfg, logical, dataset.URLOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "not below 1/") {
		t.Fatalf("warnings %v", rep.Warnings)
	}
	if md := string(lineage.RenderCard(StewardCard(rep), "")); !strings.Contains(md, "Warning: δ = 0.01") {
		t.Errorf("the steward appendix does not carry the warning:\n%s", md)
	}
	if md := string(lineage.RenderCard(Card(rep))); strings.Contains(md, "Warning") {
		t.Errorf("the public card carries a warning that depends on the number of subjects:\n%s", md)
	}
}

func TestJobRefusals(t *testing.T) {
	dir := shop(t, 500)
	cfg := jobConfig(dir)
	cfg.Budget.Policy.Epsilon = 5
	if _, err := Run(context.Background(), cfg, logical, dataset.URLOptions{}, nil); !errors.Is(err, budget.ErrExhausted) {
		t.Fatalf("ε 8 against a budget of 5: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
		t.Errorf("a refused run wrote output: %v", err)
	}
	cfg = jobConfig(dir)
	cfg.Budget = nil
	if err := cfg.Validate(); !errors.Is(err, mf.ErrConfig) {
		t.Errorf("DP without a budget: %v", err)
	}
	cfg = jobConfig(dir)
	cfg.Interactions.EventWeights = map[string]float64{"wishlist": 1}
	if _, err := Run(context.Background(), cfg, logical, dataset.URLOptions{}, nil); !errors.Is(err, mf.ErrInput) {
		t.Errorf("no interactions: %v", err)
	}
}

// TestJobResumesAfterCrash kills a training run after a checkpoint (in a
// child process, by failpoint) and checks that the rerun resumes it under
// the same run id without spending budget twice.
func TestJobResumesAfterCrash(t *testing.T) {
	if dir := os.Getenv("VEIL_TRAIN_CHILD"); dir != "" {
		cfg := jobConfig(dir)
		cfg.CheckpointEvery = 1
		Run(context.Background(), cfg, logical, dataset.URLOptions{}, nil)
		os.Exit(0)
	}
	dir := shop(t, 800)
	cmd := exec.Command(os.Args[0], "-test.run=^TestJobResumesAfterCrash$")
	cmd.Env = append(os.Environ(), "VEIL_TRAIN_CHILD="+dir, "VEIL_FAILPOINT=train:after-checkpoint:2")
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 137 {
		t.Fatalf("child: %v", err)
	}
	ckpt := filepath.Join(dir, "out", "_checkpoints", "dt=2026-11-27", checkpointFile)
	data, err := os.ReadFile(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	c, err := mf.UnmarshalCheckpoint(data)
	if err != nil || c.StepsDone != 2 {
		t.Fatalf("checkpoint %+v, %v", c, err)
	}
	cfg := jobConfig(dir)
	cfg.CheckpointEvery = 1
	rep, err := Run(context.Background(), cfg, logical, dataset.URLOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.RunID != c.RunID || rep.ResumedAt != 2 || rep.Training.StepsDone != rep.Training.Plan.Steps {
		t.Fatalf("rerun: run %s (checkpoint %s), resumed at %d, %d of %d steps", rep.RunID, c.RunID, rep.ResumedAt, rep.Training.StepsDone, rep.Training.Plan.Steps)
	}
	store, _ := dataset.NewFileStore(filepath.Join(dir, "ledger"))
	id, err := cfg.Identity(context.Background(), dataset.URLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := budget.Open(store, "").Records(context.Background(), id)
	if err != nil || len(recs) != 1 {
		t.Fatalf("ledger has %d records (want 1: the retry is not charged again): %v", len(recs), err)
	}
}

func TestCardGolden(t *testing.T) {
	rep := &Report{RunID: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", LogicalDate: "2026-11-27", Output: "file:///srv/veil/models/dt=2026-11-27/run=0193a1b2",
		Events: "file:///srv/veil/shop/events", Purposes: Purposes, Subjects: 48211, Items: 19874, Interactions: 1893345, Model: mf.DefaultConfig(),
		Guarantee: &Guarantee{Epsilon: 7.98, Delta: 1e-6, Unit: "subject", Accountant: "pld", NoiseMultiplier: 1.07, SamplingRate: 0.4, Steps: 5, Clip: 1, MaxInteractions: 200},
		Eval: Eval{Holdout: holdoutText(DefaultJobConfig().Evaluation), Model: mf.Metrics{Recall10: 0.31, Recall20: 0.45, NDCG10: 0.22, NDCG20: 0.26, Coverage: 0.4},
			NonPrivate: &mf.Metrics{Recall10: 0.33, Recall20: 0.48, NDCG10: 0.24, NDCG20: 0.28, Coverage: 0.5}, Popularity: mf.Metrics{Recall10: 0.03, Recall20: 0.05, NDCG10: 0.02, NDCG20: 0.03, Coverage: 0.001}},
		Recommended: 30112}
	rep.Filter.RowsRead, rep.Filter.RowsKept = 9000000, 7000000
	proven := 7.98
	rep.Audit = &mf.AuditResult{Canaries: 1000, Included: 507, Guesses: 200, Correct: 104, EpsilonLowerBound: 0, ProvenEpsilon: &proven, Delta: 1e-6, Confidence: 0.95,
		MembershipAUC: 0.503, Members: 5000, NonMembers: 4821}
	rep.Charged = &release.Charge{Dataset: "file:///srv/veil/shop/events", Period: "2026-11", Accountant: "pld", Epsilon: 12.417583920411234, Delta: 1e-5,
		Releases: []release.Share{{Release: "DP-SGD on item factors and biases (per-subject clipping)", Epsilon: 7.612, Events: 1},
			{Release: "one-run privacy audit: a training run with canaries (its guesses, a DP release, go to the steward)", Epsilon: 7.612, Events: 1}}}
	rep.config = DefaultJobConfig()
	rep.config.Evaluation.PrivacyAudit = &mf.AuditConfig{Canaries: 1000, Confidence: 0.95}
	rep.Training = &mf.Stats{StepsDone: 5, Bounded: 312, ClippedShare: 0.41, MeanNorm: 1.73}
	rep.Warnings = []string{"δ = 1e-06 is not below 1/48211 subjects: the guarantee is weak; lower model.delta"}
	for _, g := range []struct {
		name string
		card *lineage.ModelCard
		md   []byte
	}{
		{"model_card.golden.md", Card(rep), nil},
		{"model_card_steward.golden.md", StewardCard(rep), nil},
	} {
		js, _ := json.MarshalIndent(g.card, "", "  ")
		if err := lineagetest.ValidateCard("..", js); err != nil {
			t.Fatalf("%s: %v", g.name, err)
		}
		md := lineage.RenderCard(g.card, CurvePNGFile)
		golden := filepath.Join("testdata", g.name)
		if *update {
			os.MkdirAll("testdata", 0o755)
			if err := os.WriteFile(golden, md, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(md, want) {
			t.Errorf("card Markdown differs from %s (go test ./train -run CardGolden -update):\n%s", golden, md)
		}
	}
}

func TestShippedConfig(t *testing.T) {
	c, err := LoadJobConfig("../configs/train.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Model.Epsilon != 8 || c.Model.Dim != 32 || c.Evaluation.HoldoutLast != 2 || c.Budget.Epsilon != 20 {
		t.Errorf("configs/train.yaml read as %+v", c)
	}
	// Unknown keys are errors that name the line.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("events: e\noutput: o\nmodel:\n  dimension: 8\n"), 0o644)
	if _, err := LoadJobConfig(bad); !errors.Is(err, mf.ErrConfig) || !strings.Contains(err.Error(), "4") {
		t.Errorf("unknown key: %v", err)
	}
}

// A non-private run's public card keeps its evaluation and says plainly
// that nothing in it is protected; a private run's card has no evaluation.
func TestCardOfNonPrivateRun(t *testing.T) {
	rep := &Report{RunID: "r", LogicalDate: "2026-11-27", Purposes: Purposes, Model: mf.DefaultConfig(), Subjects: 48211,
		Eval: Eval{Holdout: "h", Model: mf.Metrics{Recall20: 0.45}, Popularity: mf.Metrics{Recall20: 0.05}}}
	md := string(lineage.RenderCard(Card(rep)))
	for _, want := range []string{"WITHOUT differential privacy", "Recall@20", "0.450", "None: this model was trained WITHOUT differential privacy"} {
		if !strings.Contains(md, want) {
			t.Errorf("non-private card lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "48211") {
		t.Errorf("the card holds the exact number of subjects:\n%s", md)
	}
	rep.Guarantee = &Guarantee{Epsilon: 8, Delta: 1e-6, Unit: "subject", Accountant: "rdp"}
	if md := string(lineage.RenderCard(Card(rep))); strings.Contains(md, "Recall") || strings.Contains(md, "WITHOUT") {
		t.Errorf("private card:\n%s", md)
	}
}

// The non-private baseline trains with the evaluation's epochs, sampling
// rate and learning rate where they are set, the model's where they are 0,
// and never touches the DP model's settings.
func TestBaselineConfig(t *testing.T) {
	model := mf.DefaultConfig()
	model.Epsilon = 8
	for _, tc := range []struct {
		name      string
		ev        Evaluation
		ep, q, lr float64
	}{
		{"zero: the model's", Evaluation{}, model.Epochs, model.SamplingRate, model.LearningRate},
		{"set", Evaluation{BaselineEpochs: 5, BaselineSamplingRate: 0.1, BaselineLearningRate: 0.2}, 5, 0.1, 0.2},
		{"defaults", DefaultJobConfig().Evaluation, DefaultJobConfig().Evaluation.BaselineEpochs,
			DefaultJobConfig().Evaluation.BaselineSamplingRate, DefaultJobConfig().Evaluation.BaselineLearningRate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := BaselineConfig(model, tc.ev)
			if !math.IsInf(c.Epsilon, 1) || c.Private() {
				t.Errorf("ε %v: want +Inf", c.Epsilon)
			}
			if c.Epochs != tc.ep || c.SamplingRate != tc.q || c.LearningRate != tc.lr {
				t.Errorf("epochs %v, sampling_rate %v, learning_rate %v: want %v, %v, %v", c.Epochs, c.SamplingRate, c.LearningRate, tc.ep, tc.q, tc.lr)
			}
			p, err := c.MakePlan()
			if err != nil || p.SamplingRate != tc.q || p.Steps != int(math.Ceil(tc.ep/tc.q)) {
				t.Errorf("plan %+v, %v: want q %v and ⌈%v/%v⌉ steps", p, err, tc.q, tc.ep, tc.q)
			}
			if model.Epsilon != 8 || model.SamplingRate != mf.DefaultConfig().SamplingRate || model.LearningRate != mf.DefaultConfig().LearningRate {
				t.Errorf("the DP model's config changed: %+v", model)
			}
		})
	}
}

// Bad baseline optimizer settings are configuration errors of one line
// that name the field.
func TestEvaluationRefusesBadBaseline(t *testing.T) {
	for _, tc := range []struct {
		field string
		set   func(*Evaluation)
	}{
		{"baseline_epochs", func(e *Evaluation) { e.BaselineEpochs = -1 }},
		{"baseline_epochs", func(e *Evaluation) { e.BaselineEpochs = math.NaN() }},
		{"baseline_sampling_rate", func(e *Evaluation) { e.BaselineSamplingRate = -0.1 }},
		{"baseline_sampling_rate", func(e *Evaluation) { e.BaselineSamplingRate = 1.5 }},
		{"baseline_sampling_rate", func(e *Evaluation) { e.BaselineSamplingRate = math.NaN() }},
		{"baseline_learning_rate", func(e *Evaluation) { e.BaselineLearningRate = -0.05 }},
		{"baseline_learning_rate", func(e *Evaluation) { e.BaselineLearningRate = math.Inf(1) }},
		{"baseline_learning_rate", func(e *Evaluation) { e.BaselineLearningRate = math.NaN() }},
		{"baseline_*", func(e *Evaluation) { e.BaselineSamplingRate = 1e-9 }}, // 5e9 steps: it would never end
	} {
		cfg := jobConfig(t.TempDir())
		tc.set(&cfg.Evaluation)
		err := cfg.Validate()
		if !errors.Is(err, mf.ErrConfig) || !strings.Contains(err.Error(), tc.field) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s %+v: %v: want a one-line configuration error naming %s", tc.field, cfg.Evaluation, err, tc.field)
		}
	}
	cfg := jobConfig(t.TempDir())
	cfg.Evaluation.BaselineSamplingRate, cfg.Evaluation.BaselineLearningRate = 1, 0.5
	if err := cfg.Validate(); err != nil {
		t.Errorf("q 1, learning rate 0.5: %v", err)
	}
}
