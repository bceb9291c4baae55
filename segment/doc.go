// Package segment builds cohorts: per-subject features from consented
// events, k-means (exact Lloyd iterations accelerated with Hamerly's distance
// bounds, k-means++ and k-means|| seeding, restarts, empty-cluster repair,
// mini-batch k-means for data that does not fit in memory), DP k-means, a
// cohort floor, plain-language cohort profiles and exports for marketing.
package segment
