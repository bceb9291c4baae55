// Package crypt wraps a dataset.Store with client-side envelope encryption
// (the format dataset.EncryptionScheme names in manifests): what is put is
// written encrypted under a data key wrapped with the configured key, and
// what is opened is decrypted as it is read, by ranged segments. dataset/open
// applies it to every store it opens when the URL options ask for it.
package crypt
