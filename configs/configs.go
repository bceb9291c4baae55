// Package configs holds veil's example job specs and policies. The files
// are the documentation; the package only embeds the one a command runs.
package configs

import _ "embed"

// Nightly is configs/nightly.yaml, the pipeline veil demo runs: its paths
// are relative to the folder that holds veil-demo.
//
//go:embed nightly.yaml
var Nightly []byte

// Policy is configs/policy.yaml, the demo's privacy policy: veil demo
// writes it next to the shop (veil-demo/policy.yaml), where the steps of
// configs/nightly.yaml read it; it sets the shop's privacy budget.
//
//go:embed policy.yaml
var Policy []byte
