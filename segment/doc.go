// Package segment builds cohorts: per-subject features from consented
// events, the segmentation job around the clustering kernels of package
// segment/kmeans (k-means, mini-batch k-means, DP k-means), a cohort floor,
// plain-language cohort profiles, exports for marketing, plots, datasheets,
// monitoring, and the staging API (prepared tables, partials, releases)
// that the Beam module runs per row group.
package segment
