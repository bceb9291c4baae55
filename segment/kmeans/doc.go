// Package kmeans holds veil's clustering kernels: exact k-means (Lloyd
// iterations accelerated with Hamerly's distance bounds, k-means++ and
// k-means|| seeding, restarts, empty-cluster repair), mini-batch k-means
// over a stream of pieces for data that does not fit in memory, DP k-means
// (noisy Lloyd iterations under (ε, δ)-DP, with its noise plan), the
// silhouette score, the dense float32 Matrix they all work on, and the
// distance kernels (AVX2 on amd64, portable Go elsewhere).
//
// It reads and writes no files and knows no job: package segment builds
// the features, runs the jobs and writes the exports. Its only veil
// dependencies are privacy/dp (the secure noise) and privacy/accountant
// (calibrating it), so importing it pulls in no storage, Parquet or CLI
// code.
//
// Fits are deterministic for a seed and a number of workers; DP k-means
// draws its noise from the rand.Source it is given (a secure one in jobs).
package kmeans
