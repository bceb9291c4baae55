// Package failpoint kills the process at named points, for crash tests:
// VEIL_FAILPOINT=NAME makes Inject(NAME) exit at once with status 137, as
// kill -9 would, with no deferred clean-up. Without the variable it does
// nothing. The runner's points are "after-lock", "after-step:STEP" and
// "before-pointer"; the others name their package ("budget:after-spend",
// "output:before-manifest", "train:after-checkpoint:N").
package failpoint

import "os"

var active = os.Getenv("VEIL_FAILPOINT")

// Inject exits the process if name is the active failpoint.
func Inject(name string) {
	if active != "" && active == name {
		os.Exit(137)
	}
}
