package dataset

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"io"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/veil-privacy/veil/internal/failpoint"
)

// Object names with meaning inside an output prefix. Names that start with
// "_" or "." are hidden from readers, as in Hive and Spark.
const (
	ManifestName = "_manifest.json" // written last: the output is committed
	PendingName  = "_PENDING"       // a first write is under way
)

// Manifest lists the files of a committed output. Readers read exactly the
// files it lists; files under the prefix that it does not list do not exist
// for them.
type Manifest struct {
	Version   int               `json:"version"`
	WriteID   string            `json:"write_id"`
	Contract  string            `json:"contract,omitempty"`
	Producer  string            `json:"producer"`
	CreatedAt time.Time         `json:"created_at"`
	Rows      int64             `json:"rows"`
	Bytes     int64             `json:"bytes"`
	Files     []ManifestFile    `json:"files"`
	Schema    string            `json:"schema,omitempty"`
	Meta      map[string]string `json:"meta,omitempty"`
	// Encryption names how the files are encrypted client-side, and with
	// which key id; never the key.
	Encryption *ManifestEncryption `json:"encryption,omitempty"`
	// Class says who may read the output: ClassRelease or ClassSteward
	// (empty for inputs and intermediate tables).
	Class string `json:"class,omitempty"`
	// Identity names the population of subjects the rows are about: the
	// key of its privacy budget. An events table gets a new random one
	// when first written (veil generate, veil pseudonymize) and keeps it
	// when rewritten; a table derived from events (a prepared table)
	// carries the identity of the events it came from.
	Identity string `json:"identity,omitempty"`
}

// Classes of committed outputs (DESIGN.md, "What leaves veil").
const (
	// ClassRelease is read by people the guarantee protects subjects
	// from: every number in it is DP or public by declaration.
	ClassRelease = "release"
	// ClassSteward is for the data steward only: exact counts,
	// diagnostics, evaluation on private data. It lives in the state
	// store, never under a release's prefix.
	ClassSteward = "steward"
)

// ManifestEncryption records client-side envelope encryption.
type ManifestEncryption struct {
	Scheme string `json:"scheme"`
	KeyID  string `json:"key_id"`
}

// ManifestFile is one file of an output, with its key relative to the
// output prefix.
type ManifestFile struct {
	Key    string `json:"key"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Rows   int64  `json:"rows"`
	// Class is the file's class (ClassRelease, ClassSteward); empty: the
	// output's.
	Class string `json:"class,omitempty"`
}

// Output is an output being written under a prefix of a store. Files are
// written under names unique to this write; the manifest, written by
// Commit, makes them visible all at once and replaces any earlier
// manifest. A crash before Commit leaves the earlier output (or, for a first
// write, a _PENDING marker that makes readers refuse the prefix).
//
// Output is safe for concurrent use by the writers of its files.
type Output struct {
	store    Store
	prefix   string
	contract *Contract
	producer string
	writeID  string
	old      *Manifest
	pending  bool
	stale    string // write id of a crashed first write, whose files Commit removes

	identity string // for the manifest; see SetIdentity

	mu     sync.Mutex
	files  []ManifestFile
	schema string
	class  string
}

// SetClass sets the class of the output (ClassRelease, ClassSteward),
// recorded in its manifest and on each of its files.
func (o *Output) SetClass(class string) {
	o.mu.Lock()
	o.class = class
	o.mu.Unlock()
}

// Class is the output's class (ClassRelease, ClassSteward; "" if unset).
func (o *Output) Class() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.class
}

// SetIdentity sets the identity the manifest records: the population the
// rows are about (Manifest.Identity). Call it before Commit.
func (o *Output) SetIdentity(id string) { o.identity = id }

// NewPopulation marks the output as a table of its own population (events):
// it keeps the identity of the committed output it replaces, if that has
// one, and otherwise gets a new random identity, which it returns. Keeping
// it is the safe side: a rewrite of a table (a new day's partition, a
// re-run of the same export) is about the same subjects, and a new
// identity would grant them a fresh budget.
func (o *Output) NewPopulation() string {
	if o.old != nil && o.old.Identity != "" {
		o.identity = o.old.Identity
	} else {
		var id [16]byte
		rand.Read(id[:])
		o.identity = "population-" + hex.EncodeToString(id[:])
	}
	return o.identity
}

// NewOutput starts a write of an output of contract (nil for mixed files)
// under prefix.
func NewOutput(ctx context.Context, s Store, prefix string, contract *Contract, producer string) (*Output, error) {
	var id [8]byte
	rand.Read(id[:])
	o := &Output{store: s, prefix: strings.Trim(prefix, "/"), contract: contract, producer: producer, writeID: hex.EncodeToString(id[:])}
	old, err := ReadManifest(ctx, s, o.prefix)
	switch {
	case err == nil:
		o.old = old
	case errors.Is(err, ErrNotExist), errors.Is(err, ErrNotCommitted):
		if errors.Is(err, ErrNotCommitted) {
			if b, err := ReadAll(ctx, s, Join(o.prefix, PendingName)); err == nil {
				o.stale = strings.TrimSpace(string(b))
			}
		}
		if err := PutBytes(ctx, s, Join(o.prefix, PendingName), []byte(o.writeID+"\n")); err != nil {
			return nil, fmt.Errorf("starting output %s/%s: %w", s.Location(), o.prefix, err)
		}
		o.pending = true
	default:
		return nil, err
	}
	return o, nil
}

// ResumeOutput joins the write writeID that NewOutput started elsewhere (in
// the driver of a distributed job): workers write files into it and report
// them (Files); one of them adds all files (AddFiles) and commits. It
// does not mark the prefix again; it reads the committed manifest, if
// any, so that Commit removes the files it replaces.
func ResumeOutput(ctx context.Context, s Store, prefix string, contract *Contract, producer, writeID string) (*Output, error) {
	if writeID == "" || strings.ContainsAny(writeID, "/.-") {
		return nil, fmt.Errorf("%w: write id %q", ErrBadKey, writeID)
	}
	o := &Output{store: s, prefix: strings.Trim(prefix, "/"), contract: contract, producer: producer, writeID: writeID}
	old, err := ReadManifest(ctx, s, o.prefix)
	switch {
	case err == nil:
		o.old = old
	case errors.Is(err, ErrNotCommitted):
		o.pending = true
	case errors.Is(err, ErrNotExist):
	default:
		return nil, err
	}
	return o, nil
}

// Files returns the files written so far.
func (o *Output) Files() []ManifestFile {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.files)
}

// AddFiles adds files that other processes wrote into this write (see
// ResumeOutput); each must carry this write's id.
func (o *Output) AddFiles(files []ManifestFile, schema string) error {
	for _, f := range files {
		if !strings.Contains(path.Base(f.Key), "-"+o.writeID+".") {
			return fmt.Errorf("%w: %s is not a file of write %s", ErrBadKey, f.Key, o.writeID)
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, f := range files {
		// A retried worker may report a file again: the last report wins.
		o.files = slices.DeleteFunc(o.files, func(g ManifestFile) bool { return g.Key == f.Key })
		o.files = append(o.files, f)
	}
	if schema != "" {
		o.schema = schema
	}
	return nil
}

// Schema returns the Parquet schema of the files written so far.
func (o *Output) Schema() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.schema
}

// Location returns the URL of the output prefix.
func (o *Output) Location() string { return o.store.Location() + "/" + o.prefix }

// WriteID returns the id that names this write's files.
func (o *Output) WriteID() string { return o.writeID }

// FileLocation is the URL of the file rel of this write.
func (o *Output) FileLocation(rel string) (string, error) {
	key, err := o.fileKey(rel)
	return o.Location() + "/" + key, err
}

// Find returns the committed file written as rel (its key carries the
// write id: name-WRITEID.ext).
func (m *Manifest) Find(rel string) (ManifestFile, bool) {
	ext := path.Ext(rel)
	want := strings.TrimSuffix(rel, ext) + "-" + m.WriteID + ext
	for _, f := range m.Files {
		if f.Key == want {
			return f, true
		}
	}
	return ManifestFile{}, false
}

// fileKey names the file rel of this write, unique to the write so that a
// committed output is never overwritten in place.
func (o *Output) fileKey(rel string) (string, error) {
	if err := CheckKey(rel); err != nil {
		return "", err
	}
	if strings.HasPrefix(path.Base(rel), "_") || strings.HasPrefix(path.Base(rel), ".") {
		return "", fmt.Errorf("%w: output file %q is hidden", ErrBadKey, rel)
	}
	ext := path.Ext(rel)
	return strings.TrimSuffix(rel, ext) + "-" + o.writeID + ext, nil
}

func (o *Output) add(f ManifestFile, schema string) {
	o.mu.Lock()
	o.files = append(o.files, f)
	if schema != "" {
		o.schema = schema
	}
	o.mu.Unlock()
}

// PutFile writes a whole small file (CSV, JSON) into the output.
func (o *Output) PutFile(ctx context.Context, rel string, data []byte, rows int64) error {
	key, err := o.fileKey(rel)
	if err != nil {
		return err
	}
	if err := PutBytes(ctx, o.store, Join(o.prefix, key), data); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	o.add(ManifestFile{Key: key, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Rows: rows}, "")
	failpoint.Inject("output:after-file:" + rel)
	return nil
}

// Commit writes the manifest, which makes the output visible, and then
// removes the files of the manifest it replaced.
func (o *Output) Commit(ctx context.Context, meta map[string]string) (*Manifest, error) {
	o.mu.Lock()
	m := &Manifest{
		Version: 1, WriteID: o.writeID, Producer: o.producer, CreatedAt: time.Now().UTC(),
		Files: slices.Clone(o.files), Schema: o.schema, Meta: meta, Class: o.class, Identity: o.identity,
	}
	o.mu.Unlock()
	for i := range m.Files {
		if m.Files[i].Class == "" {
			m.Files[i].Class = m.Class
		}
	}
	if o.contract != nil {
		m.Contract = o.contract.Name
	}
	if e, ok := o.store.(interface{ EncryptionKeyID() string }); ok && e.EncryptionKeyID() != "" {
		m.Encryption = &ManifestEncryption{Scheme: EncryptionScheme, KeyID: e.EncryptionKeyID()}
	}
	slices.SortFunc(m.Files, func(a, b ManifestFile) int { return strings.Compare(a.Key, b.Key) })
	for _, f := range m.Files {
		m.Rows += f.Rows
		m.Bytes += f.Size
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	failpoint.Inject("output:before-manifest")
	if err := PutBytes(ctx, o.store, Join(o.prefix, ManifestName), append(data, '\n')); err != nil {
		return nil, fmt.Errorf("committing %s: %w", o.Location(), err)
	}
	// The output is committed. What follows is clean-up: a failure leaves
	// garbage that readers never see, so it is not an error of the write.
	cctx := context.WithoutCancel(ctx)
	if o.pending {
		o.store.Delete(cctx, Join(o.prefix, PendingName))
	}
	if o.stale != "" && o.stale != o.writeID {
		// The files of a write that crashed before its first commit.
		var gone []string
		for info, err := range o.store.List(cctx, o.prefix+"/") {
			if err != nil {
				break
			}
			if strings.Contains(path.Base(info.Key), "-"+o.stale+".") {
				gone = append(gone, info.Key)
			}
		}
		for _, k := range gone {
			o.store.Delete(cctx, k)
		}
	}
	if o.old != nil {
		keep := make(map[string]bool, len(m.Files))
		for _, f := range m.Files {
			keep[f.Key] = true
		}
		for _, f := range o.old.Files {
			if !keep[f.Key] {
				o.store.Delete(cctx, Join(o.prefix, f.Key))
			}
		}
	}
	return m, nil
}

// Abort removes the files written so far. The previous output, if any,
// stays as it was.
func (o *Output) Abort(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	o.mu.Lock()
	files := slices.Clone(o.files)
	o.files = nil
	o.mu.Unlock()
	for _, f := range files {
		o.store.Delete(ctx, Join(o.prefix, f.Key))
	}
	if o.pending {
		o.store.Delete(ctx, Join(o.prefix, PendingName))
	}
}

// ReadManifest reads the manifest of the output under prefix. It fails
// with ErrNotCommitted when a first write is under way or crashed, and with
// ErrNotExist when there is no output at all.
func ReadManifest(ctx context.Context, s Store, prefix string) (*Manifest, error) {
	data, err := ReadAll(ctx, s, Join(prefix, ManifestName))
	if errors.Is(err, ErrNotExist) {
		if _, perr := s.Stat(ctx, Join(prefix, PendingName)); perr == nil {
			return nil, fmt.Errorf("%s/%s: %w", s.Location(), prefix, ErrNotCommitted)
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s/%s: %w: manifest: %v", s.Location(), Join(prefix, ManifestName), ErrCorrupt, err)
	}
	if m.Version != 1 {
		return nil, fmt.Errorf("%s/%s: %w: manifest version %d", s.Location(), Join(prefix, ManifestName), ErrCorrupt, m.Version)
	}
	for _, f := range m.Files {
		if err := CheckKey(f.Key); err != nil {
			return nil, fmt.Errorf("%s/%s: %w: manifest lists %v", s.Location(), Join(prefix, ManifestName), ErrCorrupt, err)
		}
	}
	return &m, nil
}

// VerifyManifest checks that every file of the output under prefix still has
// the size and SHA-256 that its manifest records.
func VerifyManifest(ctx context.Context, s Store, prefix string) (*Manifest, error) {
	m, err := ReadManifest(ctx, s, prefix)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, f := range m.Files {
		key := Join(prefix, f.Key)
		obj, err := s.Open(ctx, key)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		h := sha256.New()
		n, err := io.Copy(h, io.NewSectionReader(obj, 0, obj.Size()))
		obj.Close()
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("reading %s/%s: %w", s.Location(), key, err))
		case n != f.Size || hex.EncodeToString(h.Sum(nil)) != f.SHA256:
			errs = append(errs, fmt.Errorf("%s/%s: %w", s.Location(), key, ErrChecksum))
		}
	}
	return m, errors.Join(errs...)
}

// ParquetWriter streams rows of type T into one Parquet file of an output.
// Rows are buffered one row group at a time and uploaded as they are
// encoded, so memory is bounded by the row group size.
type ParquetWriter[T any] struct {
	rel  string
	o    *Output
	key  string
	pw   *io.PipeWriter
	sink *hashingWriter
	w    *parquet.GenericWriter[T]
	rows int64
	done chan error
}

// DefaultRowGroupRows is the number of rows per row group that veil writes.
const DefaultRowGroupRows = 256 << 10

// CreateParquet starts the file rel (a key relative to the output prefix).
// Close finishes it and adds it to the output; Abort drops it.
func CreateParquet[T any](ctx context.Context, o *Output, rel string, opts ...parquet.WriterOption) (*ParquetWriter[T], error) {
	key, err := o.fileKey(rel)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := o.store.Put(ctx, Join(o.prefix, key), pr)
		pr.CloseWithError(err) // a failed upload fails the writer's next write
		done <- err
	}()
	sink := &hashingWriter{w: pw, h: sha256.New()}
	opts = append([]parquet.WriterOption{
		parquet.MaxRowsPerRowGroup(DefaultRowGroupRows),
		parquet.Compression(&snappy.Codec{}),
		parquet.CreatedBy("veil", "1", ""),
	}, opts...)
	return &ParquetWriter[T]{o: o, rel: rel, key: key, pw: pw, sink: sink, w: parquet.NewGenericWriter[T](sink, opts...), done: done}, nil
}

// PutParquet writes rows as one whole Parquet file rel of the output.
func PutParquet[T any](ctx context.Context, o *Output, rel string, rows []T) error {
	w, err := CreateParquet[T](ctx, o, rel)
	if err != nil {
		return err
	}
	if err := w.Write(rows); err != nil {
		w.Abort()
		return err
	}
	return w.Close()
}

// Write writes rows. The writer does not keep rows after it returns.
func (w *ParquetWriter[T]) Write(rows []T) error {
	n, err := w.w.Write(rows)
	w.rows += int64(n)
	if err != nil {
		return fmt.Errorf("writing %s/%s: %w", w.o.Location(), w.key, err)
	}
	return nil
}

// Rows returns the number of rows written so far.
func (w *ParquetWriter[T]) Rows() int64 { return w.rows }

// Close flushes the file, waits for the upload and adds the file to the
// output.
func (w *ParquetWriter[T]) Close() error {
	if err := w.w.Close(); err != nil {
		w.pw.CloseWithError(err)
		<-w.done
		return fmt.Errorf("writing %s/%s: %w", w.o.Location(), w.key, err)
	}
	w.pw.Close()
	if err := <-w.done; err != nil {
		return err
	}
	w.o.add(ManifestFile{Key: w.key, Size: w.sink.n, SHA256: hex.EncodeToString(w.sink.h.Sum(nil)), Rows: w.rows}, w.w.Schema().String())
	failpoint.Inject("output:after-file:" + w.rel)
	return nil
}

// Abort drops the file: no object is written.
func (w *ParquetWriter[T]) Abort() {
	w.pw.CloseWithError(errAborted)
	<-w.done
}

var errAborted = errors.New("write aborted")

type hashingWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (hw *hashingWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}

// Shard returns the shard of a subject among n: an FNV-1a hash of its
// token, so that every writer of a sharded table, on one machine or many,
// puts a subject in the same file.
func Shard(subject string, n int) int {
	h := fnv.New64a()
	h.Write([]byte(subject))
	return int(h.Sum64() % uint64(n))
}
