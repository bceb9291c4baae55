// Package segment will hold feature building, k-means, DP k-means, the cohort
// floor, cohort profiles and exports. It is empty until the segmentation
// issue lands; nothing here pretends to work.
package segment
