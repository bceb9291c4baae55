package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/lineage"
	"github.com/veil-privacy/veil/train"
)

func newCardCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "card", Short: "Read the model cards of training runs"}
	cmd.AddCommand(newCardShowCmd(env))
	return cmd
}

func newCardShowCmd(env *Env) *cobra.Command {
	var lf lineageFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show RUN_OR_OUTPUT",
		Short: "Print the model card of a training run (Markdown, or --json)",
		Long: `Print the model card a training run committed with its outputs. RUN is a
run id (or a unique prefix) found in the lineage records (--store or --spec):
a training step's run, or a pipeline run, whose training steps' cards are
printed in order. An output location (a URL or path of the run's directory,
as veil train prints it) is read directly, without lineage records.`,
		Args: exactArgs(1),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			name := train.CardMarkdownFile
			if asJSON {
				name = train.CardJSONFile
			}
			var outputs []string
			if target := args[0]; strings.Contains(target, "://") || isDir(target) {
				outputs = []string{target}
			} else {
				g, err := lf.graph(ctx, env)
				if err != nil {
					return err
				}
				r, err := g.FindRun(target)
				if err != nil {
					return usagef(err)
				}
				// A pipeline run lists its steps' outputs again: once each.
				seen := map[string]bool{}
				for _, run := range append([]*lineage.RunNode{r}, g.Children(r.RunID)...) {
					for _, o := range run.Outputs {
						if u := o.URL(); !seen[u] {
							seen[u] = true
							outputs = append(outputs, u)
						}
					}
				}
			}
			n := 0
			for _, o := range outputs {
				data, err := readCard(ctx, env, o, name)
				if errors.Is(err, errNoCard) {
					continue
				}
				if err != nil {
					return err
				}
				if n > 0 && !asJSON {
					fmt.Fprintln(env.Stdout, "\n---")
				}
				env.Stdout.Write(data)
				n++
			}
			if n == 0 {
				return usagef(fmt.Errorf("%s: no model card (only training runs have one)", args[0]))
			}
			return nil
		}),
	}
	lf.add(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the JSON card (Model Card Toolkit schema v0.0.2)")
	return cmd
}

var errNoCard = errors.New("no model card")

// readCard reads a card file from a committed output; errNoCard when the
// output has none.
func readCard(ctx context.Context, env *Env, output, name string) ([]byte, error) {
	ref, err := open.Ref(ctx, output, env.urlOptions())
	if err != nil {
		return nil, err
	}
	m, err := dataset.ReadManifest(ctx, ref.Store, ref.Key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", output, err)
	}
	f, ok := m.Find(name)
	if !ok {
		return nil, errNoCard
	}
	return dataset.ReadAll(ctx, ref.Store, dataset.Join(ref.Key, f.Key))
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
