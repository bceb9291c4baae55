#!/usr/bin/env bash
# White-box privacy audits: proven ε, empirical lower bound (95%), its share
# of the proven ε, noise values and seconds, for DP-SGD at ε 1, 2 and 8 on
# 3,000 subjects, DP k-means at ε 1, 2 and 8, and the discrete Gaussian of
# noisy counts; then the fault matrix (which deliberately broken mechanism
# each audit flags). Fixed seeds: the figures repeat.
# Usage: scripts/bench/audit.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
go test ./train/mf -run '^TestWhiteBoxFaults$' -count 1 -v | grep -E 'lower bound|noise_multiplier|sampling_rate|sensitivity|flagged|: white-box|^(ok|FAIL|---)' || true
go test ./segment -run '^TestWhiteBoxDPKMeans$' -count 1 -v | grep -E 'lower bound|0.8×|^(ok|FAIL|---)' || true
go test ./privacy/audit -run '^TestDiscreteGaussianAudit$' -count 1 -v | grep -E 'lower bound|0.8×|^(ok|FAIL|---)' || true
