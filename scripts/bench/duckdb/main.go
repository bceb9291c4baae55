// Command duckbench computes, with DuckDB, what `veil segment prepare`
// computes: the consent-filtered, erasure-filtered events of a window,
// aggregated per subject. It lives in its own module so that veil never
// depends on DuckDB (scripts/bench/scan.sh builds and runs it).
//
//	duckbench run   -shop DIR -date D [-retention N] [-threads N]
//	duckbench check -shop DIR -date D -prepared DIR/dt=D
//	duckbench filter -shop DIR -date D [-threads N]
//	duckbench interactions       -shop DIR -date D -out FILE [-threads N]
//	duckbench check-interactions -shop DIR -date D -prepared DIR/dt=D
//
// run executes one query and consumes every aggregate of every row,
// printing the subject count and a checksum of the features. check runs the
// same query and compares it, subject by subject, with a prepared table of
// veil (the fixed features, the category total and the region).
//
// filter counts the rows and subjects `veil datasets filter --purposes
// segmentation` keeps, printed as "rows_kept N subjects_kept N".
//
// interactions computes what `veil train prepare` computes (the
// personalization-consented interactions per subject and item: summed
// weight, latest time) and writes them sorted by subject and item to one
// Parquet file, as veil writes its shards; check-interactions compares the
// query's rows with veil's prepared table, row by row.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"
)

// featuresSQL is the query: the same filter and aggregates as veil's
// segment prepare with the built-in policy.
//
//   - consent: the latest record per subject for purpose 'segmentation'
//     recorded at or before the end of the logical day decides; of records
//     at the same time, a denial wins (veil: "ties deny"); it must be
//     'granted'. No record means no consent.
//   - erasure: subjects with an erasure request at or before the end of
//     the logical day are dropped (anti-join).
//   - window: event_time in [day+1-retention days, day+1).
//   - only the event types view, add_to_cart, purchase, return count.
//   - per subject: last purchase time, purchases, spend net of returns (in
//     millionths, as veil sums it), views, carts, returns, a histogram of
//     hash(category) % 32, the region of the latest event with a region
//     (the smallest code among events of that time).
//
// allowedSQL is the consent and erasure filter both queries share: the
// subjects whose latest consent record for {purpose} recorded before the
// end of the logical day is 'granted' (of records at the same time, a
// denial wins: veil's "ties deny"; no record, no consent), less those who
// asked for erasure before then.
const allowedSQL = `WITH consent_latest AS (
  SELECT subject_id,
         bool_and(status = 'granted') FILTER (WHERE rn = 1) AS granted
  FROM (
    SELECT subject_id, status,
           rank() OVER (PARTITION BY subject_id ORDER BY recorded_at DESC) AS rn
    FROM read_parquet('{consent}')
    WHERE purpose = '{purpose}' AND recorded_at < TIMESTAMP '{end}'
  )
  GROUP BY subject_id
),
allowed AS (
  SELECT c.subject_id FROM consent_latest c
  ANTI JOIN (SELECT subject_id FROM read_parquet('{erasure}') WHERE requested_at < TIMESTAMP '{end}') e USING (subject_id)
  WHERE c.granted
)`

// {allowed} (allowedSQL for 'segmentation'), {events}, {from}, {end} are
// filled in by query.
const featuresSQL = `
{allowed},
ev AS (
  SELECT e.subject_id, e.event_time, e.event_type, e.category, e.value, e.region
  FROM read_parquet('{events}', hive_partitioning = false) e
  SEMI JOIN allowed a USING (subject_id)
  WHERE e.event_time >= TIMESTAMP '{from}' AND e.event_time < TIMESTAMP '{end}'
    AND e.event_type IN ('view', 'add_to_cart', 'purchase', 'return')
)
SELECT subject_id,
       count(*) AS events,
       max(event_time) FILTER (WHERE event_type = 'purchase') AS last_purchase,
       count(*) FILTER (WHERE event_type = 'purchase') AS purchases,
       coalesce(sum(round(value * 1e6)::BIGINT) FILTER (WHERE event_type IN ('purchase', 'return')), 0) AS money_micros,
       count(*) FILTER (WHERE event_type = 'view') AS views,
       count(*) FILTER (WHERE event_type = 'add_to_cart') AS carts,
       count(*) FILTER (WHERE event_type = 'return') AS returns,
       histogram(hash(category) % 32) FILTER (WHERE category IS NOT NULL) AS buckets,
       arg_min(region, (-epoch_us(event_time), region)) FILTER (WHERE region IS NOT NULL) AS region
FROM ev
GROUP BY subject_id
`

// interactionsSQL is the query of `veil train prepare` with the built-in
// policy and configs/train.yaml's interactions: consent for
// 'personalization' decided as in featuresSQL, erasure anti-join, the
// window of the last 90 days (window_days; the purpose's retention, 365
// days, is longer), event types view, add_to_cart and purchase of weight
// 1, events with an item; per subject and item the summed weight and the
// latest event time in whole seconds (veil keeps seconds).
const interactionsSQL = `
{allowed}
SELECT e.subject_id, e.item_id,
       date_trunc('second', max(e.event_time)) AS event_time,
       sum(CASE e.event_type WHEN 'view' THEN 1.0 WHEN 'add_to_cart' THEN 1.0 WHEN 'purchase' THEN 1.0 END) AS weight
FROM read_parquet('{events}', hive_partitioning = false) e
SEMI JOIN allowed a USING (subject_id)
WHERE e.event_time >= TIMESTAMP '{from90}' AND e.event_time < TIMESTAMP '{end}'
  AND e.event_type IN ('view', 'add_to_cart', 'purchase') AND e.item_id IS NOT NULL
GROUP BY e.subject_id, e.item_id
ORDER BY e.subject_id, e.item_id
`

// filterSQL is what `veil datasets filter --purposes segmentation`
// computes: the rows and subjects the consent and erasure filter keeps in
// the purpose's retention window, every event type.
const filterSQL = `
{allowed}
SELECT count(*) AS rows_kept, count(DISTINCT e.subject_id) AS subjects_kept
FROM read_parquet('{events}', hive_partitioning = false) e
SEMI JOIN allowed a USING (subject_id)
WHERE e.event_time >= TIMESTAMP '{from}' AND e.event_time < TIMESTAMP '{end}'
`

type shop struct {
	dir, date       string
	retention       int
	from, end       string
	from90          string
	events, consent string
	erasure         string
}

func (s *shop) init() error {
	day, err := time.Parse(time.DateOnly, s.date)
	if err != nil {
		return err
	}
	end := day.AddDate(0, 0, 1)
	from := day.AddDate(0, 0, 1-s.retention)
	s.end, s.from = end.Format("2006-01-02 15:04:05"), from.Format("2006-01-02 15:04:05")
	s.from90 = end.AddDate(0, 0, -max(1, min(90, s.retention))).Format("2006-01-02 15:04:05")
	s.events = s.dir + "/events/**/*.parquet"
	s.consent = s.dir + "/consent/**/*.parquet"
	s.erasure = s.dir + "/erasure/**/*.parquet"
	return nil
}

func (s *shop) query() string { return s.fill(featuresSQL, "segmentation") }

func (s *shop) interactionsQuery() string { return s.fill(interactionsSQL, "personalization") }

// fill fills in a query's allowed subjects for the purpose and its tables
// and times.
func (s *shop) fill(q, purpose string) string {
	q = strings.ReplaceAll(q, "{allowed}", strings.ReplaceAll(allowedSQL, "{purpose}", purpose))
	return strings.NewReplacer("{events}", s.events, "{consent}", s.consent, "{erasure}", s.erasure,
		"{from}", s.from, "{from90}", s.from90, "{end}", s.end).Replace(q)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: duckbench run|check|sql|filter|filter-sql|interactions|check-interactions|interactions-sql -shop DIR -date D [-prepared DIR]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	var s shop
	var prepared, out string
	var threads, maxEvents int
	fs.StringVar(&s.dir, "shop", "", "directory of the shop (events/, consent/, erasure/)")
	fs.StringVar(&s.date, "date", "", "logical date YYYY-MM-DD")
	fs.IntVar(&s.retention, "retention", 365, "retention days of the purpose")
	fs.IntVar(&threads, "threads", 0, "DuckDB threads (0: its default, all cores)")
	fs.IntVar(&maxEvents, "max-events", 1000, "veil's max_events_per_subject (heavier subjects are sampled down)")
	fs.StringVar(&prepared, "prepared", "", "veil's prepared table (OUT/dt=D) to check against")
	fs.StringVar(&out, "out", "", "Parquet file the interactions are written to")
	fs.Parse(os.Args[2:])
	if err := s.init(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "sql":
		fmt.Print(s.query())
	case "run":
		err = run(context.Background(), &s, threads)
	case "check":
		err = check(context.Background(), &s, prepared, maxEvents)
	case "filter":
		err = filter(context.Background(), &s, threads)
	case "filter-sql":
		fmt.Print(s.fill(filterSQL, "segmentation"))
	case "interactions-sql":
		fmt.Print(s.interactionsQuery())
	case "interactions":
		err = interactions(context.Background(), &s, out, threads)
	case "check-interactions":
		err = checkInteractions(context.Background(), &s, prepared)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "duckbench:", err)
		os.Exit(1)
	}
}

func open(threads int) (*sql.DB, error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, err
	}
	if threads > 0 {
		if _, err := db.Exec(fmt.Sprintf("SET threads = %d", threads)); err != nil {
			return nil, err
		}
	}
	return db, nil
}

// sums is the checksum of a feature table: the subject count, sums of the
// counts, of net spend in cents, and an order-independent hash of subject
// and counts.
type sums struct {
	Subjects, Purchases, Views, Carts, Returns, Categorized, SpendCents int64
	Hash                                                                uint64
}

func (c *sums) add(subject string, purchases, views, carts, returns, categorized int64, spend float64) {
	c.Subjects++
	c.Purchases += purchases
	c.Views += views
	c.Carts += carts
	c.Returns += returns
	c.Categorized += categorized
	c.SpendCents += int64(math.Round(spend * 100))
	h := fnv.New64a()
	fmt.Fprintf(h, "%s|%d|%d|%d|%d|%d", subject, purchases, views, carts, returns, categorized)
	c.Hash += h.Sum64()
}

func (c sums) String() string {
	return fmt.Sprintf("subjects %d purchases %d views %d carts %d returns %d categorized %d spend_cents %d hash %016x",
		c.Subjects, c.Purchases, c.Views, c.Carts, c.Returns, c.Categorized, c.SpendCents, c.Hash)
}

// run executes the query and consumes every aggregate.
func run(ctx context.Context, s *shop, threads int) error {
	db, err := open(threads)
	if err != nil {
		return err
	}
	defer db.Close()
	c, err := duckSums(ctx, db, s.query())
	if err != nil {
		return err
	}
	fmt.Println("duckdb", c)
	return nil
}

func duckSums(ctx context.Context, db *sql.DB, q string) (sums, error) {
	var c sums
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return c, err
	}
	defer rows.Close()
	for rows.Next() {
		var subject string
		var last sql.NullTime
		var events, purchases, money, views, carts, returns int64
		var buckets any
		var region sql.NullString
		if err := rows.Scan(&subject, &events, &last, &purchases, &money, &views, &carts, &returns, &buckets, &region); err != nil {
			return c, err
		}
		var categorized int64
		switch m := buckets.(type) {
		case duckdb.OrderedMap:
			for _, n := range m.Values() {
				categorized += toInt(n)
			}
		case duckdb.Map:
			for _, n := range m {
				categorized += toInt(n)
			}
		case nil:
		default:
			return c, fmt.Errorf("histogram: unexpected %T", buckets)
		}
		spend := float64(float32(max(0, float64(money)/1e6)))
		c.add(subject, purchases, views, carts, returns, categorized, spend)
	}
	return c, rows.Err()
}

func toInt(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case uint64:
		return int64(n)
	case int32:
		return int64(n)
	case uint32:
		return int64(n)
	}
	return 0
}

// check compares the query's result with veil's prepared table, subject by
// subject: the same subjects, and for every subject whose events were not
// sampled down by veil's contribution bound (at most maxEvents events),
// the same counts, net spend, category total, recency and region.
func check(ctx context.Context, s *shop, prepared string, maxEvents int) error {
	if prepared == "" {
		return fmt.Errorf("-prepared is required")
	}
	db, err := open(0)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TEMP TABLE d AS "+s.query()); err != nil {
		return err
	}
	// features: recency, purchases, net_spend, views, carts, returns, then
	// the category buckets (DuckDB lists are 1-based).
	q := fmt.Sprintf(`WITH v AS (SELECT subject_id, region, features AS f FROM read_parquet('%s/part-*.parquet'))
	  SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM v),
	    count(*) FILTER (WHERE d.subject_id IS NULL OR v.subject_id IS NULL),
	    count(*) FILTER (WHERE d.events > %d),
	    count(*) FILTER (WHERE d.events <= %d AND (d.purchases <> f[2] OR d.views <> f[4] OR d.carts <> f[5] OR d.returns <> f[6]
	      OR coalesce(list_sum(map_values(d.buckets)), 0) <> list_sum(f[7:])
	      OR abs(greatest(0, d.money_micros / 1e6) - f[3]) > 1e-6 * greatest(1, f[3])
	      OR d.region IS DISTINCT FROM v.region
	      OR (d.last_purchase IS NULL AND f[1] <> %d)
	      OR (d.last_purchase IS NOT NULL AND abs(f[1] - epoch_us(TIMESTAMP '%s' - d.last_purchase) / 86400e6) > 1e-4 * greatest(1, f[1]))))
	  FROM d FULL JOIN v USING (subject_id)`, prepared, maxEvents, maxEvents, s.retention, s.end)
	var nd, nv, missing, bounded, differ int64
	if err := db.QueryRowContext(ctx, q).Scan(&nd, &nv, &missing, &bounded, &differ); err != nil {
		return err
	}
	fmt.Printf("subjects: DuckDB %d, veil %d, in one table only %d; over %d events (compared by presence only) %d; features differ %d\n",
		nd, nv, missing, maxEvents, bounded, differ)
	if nd != nv || missing != 0 || differ != 0 {
		return fmt.Errorf("DuckDB and veil disagree")
	}
	fmt.Println("same: yes")
	return nil
}

// interactions writes the interactions query's rows to one Parquet file.
func interactions(ctx context.Context, s *shop, out string, threads int) error {
	if out == "" {
		return fmt.Errorf("-out is required")
	}
	db, err := open(threads)
	if err != nil {
		return err
	}
	defer db.Close()
	q := fmt.Sprintf("COPY (%s) TO '%s' (FORMAT parquet)", s.interactionsQuery(), strings.ReplaceAll(out, "'", "''"))
	r, err := db.ExecContext(ctx, q)
	if err != nil {
		return err
	}
	n, _ := r.RowsAffected()
	fmt.Println("duckdb interactions", n)
	return nil
}

// checkInteractions compares the query's rows with veil's prepared
// interactions table: the same (subject, item) pairs, weights and times.
func checkInteractions(ctx context.Context, s *shop, prepared string) error {
	if prepared == "" {
		return fmt.Errorf("-prepared is required")
	}
	db, err := open(0)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TEMP TABLE d AS "+s.interactionsQuery()); err != nil {
		return err
	}
	q := fmt.Sprintf(`WITH v AS (SELECT subject_id, item_id, event_time, weight FROM read_parquet('%s/part-*.parquet'))
	  SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM v),
	    (SELECT count(DISTINCT subject_id) FROM d), (SELECT count(DISTINCT subject_id) FROM v),
	    count(*) FILTER (WHERE d.subject_id IS NULL OR v.subject_id IS NULL),
	    count(*) FILTER (WHERE d.weight <> v.weight OR d.event_time <> v.event_time)
	  FROM d FULL JOIN v USING (subject_id, item_id)`, prepared)
	var nd, nv, sd, sv, missing, differ int64
	if err := db.QueryRowContext(ctx, q).Scan(&nd, &nv, &sd, &sv, &missing, &differ); err != nil {
		return err
	}
	fmt.Printf("interactions: DuckDB %d (%d subjects), veil %d (%d subjects), in one table only %d, weight or time differ %d\n",
		nd, sd, nv, sv, missing, differ)
	if nd != nv || sd != sv || missing != 0 || differ != 0 {
		return fmt.Errorf("DuckDB and veil disagree")
	}
	fmt.Println("same: yes")
	return nil
}

// filter prints the rows and subjects the consent and erasure filter keeps.
func filter(ctx context.Context, s *shop, threads int) error {
	db, err := open(threads)
	if err != nil {
		return err
	}
	defer db.Close()
	var rows, subjects int64
	if err := db.QueryRowContext(ctx, s.fill(filterSQL, "segmentation")).Scan(&rows, &subjects); err != nil {
		return err
	}
	fmt.Printf("rows_kept %d subjects_kept %d\n", rows, subjects)
	return nil
}
