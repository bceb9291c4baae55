package main

import (
	"encoding/json"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/veil-privacy/veil/segment"
)

func newExportsCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "exports", Short: "Keep committed cohort exports aligned with consent"}
	var configFile, date, textfile string
	var asJSON bool
	recheck := &cobra.Command{
		Use:   "recheck --config FILE --logical-date D",
		Short: "List exported subjects who withdrew consent or asked for erasure since their export",
		Long: `Re-evaluate every committed cohort export of a segmentation job (the job
file's output: OUTPUT/dt=*/run=*/assignments) against the consent and erasure
tables as of D, and list the subjects who no longer allow segmentation and
marketing or asked for erasure, by export and reason, so marketing can recall
them. --metrics-textfile writes veil_exports_subjects_to_recall{output} and
veil_exports_subjects_checked for the node_exporter textfile collector.
Exit 0 whatever it finds; 1 when a table cannot be read.`,
		Args: exactArgs(0),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			day, err := jobArgs(configFile, date, "")
			if err != nil {
				return err
			}
			cfg, err := segment.LoadConfig(configFile)
			if err != nil {
				return usageIfConfig(err)
			}
			rc, err := segment.RecheckExports(cmd.Context(), cfg, day, env.urlOptions())
			if err != nil {
				return usageIfConfig(err)
			}
			if textfile != "" {
				reg := prometheus.NewRegistry()
				recall := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "veil_exports_subjects_to_recall", Help: "Subjects in a committed export who no longer allow its purposes or asked for erasure."}, []string{"output"})
				checked := prometheus.NewGauge(prometheus.GaugeOpts{Name: "veil_exports_subjects_checked", Help: "Subjects in committed exports rechecked against consent."})
				reg.MustRegister(recall, checked)
				for _, e := range rc.Exports {
					recall.WithLabelValues(e.Output).Set(float64(len(e.Recall)))
				}
				checked.Set(float64(rc.Subjects))
				if err := prometheus.WriteToTextfile(textfile, reg); err != nil {
					return err
				}
			}
			if asJSON {
				enc := json.NewEncoder(env.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rc)
			}
			w := env.Stdout
			fmt.Fprintln(w, rc.Summary())
			for _, e := range rc.Exports {
				fmt.Fprintf(w, "  %s (%s): %d subjects, %d to recall (%s)\n", e.Output, e.LogicalDate, e.Subjects, len(e.Recall), counts(e.ByReason))
				for _, s := range e.Recall {
					fmt.Fprintf(w, "    %s %s\n", s.SubjectID, s.Reason)
				}
			}
			return nil
		}),
	}
	f := recheck.Flags()
	f.StringVar(&configFile, "config", "", "segmentation job file (see configs/segment.yaml)")
	f.StringVar(&date, "logical-date", "", "consent as of this date YYYY-MM-DD")
	f.StringVar(&textfile, "metrics-textfile", "", "write Prometheus metrics to this file (*.prom)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	cmd.AddCommand(recheck)
	return cmd
}
