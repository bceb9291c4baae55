// Package train will hold matrix factorization under user-level DP-SGD,
// evaluation and recommendations. It is empty until the training issue
// lands; nothing here pretends to work.
package train
