package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/ingest"
	"github.com/veil-privacy/veil/privacy/pseudonym"
)

type keyFlags struct{ file, env string }

func (k *keyFlags) add(cmd *cobra.Command, prefix, what string) {
	cmd.Flags().StringVar(&k.file, prefix+"key-file", "", "file holding the "+what+" (at least 32 random bytes, raw, hex or base64; not readable by others)")
	cmd.Flags().StringVar(&k.env, prefix+"key-env", "", "environment variable holding the "+what+" (hex or base64)")
}

func (k *keyFlags) load(env *Env, prefix string) (*pseudonym.Key, error) {
	switch {
	case k.file != "" && k.env != "":
		return nil, usagef(fmt.Errorf("give --%skey-file or --%skey-env, not both", prefix, prefix))
	case k.file != "":
		return pseudonym.LoadKeyFile(k.file)
	case k.env != "":
		return pseudonym.LoadKeyEnv(k.env, env.Getenv)
	}
	return nil, usagef(fmt.Errorf("a key is needed: --%skey-file or --%skey-env", prefix, prefix))
}

type pseudonymizeOptions struct {
	in, out, idColumn, format string
	key                       keyFlags
	asJSON                    bool
}

func newPseudonymizeCmd(env *Env) *cobra.Command {
	var o pseudonymizeOptions
	cmd := &cobra.Command{
		Use:   "pseudonymize --in FILE_OR_URL --out URL --id-column C --key-file K",
		Short: "Turn a raw export with direct identifiers into the events contract, with pseudonymous tokens",
		Long: `Read a raw CSV export (plain or gzip) that holds direct identifiers and write
events Parquet under --out in dt=YYYY-MM-DD partitions, committed with a
manifest. The identifier in --id-column becomes
tok_<keyid>_<base64url(HMAC-SHA-256(key, id))>; raw identifiers are never
written or logged.

Formats: online-retail (the UCI Online Retail CSV; detected from its header)
and csv (a CSV with event_time, event_type, item_id and optionally category,
quantity, value, region). See docs/data.md for the Online Retail mapping.

For Online Retail the shop's product list (the catalog contract: item_id,
category, name, price, first_listed) is written beside the events, at the
sibling URL "catalog" of --out: public, not personal data, derived from the
transaction file because the data set publishes no product list of its own.`,
		Args: exactArgs(0),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			return runPseudonymize(cmd.Context(), env, o)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.in, "in", "", "input CSV file or URL (required)")
	f.StringVar(&o.out, "out", "", "output URL for the events (required)")
	f.StringVar(&o.idColumn, "id-column", "", "column with the direct identifier (required)")
	f.StringVar(&o.format, "format", "auto", "auto, online-retail or csv")
	f.BoolVar(&o.asJSON, "json", false, "print the summary as JSON")
	o.key.add(cmd, "", "pseudonymization key")
	for _, n := range []string{"in", "out", "id-column"} {
		cmd.MarkFlagRequired(n)
	}
	cmd.AddCommand(newRekeyCmd(env))
	return cmd
}

// openInput opens a file or object for streaming.
func openInput(ctx context.Context, env *Env, url string) (io.Reader, func(), error) {
	ref, err := open.Ref(ctx, url, env.urlOptions())
	if err != nil {
		return nil, nil, err
	}
	if ref.Key == "" {
		return nil, nil, usagef(fmt.Errorf("%s names a directory or bucket, not a file", url))
	}
	obj, err := ref.Store.Open(ctx, ref.Key)
	if err != nil {
		return nil, nil, err
	}
	return io.NewSectionReader(obj, 0, obj.Size()), func() { obj.Close() }, nil
}

func runPseudonymize(ctx context.Context, env *Env, o pseudonymizeOptions) error {
	key, err := o.key.load(env, "")
	if err != nil {
		return err
	}
	var format ingest.Format
	switch o.format {
	case "auto":
	case string(ingest.OnlineRetail), string(ingest.EventsCSV):
		format = ingest.Format(o.format)
	default:
		return usagef(fmt.Errorf("--format %q: want auto, online-retail or csv", o.format))
	}
	in, closeIn, err := openInput(ctx, env, o.in)
	if err != nil {
		return err
	}
	defer closeIn()
	outRef, err := open.Ref(ctx, o.out, env.urlOptions())
	if err != nil {
		return err
	}
	var size int64 = -1
	if sr, ok := in.(*io.SectionReader); ok {
		size = sr.Size()
	}
	// The shop's product list (public) is read first, so that an input
	// error leaves nothing behind, and written beside the events after them.
	var catalog []dataset.CatalogItem
	if sr, ok := in.(*io.SectionReader); ok {
		if catalog, err = ingest.Catalog(io.NewSectionReader(sr, 0, sr.Size()), format); err != nil {
			return fmt.Errorf("reading the product catalog of %s: %w", o.in, err)
		}
	}
	bar := env.newBar(size, "pseudonymizing", true)
	sum, err := ingest.Pseudonymize(ctx, barReader(in, bar), o.in, format, o.idColumn, key, outRef, "veil "+Version)
	if err != nil {
		return err
	}
	barFinish(bar)
	if catalog != nil {
		catRef, err := open.Ref(ctx, dataset.SiblingURL(o.out, "catalog"), env.urlOptions())
		if err != nil {
			return err
		}
		if sum.Catalog, err = ingest.WriteCatalog(ctx, catalog, catRef, "veil "+Version, map[string]string{"source_format": string(ingest.OnlineRetail)}); err != nil {
			return fmt.Errorf("writing the product catalog: %w", err)
		}
	}
	st := sum.Stats
	env.logger().Info("pseudonymized", "out", sum.Out, "key_id", sum.KeyID, "rows", st.Rows, "events", st.Events, "subjects", sum.Subjects)
	if o.asJSON {
		return json.NewEncoder(env.Stdout).Encode(sum)
	}
	fmt.Fprintf(env.Stdout, "%d rows read, %d events of %d subjects written to %s in %d files (key %s), %.2fs (%.0f rows/s)\n",
		st.Rows, st.Events, sum.Subjects, sum.Out, sum.Files, sum.KeyID, sum.Seconds, sum.RowsPerSec)
	for _, k := range slices.Sorted(maps.Keys(st.Dropped)) {
		fmt.Fprintf(env.Stdout, "  dropped %-16s %d\n", k, st.Dropped[k])
	}
	fmt.Fprintf(env.Stdout, "  no region        %d\n  no category      %d\n", st.NoRegion, st.NoCategory)
	if c := sum.Catalog; c != nil {
		fmt.Fprintf(env.Stdout, "product catalog: %d items written to %s (%d without a category)\n", c.Items, c.Out, c.Uncategorized)
	}
	return nil
}

type rekeyOptions struct {
	in, out, ids, idColumn string
	oldKey, newKey         keyFlags
}

func newRekeyCmd(env *Env) *cobra.Command {
	var o rekeyOptions
	cmd := &cobra.Command{
		Use:   "rekey --in URL --out URL --ids FILE --id-column C --old-key-file K1 --new-key-file K2",
		Short: "Map a dataset's tokens from an old key to a new one",
		Long: `Rewrite an events, consent or erasure table with every token made under the
old key replaced by the token of the same subject under the new key.

HMAC tokens cannot be reversed, so rekeying needs the raw identifiers that
the tokens were made from: --ids is a CSV (plain or gzip) from the system of
record with the identifier in --id-column. If any token of the dataset has no
identifier there, nothing is written.`,
		Args: exactArgs(0),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			return runRekey(cmd.Context(), env, o)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.in, "in", "", "table to rekey (required)")
	f.StringVar(&o.out, "out", "", "output URL (required)")
	f.StringVar(&o.ids, "ids", "", "CSV with the raw identifiers (required)")
	f.StringVar(&o.idColumn, "id-column", "", "identifier column of --ids (required)")
	o.oldKey.add(cmd, "old-", "old key")
	o.newKey.add(cmd, "new-", "new key")
	for _, n := range []string{"in", "out", "ids", "id-column"} {
		cmd.MarkFlagRequired(n)
	}
	return cmd
}

func runRekey(ctx context.Context, env *Env, o rekeyOptions) error {
	oldKey, err := o.oldKey.load(env, "old-")
	if err != nil {
		return err
	}
	newKey, err := o.newKey.load(env, "new-")
	if err != nil {
		return err
	}
	if oldKey.ID() == newKey.ID() {
		return usagef(errors.New("the old and the new key are the same"))
	}
	// Map old tokens to new ones from the raw identifiers.
	in, closeIDs, err := openInput(ctx, env, o.ids)
	if err != nil {
		return err
	}
	defer closeIDs()
	r, err := ingest.Open(in)
	if err != nil {
		return err
	}
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("%s: reading the header: %w", o.ids, err)
	}
	col := slices.Index(header, o.idColumn)
	if col < 0 {
		return usagef(fmt.Errorf("%s: no column %q", o.ids, o.idColumn))
	}
	mapping := map[string]string{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", o.ids, err)
		}
		id := strings.TrimSpace(rec[col])
		if id == "" || id == "NA" {
			continue
		}
		if f := strings.TrimSuffix(id, ".0"); f != id && !strings.ContainsAny(f, ".eE") {
			id = f
		}
		mapping[oldKey.Token(id)] = newKey.Token(id)
	}
	ref, err := open.Ref(ctx, o.in, env.urlOptions())
	if err != nil {
		return err
	}
	in2, err := dataset.Inspect(ctx, ref)
	if err != nil {
		return err
	}
	outRef, err := open.Ref(ctx, o.out, env.urlOptions())
	if err != nil {
		return err
	}
	var n int64
	switch strings.Fields(in2.Contract + " ")[0] {
	case "events":
		n, err = rekeyTable(ctx, ref, outRef, dataset.EventsContract, mapping, func(e *dataset.Event) *string { return &e.SubjectID })
	case "consent":
		n, err = rekeyTable(ctx, ref, outRef, dataset.ConsentContract, mapping, func(e *dataset.Consent) *string { return &e.SubjectID })
	case "erasure":
		n, err = rekeyTable(ctx, ref, outRef, dataset.ErasureContract, mapping, func(e *dataset.Erasure) *string { return &e.SubjectID })
	default:
		return usagef(fmt.Errorf("%s is not an events, consent or erasure table (%s)", o.in, in2.Contract))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "rekeyed %d rows from key %s to key %s into %s/%s\n", n, oldKey.ID(), newKey.ID(), outRef.Store.Location(), outRef.Key)
	return nil
}

// rekeyTable copies every file of the table at ref to out, keeping relative
// paths (and so partitions), with subject tokens mapped.
func rekeyTable[T any](ctx context.Context, ref, outRef dataset.Ref, c *dataset.Contract, mapping map[string]string, subject func(*T) *string) (int64, error) {
	keys, err := dataset.Inputs(ctx, ref, dataset.Window{})
	if err != nil {
		return 0, err
	}
	out, err := dataset.NewOutput(ctx, outRef.Store, outRef.Key, c, "veil "+Version)
	if err != nil {
		return 0, err
	}
	var rows, unmapped int64
	fail := func(err error) (int64, error) { out.Abort(ctx); return 0, err }
	for i, key := range keys {
		f, err := dataset.OpenParquet(ctx, ref.Store, key, c)
		if err != nil {
			return fail(err)
		}
		rel := fmt.Sprintf("part-%05d.parquet", i)
		if d, ok, _ := dataset.Partition(key); ok {
			rel = fmt.Sprintf("dt=%s/part-%05d.parquet", d.Format(time.DateOnly), i)
		}
		w, err := dataset.CreateParquet[T](ctx, out, rel)
		if err != nil {
			f.Close()
			return fail(err)
		}
		err = dataset.ReadRows(ctx, f, func(batch []T) error {
			for j := range batch {
				s := subject(&batch[j])
				nt, ok := mapping[*s]
				if !ok {
					unmapped++
					continue
				}
				*s = nt
			}
			rows += int64(len(batch))
			return w.Write(batch)
		})
		f.Close()
		if err == nil && unmapped > 0 {
			err = fmt.Errorf("%d rows have tokens with no identifier in --ids (or made with another key); nothing was written", unmapped)
		}
		if err != nil {
			w.Abort()
			return fail(err)
		}
		if err := w.Close(); err != nil {
			return fail(err)
		}
	}
	if _, err := out.Commit(ctx, nil); err != nil {
		return fail(err)
	}
	return rows, nil
}
