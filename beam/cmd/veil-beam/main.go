// Command veil-beam runs veil's data-heavy stages on Apache Beam: on Prism
// (Beam's embedded runner, the default), or on Flink, Spark or Dataflow
// through their job services. It is a module of its own, so that veil
// itself stays free of Beam's dependencies.
//
//	veil-beam prepare --config segment.yaml --logical-date D --out URL [--shards N] [--lineage URL] [--json] [Beam flags]
//	veil-beam assign --config segment.yaml --logical-date D --prepared URL --model URL [--lineage URL] [--json] [Beam flags]
//	veil-beam prepare-interactions --config train.yaml --logical-date D --out URL [--shards N] [--lineage URL] [--json] [Beam flags]
//
// prepare writes the consent-filtered features of a segmentation job as a
// prepared table (as veil segment prepare does); veil segment fit fits
// k-means on it on one machine; assign scores every subject against the
// model's centroids and exports the cohorts (as veil segment assign does);
// prepare-interactions writes a training job's consented interactions (as
// veil train prepare does), which veil train mf trains on.
//
// Beam flags: --runner (prism, universal, flink, spark, dataflow),
// --endpoint (a job service, for universal/flink/spark), --environment_type
// (LOOPBACK, PROCESS, DOCKER), --environment_config, and Dataflow's
// --project, --region, --staging_location. Exit codes are veil's
// (internal/exitcode): 0 ok, 1 runtime failure, 2 usage or configuration,
// 3 refused by policy (PII).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/options/jobopts"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/dataflow"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/flink"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/spark"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/universal"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"

	"github.com/veil-privacy/veil/beam/pipeline"
	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/internal/exitcode"
	"github.com/veil-privacy/veil/lineage"
	"github.com/veil-privacy/veil/segment"
	"github.com/veil-privacy/veil/train"
)

var (
	configFile = flag.String("config", "", "segmentation job file (veil's configs/segment.yaml)")
	date       = flag.String("logical-date", "", "logical date YYYY-MM-DD")
	out        = flag.String("out", "", "URL of the prepared table (the date's partition goes under it)")
	shards     = flag.Int("shards", segment.DefaultShards, "files of the table (subjects split by a hash of their token)")
	asJSON     = flag.Bool("json", false, "print the report as JSON")
	lineageURL = flag.String("lineage", "", "store URL for the run's OpenLineage events (veil's lineage store, such as STATE/lineage)")
	prepared   = flag.String("prepared", "", "assign: URL of the prepared table's date (OUT/dt=D)")
	model      = flag.String("model", "", "assign: URL of the model (veil segment fit)")
)

const usage = "usage: veil-beam prepare --config FILE --logical-date D --out URL [--shards N] | veil-beam assign --config FILE --logical-date D --prepared URL --model URL | veil-beam prepare-interactions --config FILE --logical-date D --out URL [--shards N]; with [--lineage URL] [--json] [--runner R ...]"

func main() {
	args := os.Args[1:]
	cmd := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	if flag.Lookup("runner").Value.String() == "" || flag.Lookup("runner").Value.String() == "direct" {
		flag.Set("runner", "prism")
	}
	if err := flag.CommandLine.Parse(args); err != nil {
		os.Exit(2)
	}
	// A worker started by a runner never returns from Init.
	beam.Init()
	err := run(context.Background(), cmd)
	if err != nil {
		fmt.Fprintln(os.Stderr, "veil-beam:", strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " "))
	}
	os.Exit(exitcode.Classify(err).Code())
}

func run(ctx context.Context, cmd string) error {
	switch {
	case cmd != "prepare" && cmd != "assign" && cmd != "prepare-interactions":
		return exitcode.Usage(fmt.Errorf("%s (got %q)", usage, cmd))
	case *configFile == "" || *date == "":
		return exitcode.Usage(errors.New("--config and --logical-date are required"))
	case cmd != "assign" && *out == "":
		return exitcode.Usage(fmt.Errorf("%s: --out is required", cmd))
	case cmd == "assign" && (*prepared == "" || *model == ""):
		return exitcode.Usage(errors.New("assign: --prepared and --model are required"))
	}
	day, err := time.Parse(time.DateOnly, *date)
	if err != nil {
		return exitcode.Usage(fmt.Errorf("--logical-date %q: want YYYY-MM-DD", *date))
	}
	if cmd == "prepare-interactions" {
		if _, err := train.LoadJobConfig(*configFile); err != nil {
			return err
		}
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	runner := flag.Lookup("runner").Value.String()
	engine := "beam:" + runner
	if *jobopts.Endpoint != "" {
		engine += "@" + *jobopts.Endpoint
	}
	opt := dataset.URLOptionsFromEnv(os.Getenv)
	o := pipeline.Options{Shards: *shards, URL: opt, Engine: engine, Runner: runner,
		Execute: pipeline.PrivateTemp(func(ctx context.Context, p *beam.Pipeline) error { return beamx.Run(ctx, p) })}
	if *lineageURL != "" {
		store, err := open.Store(ctx, *lineageURL, opt)
		if err != nil {
			return err
		}
		o.Lineage = &lineage.Emitter{Log: log, Transports: []lineage.Transport{&lineage.StoreTransport{Store: store}}}
	}
	if cmd == "prepare-interactions" {
		cfg, _ := train.LoadJobConfig(*configFile)
		o.Shards = *shards
		rep, err := pipeline.PrepareInteractions(ctx, cfg, day, *out, o)
		if err != nil {
			return err
		}
		log.Debug("interactions prepared", "subjects", rep.Subjects, "interactions", rep.Interactions, "output", rep.Output, "engine", rep.Engine) // exact: debug only, as veil
		if *asJSON {
			return printJSON(rep)
		}
		fmt.Printf("prepared %d interactions of %d subjects from %d rows read, %d kept, on %s in %.1fs: %s\n",
			rep.Interactions, rep.Subjects, rep.Filter.RowsRead, rep.Filter.RowsKept, rep.Engine, rep.Seconds, rep.Output)
		return nil
	}
	cfg, err := segment.LoadConfig(*configFile)
	if err != nil {
		return err
	}
	if cmd == "assign" {
		// As veil segment assign: the model is exact, a DP job has no
		// path here (exit 2, before anything is read).
		if err := segment.RefusePrivacy(cfg, "assign"); err != nil {
			return err
		}
		m, err := segment.ReadModel(ctx, *model, opt)
		if err != nil {
			return err
		}
		rep, err := pipeline.Assign(ctx, cfg, day, *prepared, m, o)
		if err != nil {
			return err
		}
		log.Debug("subjects assigned", "subjects", rep.Subjects, "exported", rep.Exported, "output", rep.Output, "engine", rep.Engine) // exact: debug only, as veil
		if *asJSON {
			return printJSON(rep)
		}
		fmt.Printf("assigned %d subjects to %d cohorts (%d suppressed), exported %d (not exported: %v) on %s in %.1fs: %s\n",
			rep.Subjects, len(rep.Cohorts), rep.Suppressed, rep.Exported, rep.NotExported, rep.Engine, rep.Seconds, rep.Output)
		return nil
	}
	rep, err := pipeline.PrepareWith(ctx, cfg, day, *out, o)
	if err != nil {
		return err
	}
	log.Debug("features prepared", "subjects", rep.Subjects, "events", rep.EventsUsed, "output", rep.Output, "engine", rep.Engine) // exact: debug only, as veil
	if *asJSON {
		return printJSON(rep)
	}
	fmt.Printf("prepared %d subjects (%d events, %d sampled down) from %d rows read, %d kept, on %s in %.1fs: %s\n",
		rep.Subjects, rep.EventsUsed, rep.Bounded, rep.Filter.RowsRead, rep.Filter.RowsKept, rep.Engine, rep.Seconds, rep.Output)
	return nil
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
