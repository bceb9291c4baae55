package kmeans

import "errors"

var (
	// ErrInput is returned for data k-means cannot use: NaN or Inf values,
	// an empty matrix, mismatched dimensions.
	ErrInput = errors.New("invalid input for clustering")
	// ErrConfig is returned for an invalid configuration (k < 1, k larger
	// than the number of points, negative tolerance).
	ErrConfig = errors.New("invalid clustering configuration")
)
