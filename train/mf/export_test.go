package mf

// The fixtures of this package's tests, for the external tests beside them
// (experiment_test.go) that run train's orchestration on the kernel.
var (
	Planted    = planted
	TestConfig = testConfig
)
