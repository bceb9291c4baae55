package train

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"os"
	"path"
	"runtime"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/lineage"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/release"
	"github.com/veil-privacy/veil/train/mf"
)

// recommend ranks, for every subject who allows personalization, the items
// the subject has not touched, by the released factors and the subject's
// own factor (solved from its own interactions only).
func recommend(rep *Report, d *mf.Data, m *mf.Model, ix *privacy.ConsentIndex, k, workers int) error {
	var eligible []int
	for s, id := range d.Subjects {
		if r := ix.Decide(id, Purposes); r != privacy.Keep {
			rep.NotRecommended[r.String()]++
			continue
		}
		if len(d.Rows[s]) > 0 {
			eligible = append(eligible, s)
		}
	}
	recs, because, err := recommendFor(d, m, eligible, k, workers, true)
	if err != nil {
		return err
	}
	rep.recommendations, rep.because = recs, because
	rep.Recommended = len(eligible)
	return nil
}

// Recommend ranks for every subject of d with interactions the k best items
// it has not touched, by the released factors and its own factor.
func Recommend(d *mf.Data, m *mf.Model, k, workers int) ([]dataset.Recommendation, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var subjects []int
	for s, r := range d.Rows {
		if len(r) > 0 {
			subjects = append(subjects, s)
		}
	}
	recs, _, err := recommendFor(d, m, subjects, k, workers, false)
	return recs.all(), err
}

// RecommendExplained is Recommend with each recommendation's reasons (the
// rows of recommendations.parquet: because_items, because_shares).
func RecommendExplained(d *mf.Data, m *mf.Model, k, workers int) ([]dataset.ExplainedRecommendation, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var subjects []int
	for s, r := range d.Rows {
		if len(r) > 0 {
			subjects = append(subjects, s)
		}
	}
	recs, because, err := recommendFor(d, m, subjects, k, workers, true)
	if err != nil {
		return nil, err
	}
	return explained(recs, because), nil
}

// recList is the run's recommendations while it holds them: rows of
// indices into the data's subjects and the model's items (24 bytes, not the
// 48 of a row with two strings; with 65k subjects and k = 20 the rows are
// most of the phase's memory), made into the file's rows a chunk at a time.
type recList struct {
	rows            []recRow
	subjects, items []string
}

// recRow is one recommendation of a recList.
type recRow struct {
	subject, item, rank int32
	score               float64
}

// Len is the number of recommendations.
func (l recList) Len() int { return len(l.rows) }

// at returns recommendation i as a row of the file.
func (l recList) at(i int) dataset.Recommendation {
	r := l.rows[i]
	return dataset.Recommendation{SubjectID: l.subjects[r.subject], Rank: int64(r.rank), ItemID: l.items[r.item], Score: r.score}
}

// slice returns recommendations [lo, hi).
func (l recList) slice(lo, hi int) recList {
	l.rows = l.rows[lo:hi]
	return l
}

// all returns every recommendation as rows of the file.
func (l recList) all() []dataset.Recommendation {
	out := make([]dataset.Recommendation, l.Len())
	for i := range out {
		out[i] = l.at(i)
	}
	return out
}

// recommendFor ranks the eligible subjects' k best items; with explain it
// also returns, per recommendation, its reasons (Explanation.Because).
//
// Subject e's list is written straight into rows [e·k, e·k+len) of the
// result, then the lists are moved together: no list is held twice.
func recommendFor(d *mf.Data, m *mf.Model, eligible []int, k, workers int, explain bool) (recList, [][]mf.Contribution, error) {
	out := make([]recRow, len(eligible)*k)
	lens := make([]int, len(eligible))
	var because [][]mf.Contribution
	if explain {
		because = make([][]mf.Contribution, len(eligible)*k)
	}
	err := mf.RecommendEach(d, m, eligible, k, BecauseItems, workers, explain, func(e int, top []mf.Recommended, why [][]mf.Contribution) error {
		if len(top) > k {
			return fmt.Errorf("recommendations: %d for a subject, want at most %d", len(top), k)
		}
		for r, x := range top {
			out[e*k+r] = recRow{subject: int32(eligible[e]), item: x.Item, rank: int32(r + 1), score: x.Score}
		}
		if explain {
			copy(because[e*k:e*k+len(top)], why)
		}
		lens[e] = len(top)
		return nil
	})
	if err != nil {
		return recList{}, nil, err
	}
	n := 0
	for e, l := range lens {
		copy(out[n:], out[e*k:e*k+l])
		if explain {
			copy(because[n:], because[e*k:e*k+l])
		}
		n += l
	}
	out = out[:n:n]
	if explain {
		clear(because[n:])
		because = because[:n:n]
	}
	return recList{rows: out, subjects: d.Subjects, items: m.Items}, because, nil
}

// putRecommendations writes recommendations.parquet a chunk of rows at a
// time: the rows with their reasons' ids and shares take several times
// the memory of the recommendations, so they are never all built at once.
func putRecommendations(ctx context.Context, out *dataset.Output, recs recList, because [][]mf.Contribution) error {
	w, err := dataset.CreateParquet[dataset.ExplainedRecommendation](ctx, out, RecommendationsFile)
	if err != nil {
		return err
	}
	// The rows of the next chunk are joined while the writer encodes this
	// one: the writer is the one goroutine a file can have.
	const chunk = 16384
	chunks := make(chan []dataset.ExplainedRecommendation, 1)
	stop := make(chan struct{})
	go func() {
		defer close(chunks)
		for lo := 0; lo < recs.Len() || lo == 0; lo += chunk {
			hi := min(lo+chunk, recs.Len())
			var why [][]mf.Contribution
			if because != nil {
				why = because[lo:hi]
			}
			select {
			case chunks <- explained(recs.slice(lo, hi), why):
			case <-stop:
				return
			}
		}
	}()
	for rows := range chunks {
		if err := w.Write(rows); err != nil {
			close(stop)
			w.Abort()
			return err
		}
	}
	return w.Close()
}

// BecauseItems is how many items of a subject's history explain each of
// its recommendations (the because_items column).
const BecauseItems = 3

// roundShare rounds a reason's share to a whole percent: what a customer
// reads, and not the full precision that would let whoever holds the rows
// solve for the weights of the history behind them.
func roundShare(v float64) float64 { return math.Round(v*100) / 100 }

// explained joins recommendations with their reasons as rows of
// recommendations.parquet; because is nil or parallel to recs.
func explained(recs recList, because [][]mf.Contribution) []dataset.ExplainedRecommendation {
	out := make([]dataset.ExplainedRecommendation, recs.Len())
	n := 0
	for _, cs := range because {
		n += len(cs)
	}
	// One backing array for the chunk's reasons, each row's lists a full
	// slice of it (capped: an append to one never reaches the next).
	names, shares := make([]string, n), make([]float64, n)
	items := recs.items
	for i := range recs.Len() {
		r := recs.at(i)
		out[i] = dataset.ExplainedRecommendation{SubjectID: r.SubjectID, Rank: r.Rank, ItemID: r.ItemID, Score: r.Score,
			BecauseItems: []string{}, BecauseShares: []float64{}}
		if because == nil || len(because[i]) == 0 {
			continue
		}
		k := len(because[i])
		ni, ns := names[:k:k], shares[:k:k]
		names, shares = names[k:], shares[k:]
		for j, c := range because[i] {
			ni[j], ns[j] = items[c.Item], roundShare(c.Value)
		}
		out[i].BecauseItems, out[i].BecauseShares = ni, ns
	}
	return out
}

// Factors returns the released model as rows of the item factors output.
func Factors(m *mf.Model) []dataset.ItemFactor {
	rows := make([]dataset.ItemFactor, len(m.Items))
	for j, id := range m.Items {
		r := m.Row(j)
		v := make([]float32, m.Dim)
		for p := range v {
			v[p] = float32(r[p])
		}
		rows[j] = dataset.ItemFactor{ItemID: id, Bias: r[m.Dim], Vector: v}
	}
	return rows
}

// writeOutputs writes a run's outputs and commits them: the steward
// report (STEWARD/train/dt=DATE/run=RUN_ID: the report, the card's steward
// appendix, the plots from private evaluation, the contributors filter)
// first, then the release under OUTPUT/dt=DATE/run=RUN_ID (factors,
// recommendations, the public card), each all or nothing. A release is
// never committed without its steward report.
func writeOutputs(ctx context.Context, ref dataset.Ref, cfg JobConfig, opt dataset.URLOptions, day time.Time, m *mf.Model, contributors []string, rep *Report, start time.Time) error {
	prefix := dataset.Join(ref.Key, "dt="+rep.LogicalDate, "run="+rep.RunID)
	out, err := dataset.NewOutput(ctx, ref.Store, prefix, nil, "veil train")
	if err != nil {
		return err
	}
	out.SetClass(dataset.ClassRelease)
	rep.Output = out.Location()
	st, err := release.OpenSteward(ctx, release.StewardURL(cfg.Steward, cfg.Output), opt, "train", day, rep.RunID, "veil train")
	if err != nil {
		out.Abort(ctx)
		return err
	}
	rep.Steward = st.Location()
	meta := map[string]string{"run_id": rep.RunID, "logical_date": rep.LogicalDate, "job": "train"}
	err = func() error {
		key, err := lineage.LoadStewardKey(cfg.StewardKeyFile, os.Getenv)
		if err != nil {
			return err
		}
		c, err := lineage.WriteContributors(ctx, st.Output(), contributors, lineage.ContributorsFilter{RunID: rep.RunID, FPR: cfg.ContributorsFPR, Key: key})
		if err != nil {
			return err
		}
		rep.Contributors = &c
		var images []string
		for _, g := range rep.graphics() {
			if err := st.Output().PutFile(ctx, g.file, g.png, 0); err != nil {
				return err
			}
			loc, _ := st.Output().FileLocation(g.file)
			images = append(images, path.Base(loc))
		}
		rep.Seconds = time.Since(start).Seconds()
		if err := st.PutJSON(ctx, StewardReportFile, rep); err != nil {
			return err
		}
		if err := st.Output().PutFile(ctx, StewardCardFile, lineage.RenderCard(StewardCard(rep), images...), 0); err != nil {
			return err
		}
		return st.Commit(ctx, meta)
	}()
	if err != nil {
		st.Abort(ctx)
		out.Abort(ctx)
		return err
	}
	err = func() error {
		if err := dataset.PutParquet(ctx, out, FactorsFile, Factors(m)); err != nil {
			return err
		}
		if cfg.FactorsArrow {
			data, err := FactorsArrow(m)
			if err != nil {
				return err
			}
			if err := out.PutFile(ctx, FactorsArrowFile, data, int64(len(m.Items))); err != nil {
				return err
			}
		}
		if cfg.TopK > 0 {
			if err := putRecommendations(ctx, out, rep.recommendations, rep.because); err != nil {
				return err
			}
		}
		if rep.nonPersonalized != nil {
			if err := dataset.PutParquet(ctx, out, NonPersonalizedFile, rep.nonPersonalized); err != nil {
				return err
			}
		}
		card := Card(rep)
		js, err := json.MarshalIndent(card, "", "  ")
		if err != nil {
			return err
		}
		if err := out.PutFile(ctx, CardJSONFile, append(js, '\n'), 0); err != nil {
			return err
		}
		return out.PutFile(ctx, CardMarkdownFile, lineage.RenderCard(card), 0)
	}()
	if err != nil {
		out.Abort(ctx)
		return err
	}
	if _, err := out.Commit(ctx, meta); err != nil {
		out.Abort(ctx)
		return err
	}
	return nil
}

// PlotCurve draws Recall@20 against ε (log scale), with the non-private
// model and popularity as horizontal references.
func PlotCurve(points []CurvePoint, popularity float64) ([]byte, error) {
	var pts plotter.XYs
	np := math.NaN()
	for _, p := range points {
		if math.IsInf(p.Epsilon, 1) {
			np = p.Metrics.Recall20
			continue
		}
		pts = append(pts, plotter.XY{X: p.Epsilon, Y: p.Metrics.Recall20})
	}
	if len(pts) == 0 {
		return nil, fmt.Errorf("%w: no private points to plot", mf.ErrInput)
	}
	p := plot.New()
	p.Title.Text = "Privacy-utility: Recall@20 against ε (δ fixed)"
	p.X.Label.Text = "ε (smaller is more private)"
	p.Y.Label.Text = "Recall@20 on held-out interactions"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.ConstantTicks(ticks(pts))
	line, dots, err := plotter.NewLinePoints(pts)
	if err != nil {
		return nil, err
	}
	blue := color.RGBA{R: 55, G: 110, B: 180, A: 255}
	line.Color, dots.Color = blue, blue
	p.Add(line, dots)
	p.Legend.Add("DP model", line, dots)
	ref := func(y float64, c color.Color, name string) {
		h := plotter.NewFunction(func(float64) float64 { return y })
		h.Color, h.Dashes = c, []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(h)
		p.Legend.Add(name, h)
	}
	top := 0.0
	for _, q := range pts {
		top = math.Max(top, q.Y)
	}
	if !math.IsNaN(np) {
		ref(np, color.RGBA{R: 40, G: 150, B: 70, A: 255}, "non-private")
		top = math.Max(top, np)
	}
	ref(popularity, color.RGBA{R: 200, G: 80, B: 60, A: 255}, "popularity")
	p.X.Min, p.X.Max = pts[0].X/1.3, pts[len(pts)-1].X*1.3
	p.Y.Min, p.Y.Max = 0, math.Max(top, popularity)*1.25+0.01
	p.Legend.Top, p.Legend.Left = true, true
	c := vgimg.New(6*vg.Inch, 4*vg.Inch)
	p.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func ticks(pts plotter.XYs) []plot.Tick {
	t := make([]plot.Tick, len(pts))
	for i, p := range pts {
		t[i] = plot.Tick{Value: p.X, Label: fmt.Sprintf("%g", p.X)}
	}
	return t
}

// PlotExposure draws the Lorenz curve of recommendation exposure over the
// items: the share of all recommendations that the least recommended x% of
// items receive; the diagonal is an even spread.
func PlotExposure(counts []float64) ([]byte, error) {
	if len(counts) == 0 {
		return nil, fmt.Errorf("%w: no items to plot", mf.ErrInput)
	}
	s := append([]float64(nil), counts...)
	slices.Sort(s)
	total := 0.0
	for _, v := range s {
		total += v
	}
	pts := make(plotter.XYs, 0, len(s)+1)
	pts = append(pts, plotter.XY{})
	cum := 0.0
	for i, v := range s {
		cum += v
		y := 0.0
		if total > 0 {
			y = cum / total
		}
		pts = append(pts, plotter.XY{X: float64(i+1) / float64(len(s)), Y: y})
	}
	p := plot.New()
	p.Title.Text = "Exposure: share of recommendations by share of products"
	p.X.Label.Text = "share of products, least recommended first"
	p.Y.Label.Text = "share of recommendations"
	line, err := plotter.NewLine(pts)
	if err != nil {
		return nil, err
	}
	line.Color = color.RGBA{R: 55, G: 110, B: 180, A: 255}
	eq := plotter.NewFunction(func(x float64) float64 { return x })
	eq.Color, eq.Dashes = color.RGBA{R: 120, G: 120, B: 120, A: 255}, []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(line, eq)
	p.Legend.Add("recommendations", line)
	p.Legend.Add("even spread", eq)
	p.Legend.Top, p.Legend.Left = true, true
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	c := vgimg.New(5*vg.Inch, 4*vg.Inch)
	p.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
