package synth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/veil-privacy/veil/dataset"
)

// Config describes a shop. Its zero value is not valid; start from
// DefaultConfig.
type Config struct {
	Subjects    int       // number of customers
	Items       int       // number of products
	Days        int       // days of events, ending on End
	End         time.Time // last day of events (UTC date)
	Seed        uint64    // everything is a function of the seed
	Groups      int       // latent taste groups
	SessionRate float64   // mean sessions per subject per day
	Workers     int       // days generated at once
	// RegionSkew plants a bias: with this probability a subject lives in
	// its taste group's home region instead of one drawn by population, so
	// that cohorts over-represent regions (0: no skew).
	RegionSkew float64
}

// DefaultConfig returns a small shop: 2,000 subjects, 500 items, 30 days.
func DefaultConfig() Config {
	return Config{
		Subjects:    2000,
		Items:       500,
		Days:        30,
		End:         time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC),
		Seed:        1,
		Groups:      6,
		SessionRate: 0.25,
		Workers:     2,
	}
}

// Validate reports whether c describes a shop that can be generated.
func (c Config) Validate() error {
	switch {
	case c.Subjects < 1 || c.Subjects > 1<<31-1:
		return fmt.Errorf("subjects must be in [1, 2^31), got %d", c.Subjects)
	case c.Items < len(leafCategories) || c.Items > 1<<31-1:
		return fmt.Errorf("items must be at least %d (one per category), got %d", len(leafCategories), c.Items)
	case c.Days < 1 || c.Days > 3660:
		return fmt.Errorf("days must be in [1, 3660], got %d", c.Days)
	case c.Groups < 1 || c.Groups > 64:
		return fmt.Errorf("groups must be in [1, 64], got %d", c.Groups)
	case !(c.SessionRate > 0 && c.SessionRate <= 20):
		return fmt.Errorf("session rate must be in (0, 20], got %v", c.SessionRate)
	case !(c.RegionSkew >= 0 && c.RegionSkew <= 1):
		return fmt.Errorf("region skew must be in [0, 1], got %v", c.RegionSkew)
	case c.End.IsZero():
		return errors.New("end date is not set")
	}
	return nil
}

// The category tree: top-level departments and their leaves.
var leafCategories = []string{
	"home/decor", "home/kitchen", "home/garden", "home/lighting",
	"fashion/women", "fashion/men", "fashion/shoes", "fashion/accessories",
	"electronics/phones", "electronics/audio", "electronics/computers",
	"beauty/skincare", "beauty/fragrance",
	"toys/games", "toys/baby",
	"sports/outdoor", "sports/fitness",
	"books/fiction", "books/children",
	"grocery/coffee", "grocery/snacks",
}

type region struct {
	code, jurisdiction string
	weight             float64
}

var regions = []region{
	{"GB", "UK-GDPR", 0.34}, {"DE", "GDPR", 0.12}, {"FR", "GDPR", 0.10}, {"NL", "GDPR", 0.05},
	{"IE", "GDPR", 0.03}, {"ES", "GDPR", 0.05}, {"US-CA", "CCPA", 0.12}, {"US-NY", "US", 0.08},
	{"US-TX", "US", 0.05}, {"AU", "OTHER", 0.06},
}

// purposes in the consent ledger, in the order of grantRates.
var purposes = []string{"analytics", "segmentation", "personalization", "marketing"}

// Shop is the static part of a generated shop: catalog, groups and subjects.
type Shop struct {
	cfg        Config
	itemIDs    []string
	itemCat    []int32   // leaf category of each item
	itemPrice  []float64 // unit price
	catItems   [][]int32 // items of each category, most popular first
	catCDF     [][]float64
	globalCDF  []float64 // Zipf over all items by global rank
	globalRank []int32   // item at each global rank
	groupPref  [][]float64
	groupCDF   [][]float64
	subjects   []subject
	start      time.Time
}

type subject struct {
	token    string
	group    int8
	region   int8
	activity float32 // multiplier of the session rate
}

// New builds the catalog and subjects of the shop described by cfg.
func New(cfg Config) (*Shop, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.End = cfg.End.UTC().Truncate(24 * time.Hour)
	s := &Shop{cfg: cfg, start: cfg.End.AddDate(0, 0, -(cfg.Days - 1))}
	r := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))

	// Catalog: every item in a leaf category, a log-normal price around a
	// category level, and a global popularity rank (Zipf, s = 1.07).
	nc := len(leafCategories)
	catPrice := make([]float64, nc)
	for c := range catPrice {
		catPrice[c] = math.Exp(1.5 + 2*r.Float64())
	}
	s.itemIDs = make([]string, cfg.Items)
	s.itemCat = make([]int32, cfg.Items)
	s.itemPrice = make([]float64, cfg.Items)
	for i := range cfg.Items {
		c := i % nc
		if i >= nc {
			c = r.IntN(nc)
		}
		s.itemIDs[i] = fmt.Sprintf("SKU%06d", i+1)
		s.itemCat[i] = int32(c)
		s.itemPrice[i] = math.Round(catPrice[c]*math.Exp(0.4*r.NormFloat64())*100) / 100
	}
	s.globalRank = make([]int32, cfg.Items)
	for i := range s.globalRank {
		s.globalRank[i] = int32(i)
	}
	r.Shuffle(len(s.globalRank), func(i, j int) { s.globalRank[i], s.globalRank[j] = s.globalRank[j], s.globalRank[i] })
	rankOf := make([]int, cfg.Items)
	for rank, item := range s.globalRank {
		rankOf[item] = rank
	}
	s.globalCDF = zipfCDF(cfg.Items, 1.07)
	s.catItems = make([][]int32, nc)
	for _, item := range s.globalRank {
		c := s.itemCat[item]
		s.catItems[c] = append(s.catItems[c], item)
	}
	s.catCDF = make([][]float64, nc)
	for c := range nc {
		s.catCDF[c] = zipfCDF(len(s.catItems[c]), 1.07)
	}

	// Taste groups: each prefers a few categories strongly.
	s.groupPref = make([][]float64, cfg.Groups)
	s.groupCDF = make([][]float64, cfg.Groups)
	for g := range cfg.Groups {
		pref := make([]float64, nc)
		for c := range pref {
			pref[c] = 0.02 * r.Float64()
		}
		for k := range 3 {
			pref[(g*3+k*7+r.IntN(2))%nc] += []float64{1, 0.6, 0.35}[k]
		}
		s.groupPref[g] = pref
		s.groupCDF[g] = cdf(pref)
	}

	// Subjects: group, region and activity; pseudonymous tokens made the
	// way veil pseudonymize makes them, under a key derived from the seed.
	regionCDF := cdf(func() []float64 {
		w := make([]float64, len(regions))
		for i, rg := range regions {
			w[i] = rg.weight
		}
		return w
	}())
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], cfg.Seed)
	mac := hmac.New(sha256.New, key[:])
	s.subjects = make([]subject, cfg.Subjects)
	for i := range s.subjects {
		mac.Reset()
		mac.Write([]byte("customer-" + strconv.Itoa(i)))
		s.subjects[i] = subject{
			token:    "tok_synth_" + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)),
			group:    int8(r.IntN(cfg.Groups)),
			region:   int8(search(regionCDF, r.Float64())),
			activity: float32(math.Exp(0.8 * r.NormFloat64())),
		}
		if cfg.RegionSkew > 0 && r.Float64() < cfg.RegionSkew {
			s.subjects[i].region = int8(int(s.subjects[i].group) % len(regions))
		}
	}
	return s, nil
}

func zipfCDF(n int, exp float64) []float64 {
	w := make([]float64, n)
	for i := range w {
		w[i] = 1 / math.Pow(float64(i+1), exp)
	}
	return cdf(w)
}

func cdf(w []float64) []float64 {
	out := make([]float64, len(w))
	var sum float64
	for i, x := range w {
		sum += x
		out[i] = sum
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

// search returns the index of the first element of cdf not below u.
func search(cdf []float64, u float64) int {
	return min(sort.SearchFloat64s(cdf, u), len(cdf)-1)
}

// Start returns the first day of events.
func (s *Shop) Start() time.Time { return s.start }

// Group returns the taste group of subject i (ground truth for tests).
func (s *Shop) Group(i int) int { return int(s.subjects[i].group) }

// Token returns the subject id of subject i.
func (s *Shop) Token(i int) string { return s.subjects[i].token }

// Stats counts what a generation wrote.
type Stats struct {
	Events  int64 `json:"events"`
	Consent int64 `json:"consent_records"`
	Erasure int64 `json:"erasure_requests"`
	Catalog int64 `json:"catalog_items"`
	Files   int   `json:"files"`
}

// Catalog returns the shop's product list: every item, also those no
// subject touches (public, not personal data).
func (s *Shop) Catalog() []dataset.CatalogItem {
	rows := make([]dataset.CatalogItem, len(s.itemIDs))
	for i, id := range s.itemIDs {
		price := s.itemPrice[i]
		rows[i] = dataset.CatalogItem{ItemID: id, Category: leafCategories[s.itemCat[i]], Price: &price}
	}
	return rows
}

// Write generates the shop into s under prefix: events/ (dt= partitions),
// consent/, erasure/, catalog/ (every item of the shop) and truth/ (the planted taste group of each subject,
// for evaluation only; jobs never read it). Each is committed with its own
// manifest.
func (s *Shop) Write(ctx context.Context, store dataset.Store, prefix, producer string) (Stats, error) {
	var st Stats
	var err error
	if st.Events, st.Files, err = s.writeEvents(ctx, store, dataset.Join(prefix, "events"), producer); err != nil {
		return st, err
	}
	if st.Consent, err = writeTable(ctx, store, dataset.Join(prefix, "consent"), dataset.ConsentContract, producer, s.consent); err != nil {
		return st, err
	}
	if st.Erasure, err = writeTable(ctx, store, dataset.Join(prefix, "erasure"), dataset.ErasureContract, producer, s.erasure); err != nil {
		return st, err
	}
	if st.Catalog, err = writeTable(ctx, store, dataset.Join(prefix, "catalog"), dataset.CatalogContract, producer, s.Catalog); err != nil {
		return st, err
	}
	if _, err = writeTable(ctx, store, dataset.Join(prefix, "truth"), nil, producer, s.truth); err != nil {
		return st, err
	}
	return st, nil
}

func writeTable[T any](ctx context.Context, store dataset.Store, prefix string, c *dataset.Contract, producer string, rows func() []T) (int64, error) {
	out, err := dataset.NewOutput(ctx, store, prefix, c, producer)
	if err != nil {
		return 0, err
	}
	w, err := dataset.CreateParquet[T](ctx, out, "part-00000.parquet")
	if err != nil {
		out.Abort(ctx)
		return 0, err
	}
	data := rows()
	if err := w.Write(data); err != nil {
		w.Abort()
		out.Abort(ctx)
		return 0, err
	}
	if err := w.Close(); err != nil {
		out.Abort(ctx)
		return 0, err
	}
	if _, err := out.Commit(ctx, nil); err != nil {
		out.Abort(ctx)
		return 0, err
	}
	return int64(len(data)), nil
}

func (s *Shop) writeEvents(ctx context.Context, store dataset.Store, prefix, producer string) (int64, int, error) {
	out, err := dataset.NewOutput(ctx, store, prefix, dataset.EventsContract, producer)
	if err != nil {
		return 0, 0, err
	}
	var total atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, s.cfg.Workers))
	for d := range s.cfg.Days {
		g.Go(func() error {
			n, err := s.writeDay(gctx, out, d)
			total.Add(n)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		out.Abort(ctx)
		return 0, 0, err
	}
	out.NewPopulation()
	if _, err := out.Commit(ctx, map[string]string{"seed": strconv.FormatUint(s.cfg.Seed, 10)}); err != nil {
		out.Abort(ctx)
		return 0, 0, err
	}
	return total.Load(), s.cfg.Days, nil
}

var eventTypes = [...]string{"view", "add_to_cart", "purchase", "return"}

// dayBuffer holds one flush of events; the Event pointers point into it.
type dayBuffer struct {
	events []dataset.Event
	qty    []int64
	val    []float64
}

const flushRows = 8192

func (s *Shop) writeDay(ctx context.Context, out *dataset.Output, d int) (int64, error) {
	day := s.start.AddDate(0, 0, d)
	w, err := dataset.CreateParquet[dataset.Event](ctx, out, "dt="+day.Format(time.DateOnly)+"/part-00000.parquet")
	if err != nil {
		return 0, err
	}
	buf := &dayBuffer{
		events: make([]dataset.Event, 0, flushRows),
		qty:    make([]int64, flushRows),
		val:    make([]float64, flushRows),
	}
	flush := func() error {
		err := w.Write(buf.events)
		buf.events = buf.events[:0]
		return err
	}
	for i := range s.subjects {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				w.Abort()
				return 0, err
			}
		}
		if err := s.subjectDay(i, d, day, buf, flush); err != nil {
			w.Abort()
			return 0, err
		}
	}
	if err := flush(); err != nil {
		w.Abort()
		return 0, err
	}
	n := w.Rows()
	return n, w.Close()
}

// subjectDay appends the events of subject i on day d, flushing when full.
func (s *Shop) subjectDay(i, d int, day time.Time, buf *dayBuffer, flush func() error) error {
	sub := &s.subjects[i]
	r := rand.New(rand.NewPCG(s.cfg.Seed^0x9e3779b97f4a7c15, uint64(i)<<20|uint64(d)))
	sessions := poisson(r, s.cfg.SessionRate*float64(sub.activity))
	if sessions == 0 {
		return nil
	}
	regionCode := &regions[sub.region].code
	dayEnd := day.AddDate(0, 0, 1)
	emit := func(t time.Time, typ int, item int32, qty int64, value float64) error {
		if !t.Before(dayEnd) {
			return nil // events stay inside their day's partition
		}
		if len(buf.events) == cap(buf.events) {
			if err := flush(); err != nil {
				return err
			}
		}
		k := len(buf.events)
		e := dataset.Event{
			SubjectID: sub.token, EventTime: t, EventType: eventTypes[typ],
			ItemID: s.itemIDs[item], Category: &leafCategories[s.itemCat[item]], Region: regionCode,
		}
		if typ != 0 {
			buf.qty[k], buf.val[k] = qty, value
			e.Quantity, e.Value = &buf.qty[k], &buf.val[k]
		}
		buf.events = append(buf.events, e)
		return nil
	}
	for range sessions {
		t := day.Add(time.Duration(r.Int64N(int64(24 * time.Hour))))
		views := 1 + geometric(r, 0.3)
		for range views {
			item := s.pickItem(r, int(sub.group))
			t = t.Add(time.Duration(5+r.IntN(120)) * time.Second)
			if err := emit(t, 0, item, 0, 0); err != nil {
				return err
			}
			if r.Float64() >= 0.14 {
				continue
			}
			qty := int64(1 + geometric(r, 0.6))
			price := s.itemPrice[item]
			t = t.Add(time.Duration(10+r.IntN(300)) * time.Second)
			if err := emit(t, 1, item, qty, float64(qty)*price); err != nil {
				return err
			}
			if r.Float64() >= 0.45 {
				continue
			}
			t = t.Add(time.Duration(30+r.IntN(600)) * time.Second)
			if err := emit(t, 2, item, qty, math.Round(float64(qty)*price*100)/100); err != nil {
				return err
			}
			if r.Float64() < 0.05 {
				rt := t.Add(time.Duration(1+r.IntN(20)) * time.Hour)
				if err := emit(rt, 3, item, -qty, -math.Round(float64(qty)*price*100)/100); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// pickItem draws an item: most of the time from the group's preferred
// categories (Zipf within the category), else from the whole catalog.
func (s *Shop) pickItem(r *rand.Rand, group int) int32 {
	if r.Float64() < 0.75 {
		c := search(s.groupCDF[group], r.Float64())
		return s.catItems[c][search(s.catCDF[c], r.Float64())]
	}
	return s.globalRank[search(s.globalCDF, r.Float64())]
}

func poisson(r *rand.Rand, lambda float64) int {
	// Knuth's method; lambda is small here.
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// geometric returns the number of failures before the first success.
func geometric(r *rand.Rand, p float64) int {
	return int(math.Floor(math.Log(1-r.Float64()) / math.Log(1-p)))
}

// consent rates: probability that a subject of a jurisdiction grants each
// purpose when asked (opt-in regimes), and of a GPC signal (opt-out ones).
var grantRates = map[string][4]float64{
	"GDPR":    {0.72, 0.58, 0.64, 0.41},
	"UK-GDPR": {0.75, 0.62, 0.66, 0.45},
	"CCPA":    {0.95, 0.93, 0.93, 0.90},
	"US":      {0.96, 0.94, 0.94, 0.92},
	"OTHER":   {0.85, 0.75, 0.78, 0.60},
}

func (s *Shop) consent() []dataset.Consent {
	r := rand.New(rand.NewPCG(s.cfg.Seed, 0xc0))
	var rows []dataset.Consent
	statuses := []string{"granted", "denied"}
	for i := range s.subjects {
		sub := &s.subjects[i]
		rg := regions[sub.region]
		jur := &rg.jurisdiction
		if r.Float64() < 0.04 {
			continue // never asked: no record, no consent
		}
		asked := s.start.Add(-time.Duration(r.Int64N(int64(365 * 24 * time.Hour))))
		source := "cmp"
		if rg.jurisdiction == "CCPA" || rg.jurisdiction == "US" {
			source = "support" // opt-out regimes: defaults recorded by the shop
		}
		rates := grantRates[rg.jurisdiction]
		for p := range purposes {
			granted := r.Float64() < rates[p]
			rows = append(rows, dataset.Consent{
				SubjectID: sub.token, Purpose: &purposes[p], Status: statuses[b2i(!granted)],
				RecordedAt: asked, Source: source, Jurisdiction: jur,
			})
			// Some grants are withdrawn later, inside or before the window.
			if granted && r.Float64() < 0.06 {
				rows = append(rows, dataset.Consent{
					SubjectID: sub.token, Purpose: &purposes[p], Status: "withdrawn",
					RecordedAt: asked.Add(time.Duration(r.Int64N(int64(s.cfg.End.Sub(asked)) + 1))),
					Source:     "cmp", Jurisdiction: jur,
				})
			}
		}
		// Global Privacy Control: an opt-out of sale and sharing, seen on
		// the site, which denies marketing whatever the CMP says.
		if (rg.jurisdiction == "CCPA" || rg.jurisdiction == "US") && r.Float64() < 0.09 {
			rows = append(rows, dataset.Consent{
				SubjectID: sub.token, Purpose: &purposes[3], Status: "denied",
				RecordedAt: asked.Add(time.Duration(r.Int64N(int64(s.cfg.End.Sub(asked)) + 1))),
				Source:     "gpc", Jurisdiction: jur,
			})
		}
	}
	slices.SortStableFunc(rows, func(a, b dataset.Consent) int { return a.RecordedAt.Compare(b.RecordedAt) })
	return rows
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *Shop) erasure() []dataset.Erasure {
	r := rand.New(rand.NewPCG(s.cfg.Seed, 0xe4))
	var rows []dataset.Erasure
	span := int64(s.cfg.End.Sub(s.start)) + int64(24*time.Hour)
	for i := range s.subjects {
		if r.Float64() < 0.003 {
			rows = append(rows, dataset.Erasure{SubjectID: s.subjects[i].token, RequestedAt: s.start.Add(time.Duration(r.Int64N(span)))})
		}
	}
	return rows
}

// Truth is the planted ground truth of one subject, for evaluation only.
type Truth struct {
	SubjectID  string `parquet:"subject_id"`
	TasteGroup int64  `parquet:"taste_group"`
	Region     string `parquet:"region"`
}

func (s *Shop) truth() []Truth {
	rows := make([]Truth, len(s.subjects))
	for i, sub := range s.subjects {
		rows[i] = Truth{SubjectID: sub.token, TasteGroup: int64(sub.group), Region: regions[sub.region].code}
	}
	return rows
}
