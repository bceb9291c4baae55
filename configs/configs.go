// Package configs holds veil's example job specs and policies. The files
// are the documentation; the package only embeds the one a command runs.
package configs

import _ "embed"

// Nightly is configs/nightly.yaml, the pipeline veil demo runs: its paths
// are relative to the folder that holds veil-demo.
//
//go:embed nightly.yaml
var Nightly []byte
