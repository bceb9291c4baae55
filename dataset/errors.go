package dataset

import (
	"errors"
	"fmt"
)

var (
	// ErrNotExist is returned (wrapped) when a key is not in a store.
	ErrNotExist = errors.New("object does not exist")

	// ErrExist is returned (wrapped) by a conditional write when the key
	// already exists, or by a compare-and-swap whose ETag no longer matches.
	ErrExist = errors.New("object already exists or was changed")

	// ErrNoBucket is returned when an S3 bucket does not exist or is not
	// reachable with the given credentials.
	ErrNoBucket = errors.New("bucket does not exist")

	// ErrCredentials is returned when no usable credentials were found.
	ErrCredentials = errors.New("no usable credentials")
	// ErrAccessDenied is returned when S3 refuses the credentials it was
	// given for a bucket (HTTP 403): a wrong secret key, or a principal
	// without access.
	ErrAccessDenied = errors.New("access denied")

	// ErrBadURL is returned for a store URL that cannot be parsed or names
	// an unknown scheme. It is a usage error.
	ErrBadURL = errors.New("invalid store URL")

	// ErrBadKey is returned for a key that is empty, absolute or escapes
	// the store's root.
	ErrBadKey = errors.New("invalid object key")

	// ErrNotParquet is returned for a file that is not a readable Parquet
	// file (bad magic, truncated footer, corrupt metadata).
	ErrNotParquet = errors.New("not a readable Parquet file")

	// ErrSchema is returned (inside a *SchemaError) when a Parquet file does
	// not satisfy a data contract.
	ErrSchema = errors.New("schema does not match the data contract")

	// ErrCorrupt is returned when data inside a valid Parquet file breaks
	// the contract, such as a null in a required column.
	ErrCorrupt = errors.New("corrupt data")
	// ErrInsecure reports a store set-up that would send data unencrypted.
	ErrInsecure = errors.New("insecure store configuration")

	// ErrNotCommitted is returned when an output prefix has no manifest, so
	// it must not be read.
	ErrNotCommitted = errors.New("output is not committed (no manifest)")

	// ErrChecksum is returned when a file no longer matches its manifest.
	ErrChecksum = errors.New("file does not match its manifest")
)

// SchemaError says which file and column break a data contract, and how.
type SchemaError struct {
	File     string // location of the file
	Contract string // contract name, such as "events"
	Column   string // column name, empty for file-level problems
	Problem  string // what is wrong, in words
}

func (e *SchemaError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("%s: %s contract: %s", e.File, e.Contract, e.Problem)
	}
	return fmt.Sprintf("%s: %s contract: column %q: %s", e.File, e.Contract, e.Column, e.Problem)
}

// Unwrap makes errors.Is(err, ErrSchema) true.
func (e *SchemaError) Unwrap() error { return ErrSchema }
