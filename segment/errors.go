package segment

import "github.com/veil-privacy/veil/segment/kmeans"

// The errors of segment are those of the clustering kernels: a job's
// configuration and input are refused with the same errors as k-means',
// so that callers test one value.
var (
	// ErrInput is returned for data segment cannot use: NaN or Inf
	// features, an empty matrix, mismatched dimensions.
	ErrInput = kmeans.ErrInput
	// ErrConfig is returned for an invalid job or clustering
	// configuration.
	ErrConfig = kmeans.ErrConfig
)
