package report_test

import (
	"fmt"

	"github.com/veil-privacy/veil/report"
)

func ExampleParseAudience() {
	for _, s := range []string{"marketing", "steward", "engineer"} {
		a, err := report.ParseAudience(s)
		fmt.Println(a, err)
	}
	// Output:
	// marketing <nil>
	// steward <nil>
	//  audience "engineer": want marketing or steward
}
