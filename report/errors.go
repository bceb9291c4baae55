package report

import "errors"

// ErrNotCompleted is returned by Collect when the pipeline has no
// completed run for the logical date.
var ErrNotCompleted = errors.New("no completed run")

// ErrBrokenLink is returned by CheckLinks for a link that leaves the site
// or names a file the site does not hold.
var ErrBrokenLink = errors.New("broken link")
