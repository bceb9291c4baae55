// Package dataset reads and writes veil's data: the object store contract
// (Store, Ref, store URLs and their options) with the local (file://) and
// in-memory (mem://) stores and client-side envelope encryption, streaming
// Parquet in the version 1 data contracts, Hive-style date partitions, and
// atomically committed outputs with manifests.
//
// Every store implements Store, a plugin contract checked by the shared
// conformance suite in dataset/storetest. The S3 backend is dataset/s3, and
// dataset/open opens a store by its URL (file://, s3://, mem:// or a path),
// so that dataset itself depends on no backend's SDK. Parquet is read through an
// io.ReaderAt so that object storage is read with range requests, one row
// group at a time, decoding only the projected columns.
package dataset
