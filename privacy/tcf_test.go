package privacy

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func setOf(f func(int) bool, n int) []int {
	var out []int
	for i := 1; i <= n; i++ {
		if f(i) {
			out = append(out, i)
		}
	}
	return out
}

// Reference strings and their decoded fields from the test suite of the
// CPAN module GDPR::IAB::TCFv2 (t/01-parse.t): one with bit-field vendor
// sections, one with range encoding.
func TestDecodeTCStringReference(t *testing.T) {
	t.Run("bitfield", func(t *testing.T) {
		tc, err := DecodeTCString("CLcVDxRMWfGmWAVAHCENAXCkAKDAADnAABRgA5mdfCKZuYJez-NQm0TBMYA4oCAAGQYIAAAAAAEAIAEgAA.argAC0gAAAAAAAAAAAA")
		if err != nil {
			t.Fatal(err)
		}
		if tc.Version != 2 || tc.Created != time.Unix(1228644257, 700000000).UTC() || tc.LastUpdated != time.Unix(1326215413, 400000000).UTC() ||
			tc.CMPID != 21 || tc.CMPVersion != 7 || tc.ConsentScreen != 2 || tc.ConsentLanguage != "EN" ||
			tc.VendorListVersion != 23 || tc.PolicyVersion != 2 || !tc.IsServiceSpecific || tc.UseNonStandard ||
			tc.PurposeOneTreat || tc.PublisherCC != "KM" || tc.MaxVendorConsent != 115 || tc.MaxVendorLI != 113 {
			t.Errorf("decoded %+v", tc)
		}
		if got := setOf(tc.PurposeConsent, 24); !slices.Equal(got, []int{1, 3, 9, 10}) {
			t.Errorf("purpose consent %v", got)
		}
		if got := setOf(func(i int) bool { return i <= 24 && tc.PurposesLI&(1<<(i-1)) != 0 }, 24); !slices.Equal(got, []int{3, 4, 5, 8, 9, 10}) {
			t.Errorf("purpose LI %v", got)
		}
		if got := setOf(tc.SpecialFeature, 12); !slices.Equal(got, []int{2}) {
			t.Errorf("special features %v", got)
		}
		want := []int{2, 3, 6, 7, 8, 10, 12, 13, 14, 15, 16, 21, 25, 27, 30, 31, 34, 35, 37, 38, 39, 42, 43, 49, 52, 54, 55, 56, 57, 59, 60, 63, 64, 65,
			66, 67, 68, 69, 73, 74, 76, 78, 83, 86, 87, 89, 90, 92, 96, 99, 100, 106, 109, 110, 114, 115}
		if got := setOf(tc.VendorConsent, 120); !slices.Equal(got, want) {
			t.Errorf("vendor consent %v", got)
		}
		if got := setOf(tc.VendorLI, 120); !slices.Equal(got, []int{1, 9, 26, 27, 30, 36, 37, 43, 86, 97, 110, 113}) {
			t.Errorf("vendor LI %v", got)
		}
	})
	t.Run("range", func(t *testing.T) {
		tc, err := DecodeTCString("COyfVVoOyfVVoADACHENAwCAAAAAAAAAAAAAE5QBgALgAqgD8AQACSwEygJyAnSAMABgAFkAgQCDASeAmYBOgAA")
		if err != nil {
			t.Fatal(err)
		}
		if tc.Created != time.Unix(1587946020, 0).UTC() || tc.CMPID != 3 || tc.CMPVersion != 2 || tc.ConsentScreen != 7 ||
			tc.VendorListVersion != 48 || tc.PublisherCC != "AA" || tc.MaxVendorConsent != 626 || tc.MaxVendorLI != 628 || tc.PurposesConsent != 0 {
			t.Errorf("decoded %+v", tc)
		}
		if got := setOf(tc.VendorConsent, 626); !slices.Equal(got, []int{23, 42, 126, 127, 128, 587, 613, 626}) {
			t.Errorf("vendor consent %v", got)
		}
		if got := setOf(tc.VendorLI, 628); !slices.Equal(got, []int{24, 44, 129, 130, 131, 591, 614, 628}) {
			t.Errorf("vendor LI %v", got)
		}
	})
}

func TestDecodeTCStringMalformed(t *testing.T) {
	good := "COyfVVoOyfVVoADACHENAwCAAAAAAAAAAAAAE5QBgALgAqgD8AQACSwEygJyAnSAMABgAFkAgQCDASeAmYBOgAA"
	for _, s := range []string{
		"", ".", "not base64 !!", "BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA", // a TCF v1 string
		good[:20], good[:60], strings.Repeat("A", 70000),
		"C" + strings.Repeat("A", 30), // CMP id 0
	} {
		if _, err := DecodeTCString(s); !errors.Is(err, ErrTCString) {
			t.Errorf("%q: %v, want ErrTCString", s, err)
		}
	}
}

func FuzzDecodeTCString(f *testing.F) {
	f.Add("CLcVDxRMWfGmWAVAHCENAXCkAKDAADnAABRgA5mdfCKZuYJez-NQm0TBMYA4oCAAGQYIAAAAAAEAIAEgAA")
	f.Add("COyfVVoOyfVVoADACHENAwCAAAAAAAAAAAAAE5QBgALgAqgD8AQACSwEygJyAnSAMABgAFkAgQCDASeAmYBOgAA")
	f.Add("CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA.YAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		tc, err := DecodeTCString(s)
		if err != nil {
			if !errors.Is(err, ErrTCString) {
				t.Fatalf("error %v does not wrap ErrTCString", err)
			}
			return
		}
		for v := range 10 {
			tc.VendorConsent(v)
		}
	})
}
