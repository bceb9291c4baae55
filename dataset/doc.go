// Package dataset reads and writes veil's data: object stores (file://, s3://,
// mem://), streaming Parquet in the version 1 data contracts, Hive-style date
// partitions, and atomically committed outputs with manifests.
//
// Every store implements Store, a plugin contract checked by the shared
// conformance suite in dataset/storetest. Parquet is read through an
// io.ReaderAt so that object storage is read with range requests, one row
// group at a time, decoding only the projected columns.
package dataset
