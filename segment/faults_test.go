package segment

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/dataset/storetest"
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/segment/kmeans"
)

// A segmentation job whose outputs and budget ledger live on S3 behind a
// proxy that fails a fifth of the requests produces the same exports as
// one without faults, and spends its budget once.
func TestJobOnFaultyS3(t *testing.T) {
	dir, _ := shop(t, 1500, 10)
	bucket := storetest.S3Bucket(t, "")
	run := func(f storetest.Faults, prefix string) (*Report, *storetest.Proxy) {
		proxy := storetest.NewProxy(t, bucket.Endpoint, f)
		cfg := DefaultConfig()
		cfg.Events = filepath.Join(dir, "shop", "events")
		base := "s3://" + bucket.Bucket + "/" + prefix
		cfg.Output = base + "/out?endpoint=" + proxy.URL
		cfg.KMeans.K = "4"
		cfg.Floor = Floor{MinSize: 40, Small: "merge"}
		cfg.NoisySizes = 3
		cfg.RunID = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b" // the same in both runs, so that the exports can be compared byte for byte
		cfg.Budget = &BudgetConfig{Ledger: base + "/ledger?endpoint=" + proxy.URL, Dataset: "shop", Policy: budget.Policy{Epsilon: 5, Delta: 1e-6, Period: "total"}}
		rep, err := Run(ctx, cfg, logical, dataset.URLOptions{}, nil)
		if err != nil {
			t.Fatalf("run with faults %+v: %v", f, err)
		}
		return rep, proxy
	}
	clean, _ := run(storetest.Faults{}, "clean")
	faulty, proxy := run(storetest.Faults{ServerError: 0.05, Throttle: 0.05, Reset: 0.05, Truncate: 0.05, Slow: 0.02, SlowFor: 20 * time.Millisecond, Seed: 11}, "faulty")
	injected := 0
	for _, r := range proxy.Requests() {
		if r.Fault != "" {
			injected++
		}
	}
	t.Logf("%d of %d requests failed on purpose", injected, len(proxy.Requests()))
	if injected == 0 {
		t.Fatal("no fault was injected")
	}
	read := func(rep *Report, name string) []byte {
		direct := dataset.URLOptions{Getenv: func(k string) string {
			if k == "AWS_ENDPOINT_URL" {
				return bucket.Endpoint
			}
			return os.Getenv(k)
		}}
		ref, err := open.Ref(ctx, rep.Output, direct)
		if err != nil {
			t.Fatal(err)
		}
		m, err := dataset.VerifyManifest(ctx, ref.Store, ref.Key)
		if err != nil {
			t.Fatalf("%s: %v", rep.Output, err)
		}
		f, _ := m.Find(name)
		data, err := dataset.ReadAll(ctx, ref.Store, dataset.Join(ref.Key, f.Key))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	if !bytes.Equal(read(clean, "assignments.csv"), read(faulty, "assignments.csv")) {
		t.Error("the exports differ between the clean and the faulty run")
	}
	ledger, err := open.Store(ctx, "s3://"+bucket.Bucket+"/faulty/ledger?endpoint="+bucket.Endpoint, dataset.URLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A run without DP k-means charges nothing (noisy sizes next to exact
	// centres protect no one), faults or not.
	recs, err := budget.Open(ledger, "").Records(ctx, "shop")
	if err != nil && !errors.Is(err, dataset.ErrNotExist) || len(recs) != 0 {
		t.Errorf("ledger after the faulty run without DP: %d records, %v", len(recs), err)
	}
	// A DP run through the same faults spends exactly once: retried
	// requests never charge twice.
	proxy = storetest.NewProxy(t, bucket.Endpoint, storetest.Faults{ServerError: 0.05, Throttle: 0.05, Reset: 0.05, Truncate: 0.05, Seed: 12})
	cfg := DefaultConfig()
	cfg.Events = filepath.Join(dir, "shop", "events")
	base := "s3://" + bucket.Bucket + "/dp"
	cfg.Output = base + "/out?endpoint=" + proxy.URL
	cfg.KMeans.K = "4"
	cfg.Floor = Floor{MinSize: 40, Small: "merge"}
	cfg.NoisySizes = 3
	cfg.Privacy = &kmeans.DPConfig{Epsilon: 1, Delta: 1e-7, Iterations: 4}
	cfg.Budget = &BudgetConfig{Ledger: base + "/ledger?endpoint=" + proxy.URL, Dataset: "shop", Policy: budget.Policy{Epsilon: 5, Delta: 1e-6, Period: "total"}}
	if _, err := Run(ctx, cfg, logical, dataset.URLOptions{}, nil); err != nil {
		t.Fatalf("DP run with faults: %v", err)
	}
	if ledger, err = open.Store(ctx, base+"/ledger?endpoint="+bucket.Endpoint, dataset.URLOptions{}); err != nil {
		t.Fatal(err)
	}
	if recs, err := budget.Open(ledger, "").Records(ctx, "shop"); err != nil || len(recs) != 1 {
		t.Errorf("ledger after the faulty DP run: %d records, %v", len(recs), err)
	}
}
