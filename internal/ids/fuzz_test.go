package ids_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/fleetform/terraform-provider-thingspace/internal/ids"
)

// The fuzz tests keep their seeds in this file; `go test` runs only the seeds, and
// `go test -fuzz=FuzzValidateEID ./internal/ids/` explores further.

// checkError asserts the invariants every validation error keeps: an *ids.Error that
// wraps exactly one of ErrFormat and ErrCheckDigit, names the value and has one line.
func checkError(t *testing.T, kind, in string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var e *ids.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s %q: error %T is not *ids.Error", kind, in, err)
	}
	if errors.Is(err, ids.ErrFormat) == errors.Is(err, ids.ErrCheckDigit) {
		t.Fatalf("%s %q: error %v wraps both or neither of ErrFormat, ErrCheckDigit", kind, in, err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, kind+" ") {
		t.Fatalf("%s %q: message %q does not start with %q", kind, in, msg, kind)
	}
	if strings.ContainsAny(msg, "\n\r") {
		t.Fatalf("%s %q: message %q spans lines", kind, in, msg)
	}
}

// digitsOf keeps the ASCII digits of s, padded with zeros or cut to n.
func digitsOf(s string, n int) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < n; i++ {
		if s[i] >= '0' && s[i] <= '9' {
			b.WriteByte(s[i])
		}
	}
	for b.Len() < n {
		b.WriteByte('0')
	}
	return b.String()
}

func FuzzValidateEID(f *testing.F) {
	for _, s := range []string{
		validEID, "89049032123451234512345678901236", verizonSDKEID, verizonFallbackEID,
		"", "8904903212345x234512345678901235", "\xff", strings.Repeat("9", 40), "０１２",
	} {
		f.Add(s)
	}
	thirtyTwoDigits := regexp.MustCompile(`^[0-9]{32}$`)
	f.Fuzz(func(t *testing.T, s string) {
		strictErr := ids.ValidateEID(s, true)
		lenientErr := ids.ValidateEID(s, false)
		checkError(t, "EID", s, strictErr)
		checkError(t, "EID", s, lenientErr)
		if (lenientErr == nil) != thirtyTwoDigits.MatchString(s) {
			t.Fatalf("ValidateEID(%q, false) = %v, disagrees with ^[0-9]{32}$", s, lenientErr)
		}
		if strictErr == nil && lenientErr != nil {
			t.Fatalf("%q passes strict but not lenient validation: %v", s, lenientErr)
		}
		if lenientErr == nil && strictErr != nil && !errors.Is(strictErr, ids.ErrCheckDigit) {
			t.Fatalf("%q: strict error %v is not a check-digit error", s, strictErr)
		}

		// Any 30 digits completed with their check digits validate strictly, and
		// changing one digit breaks the check (MOD 97-10 catches every single error).
		prefix := digitsOf(s, 30)
		eid, err := ids.EIDWithCheckDigits(prefix)
		if err != nil {
			t.Fatalf("EIDWithCheckDigits(%q): %v", prefix, err)
		}
		if err := ids.ValidateEID(eid, true); err != nil {
			t.Fatalf("ValidateEID(%q, true) after EIDWithCheckDigits: %v", eid, err)
		}
		i := len(s) % len(eid)
		changed := eid[:i] + string('0'+(eid[i]-'0'+1)%10) + eid[i+1:]
		if err := ids.ValidateEID(changed, true); !errors.Is(err, ids.ErrCheckDigit) {
			t.Fatalf("ValidateEID(%q, true) with digit %d changed = %v, want a check-digit error", changed, i+1, err)
		}
		if _, err := ids.EIDCheckDigits(s); (err == nil) != regexp.MustCompile(`^[0-9]{30}$`).MatchString(s) {
			t.Fatalf("EIDCheckDigits(%q) = %v", s, err)
		}
	})
}

func FuzzLuhn(f *testing.F) {
	for _, s := range []string{"", "0", "7992739871", "8914800000084078425", "4901542032375", "12a", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		_ = ids.Luhn(payload)
		d := ids.LuhnDigit(payload)
		full, err := ids.LuhnAppend(payload)
		if err != nil {
			checkError(t, "Luhn payload", payload, err)
			if d != 0 {
				t.Fatalf("LuhnDigit(%q) = %q but LuhnAppend fails: %v", payload, d, err)
			}
			return
		}
		if d < '0' || d > '9' || full != payload+string(d) {
			t.Fatalf("LuhnDigit(%q) = %q, LuhnAppend = %q", payload, d, full)
		}
		if !ids.Luhn(full) {
			t.Fatalf("Luhn(LuhnAppend(%q)) = false", payload)
		}
		// The Luhn check catches every single-digit error.
		i := len(payload) % len(full)
		changed := full[:i] + string('0'+(full[i]-'0'+3)%10) + full[i+1:]
		if ids.Luhn(changed) {
			t.Fatalf("Luhn(%q) = true after changing digit %d of %q", changed, i+1, full)
		}
	})
}

func FuzzValidateICCID(f *testing.F) {
	for _, s := range []string{"89148000000840784251", verizonICCID, "8914800000084078423", "891480x0000840784251", "", "8914800000084078425F"} {
		f.Add(s)
	}
	shape := regexp.MustCompile(`^[0-9]{19,20}$`)
	f.Fuzz(func(t *testing.T, s string) {
		err := ids.ValidateICCID(s)
		checkError(t, "ICCID", s, err)
		if want := shape.MatchString(s) && ids.Luhn(s); (err == nil) != want {
			t.Fatalf("ValidateICCID(%q) = %v, want valid=%v", s, err, want)
		}
		// A generated ICCID always validates.
		gen, err := ids.LuhnAppend(digitsOf(s, 19))
		if err != nil {
			t.Fatal(err)
		}
		if err := ids.ValidateICCID(gen); err != nil {
			t.Fatalf("ValidateICCID(%q) of a generated ICCID: %v", gen, err)
		}
	})
}

func FuzzValidateIMEI(f *testing.F) {
	for _, s := range []string{"490154203237518", "490154203237519", "3520990017614823", "49015420323751", "", "49-015420-323751-8"} {
		f.Add(s)
	}
	imei := regexp.MustCompile(`^[0-9]{15}$`)
	imeisv := regexp.MustCompile(`^[0-9]{16}$`)
	f.Fuzz(func(t *testing.T, s string) {
		err := ids.ValidateIMEI(s)
		checkError(t, "IMEI", s, err)
		if want := imeisv.MatchString(s) || imei.MatchString(s) && ids.Luhn(s); (err == nil) != want {
			t.Fatalf("ValidateIMEI(%q) = %v, want valid=%v", s, err, want)
		}
		gen, err := ids.LuhnAppend(digitsOf(s, 14))
		if err != nil {
			t.Fatal(err)
		}
		if err := ids.ValidateIMEI(gen); err != nil {
			t.Fatalf("ValidateIMEI(%q) of a generated IMEI: %v", gen, err)
		}
	})
}

func FuzzValidateMDN(f *testing.F) {
	for _, s := range []string{"2015550123", "12015550123", "+12015550123", "0015550123", "2011550123", "201-555-0123", ""} {
		f.Add(s)
	}
	nanp := regexp.MustCompile(`^[2-9][0-9]{2}[2-9][0-9]{6}$`)
	f.Fuzz(func(t *testing.T, s string) {
		err := ids.ValidateMDN(s)
		checkError(t, "MDN", s, err)
		if (err == nil) != nanp.MatchString(s) {
			t.Fatalf("ValidateMDN(%q) = %v, disagrees with %s", s, err, nanp)
		}
	})
}

func FuzzValidateMSISDN(f *testing.F) {
	for _, s := range []string{"12015550123", "+12015550123", "+", "++1", "2015550123", "01201555012", "+12015 550123", ""} {
		f.Add(s)
	}
	e164 := regexp.MustCompile(`^\+?[1-9][0-9]{10,14}$`)
	f.Fuzz(func(t *testing.T, s string) {
		digits, err := ids.NormalizeMSISDN(s)
		checkError(t, "MSISDN", s, err)
		if (err == nil) != e164.MatchString(s) {
			t.Fatalf("NormalizeMSISDN(%q) = %v, disagrees with %s", s, err, e164)
		}
		if err == nil && digits != strings.TrimPrefix(s, "+") {
			t.Fatalf("NormalizeMSISDN(%q) = %q", s, digits)
		}
		if (ids.ValidateMSISDN(s) == nil) != (err == nil) {
			t.Fatalf("ValidateMSISDN and NormalizeMSISDN disagree on %q", s)
		}
	})
}

func FuzzValidateAccountName(f *testing.F) {
	for _, s := range []string{"0000123456-00001", "12", "TestAccount-1", "4 3TOM HPN2 S", "", "---", strings.Repeat("0", 33)} {
		f.Add(s)
	}
	sdk := regexp.MustCompile(`^[0-9\-]{3,32}$`)
	f.Fuzz(func(t *testing.T, s string) {
		err := ids.ValidateAccountName(s)
		checkError(t, "account name", s, err)
		if (err == nil) != sdk.MatchString(s) {
			t.Fatalf("ValidateAccountName(%q) = %v, disagrees with %s", s, err, sdk)
		}
	})
}

func FuzzValidateDeviceID(f *testing.F) {
	f.Add("eid", validEID, true)
	f.Add("ICCID", verizonICCID, false)
	f.Add("meid", "", false)
	f.Fuzz(func(t *testing.T, kind, id string, strict bool) {
		_ = ids.ValidateDeviceID(kind, id, strict) // must not panic
	})
}
