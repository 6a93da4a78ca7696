package ids_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/fleetform/terraform-provider-thingspace/internal/ids"
)

// Verizon's documentation examples. None of them is a valid identifier.
const (
	verizonSDKEID      = "678912789123453456784008666456" // SDK eUICC example: 30 digits
	verizonFallbackEID = "376456789123456789123456782019" // set-fallback page: 30 digits
	verizonICCID       = "89148000000840784259"           // 20 digits, Luhn digit should be 1
)

// validEID is a 32-digit EID with valid MOD 97-10 check digits ("35").
const validEID = "89049032123451234512345678901235"

// errKind says what a table case expects: no error, a format error or a check-digit error.
type errKind int

const (
	ok errKind = iota
	format
	check
)

type tcase struct {
	in   string
	want errKind
	msg  string // the exact message, when set
}

func runTable(t *testing.T, name string, validate func(string) error, cases []tcase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(name+"/"+tc.in, func(t *testing.T) {
			err := validate(tc.in)
			switch tc.want {
			case ok:
				if err != nil {
					t.Fatalf("%s(%q) = %v, want nil", name, tc.in, err)
				}
				return
			case format:
				if !errors.Is(err, ids.ErrFormat) || errors.Is(err, ids.ErrCheckDigit) {
					t.Fatalf("%s(%q) = %v, want a format error", name, tc.in, err)
				}
			case check:
				if !errors.Is(err, ids.ErrCheckDigit) || errors.Is(err, ids.ErrFormat) {
					t.Fatalf("%s(%q) = %v, want a check-digit error", name, tc.in, err)
				}
			}
			var e *ids.Error
			if !errors.As(err, &e) {
				t.Fatalf("%s(%q) = %T, want *ids.Error", name, tc.in, err)
			}
			if e.Value != tc.in {
				t.Errorf("Error.Value = %q, want %q", e.Value, tc.in)
			}
			if tc.msg != "" && err.Error() != tc.msg {
				t.Errorf("%s(%q):\n got %s\nwant %s", name, tc.in, err, tc.msg)
			}
		})
	}
}

func TestValidateEIDStrict(t *testing.T) {
	runTable(t, "ValidateEID", func(s string) error { return ids.ValidateEID(s, true) }, []tcase{
		{in: validEID, want: ok},
		{in: "89001012012341234012345678901224", want: ok}, // the GSMA SGP.29 example
		{in: "89049032123451234512345678901236", want: check,
			msg: `EID "89049032123451234512345678901236" fails its check digits (ISO 7064 MOD 97-10: the number mod 97 is 2, expected 1)`},
		{in: "8904903212345123451234567890123", want: format,
			msg: `EID "8904903212345123451234567890123" has 31 digits; an EID has 32`},
		{in: "890490321234512345123456789012355", want: format,
			msg: `EID "890490321234512345123456789012355" has 33 digits; an EID has 32`},
		{in: verizonSDKEID, want: format,
			msg: `EID "678912789123453456784008666456" has 30 digits; an EID has 32`},
		{in: verizonFallbackEID, want: format,
			msg: `EID "376456789123456789123456782019" has 30 digits; an EID has 32`},
		{in: "", want: format, msg: `EID is empty; an EID has 32 digits`},
		{in: "8904903212345x234512345678901235", want: format,
			msg: `EID "8904903212345x234512345678901235" contains a non-digit "x" at position 14; an EID has 32 digits`},
		{in: " 89049032123451234512345678901235", want: format,
			msg: `EID " 89049032123451234512345678901235" contains a space " " at position 1; an EID has 32 digits`},
		{in: "89049032123451234512345678901235\n", want: format,
			msg: `EID "89049032123451234512345678901235\n" contains a line break "\n" at position 33; an EID has 32 digits`},
		{in: "８9049032123451234512345678901235", want: format, // a full-width digit
			msg: `EID "８9049032123451234512345678901235" contains a non-digit "８" at position 1; an EID has 32 digits`},
		{in: "8904\xff9032123451234512345678901235", want: format,
			msg: `EID "8904\xff9032123451234512345678901235" contains an invalid UTF-8 byte at position 5; an EID has 32 digits`},
		{in: strings.Repeat("9", 100), want: format,
			msg: `EID "9999999999999999999999999999999999999999"… (100 characters) has 100 digits; an EID has 32`},
	})
}

func TestValidateEIDLenient(t *testing.T) {
	runTable(t, "ValidateEID", func(s string) error { return ids.ValidateEID(s, false) }, []tcase{
		{in: validEID, want: ok},
		{in: "89049032123451234512345678901236", want: ok}, // wrong check digits are fine
		{in: "00000000000000000000000000000000", want: ok},
		// Lenient mode still wants 32 digits: Verizon's examples have 30.
		{in: verizonSDKEID, want: format, msg: `EID "678912789123453456784008666456" has 30 digits; an EID has 32`},
		{in: verizonFallbackEID, want: format},
		{in: "8904903212345123451234567890123a", want: format},
		{in: "", want: format},
	})
}

func TestEIDCheckDigits(t *testing.T) {
	for _, tc := range []struct{ prefix, want string }{
		{"890490321234512345123456789012", "35"},
		{"890010120123412340123456789012", "24"},
		{"000000000000000000000000000000", "98"}, // 0*100 mod 97 = 0
		{verizonSDKEID, ""},                      // no check digits in there: 30 digits is a prefix
	} {
		if tc.want == "" {
			cd, err := ids.EIDCheckDigits(tc.prefix)
			if err != nil {
				t.Fatalf("EIDCheckDigits(%q): %v", tc.prefix, err)
			}
			tc.want = cd
		}
		got, err := ids.EIDCheckDigits(tc.prefix)
		if err != nil || got != tc.want {
			t.Errorf("EIDCheckDigits(%q) = %q, %v; want %q", tc.prefix, got, err, tc.want)
		}
		eid, err := ids.EIDWithCheckDigits(tc.prefix)
		if err != nil || eid != tc.prefix+tc.want {
			t.Errorf("EIDWithCheckDigits(%q) = %q, %v", tc.prefix, eid, err)
		}
		if err := ids.ValidateEID(eid, true); err != nil {
			t.Errorf("ValidateEID(EIDWithCheckDigits(%q), true) = %v", tc.prefix, err)
		}
	}
	for _, tc := range []struct{ prefix, msg string }{
		{"", `EID prefix is empty; an EID prefix has 30 digits`},
		{"89049032123451234512345678901", `EID prefix "89049032123451234512345678901" has 29 digits; an EID prefix has 30`},
		{validEID, `EID prefix "89049032123451234512345678901235" has 32 digits; an EID prefix has 30`},
		{"89049032123451234512345678901-", `EID prefix "89049032123451234512345678901-" contains a non-digit "-" at position 30; an EID prefix has 30 digits`},
	} {
		if _, err := ids.EIDWithCheckDigits(tc.prefix); err == nil || err.Error() != tc.msg {
			t.Errorf("EIDWithCheckDigits(%q) error:\n got %v\nwant %s", tc.prefix, err, tc.msg)
		}
	}
}

func TestValidateICCID(t *testing.T) {
	runTable(t, "ValidateICCID", ids.ValidateICCID, []tcase{
		{in: "89148000000840784251", want: ok}, // Verizon's example with its right Luhn digit
		{in: "8914800000084078423", want: ok},  // 19 digits
		{in: "89012608823100000009", want: ok}, // another issuer
		{in: "78425989148000000842", want: ok}, // no "89" prefix required
		{in: verizonICCID, want: check,
			msg: `ICCID "89148000000840784259" fails its Luhn check digit (expected 1)`},
		{in: "78425989148000000840", want: check, // the SDK example
			msg: `ICCID "78425989148000000840" fails its Luhn check digit (expected 2)`},
		{in: "891480000008407842", want: format,
			msg: `ICCID "891480000008407842" has 18 digits; an ICCID has 19 or 20`},
		{in: "891480000008407842511", want: format,
			msg: `ICCID "891480000008407842511" has 21 digits; an ICCID has 19 or 20`},
		{in: "891480x0000840784251", want: format,
			msg: `ICCID "891480x0000840784251" contains a non-digit "x" at position 7; an ICCID has 19 or 20 digits`},
		{in: "8914800000084078425F", want: format}, // hex "F" filler as some SIM tools print
		{in: "", want: format, msg: `ICCID is empty; an ICCID has 19 or 20 digits`},
	})
}

func TestValidateIMEI(t *testing.T) {
	runTable(t, "ValidateIMEI", ids.ValidateIMEI, []tcase{
		{in: "490154203237518", want: ok},
		{in: "352099001761481", want: ok},
		{in: "3520990017614823", want: ok}, // IMEISV: no check digit
		{in: "490154203237519", want: check,
			msg: `IMEI "490154203237519" fails its Luhn check digit (expected 8)`},
		{in: "49015420323751", want: format,
			msg: `IMEI "49015420323751" has 14 digits; an IMEI has 15, the last a Luhn check digit (8 for these 14), or 16 for an IMEISV`},
		{in: "4901542032375", want: format,
			msg: `IMEI "4901542032375" has 13 digits; an IMEI has 15 (16 for an IMEISV)`},
		{in: "49015420323751800", want: format},
		{in: "49-015420-323751-8", want: format,
			msg: `IMEI "49-015420-323751-8" contains a non-digit "-" at position 3; an IMEI has 15 digits (16 for an IMEISV)`},
		{in: "", want: format},
	})
}

func TestValidateMDN(t *testing.T) {
	runTable(t, "ValidateMDN", ids.ValidateMDN, []tcase{
		{in: "2015550123", want: ok},
		{in: "9085551234", want: ok},
		{in: "12015550123", want: format,
			msg: `MDN "12015550123" has 11 digits; an MDN has 10, without the country code 1 (2015550123)`},
		{in: "+12015550123", want: format,
			msg: `MDN "+12015550123" starts with "+"; an MDN has 10 digits without the country code, e.g. 2015550123`},
		{in: "201555012", want: format, msg: `MDN "201555012" has 9 digits; an MDN has 10`},
		{in: "0015550123", want: format, msg: `MDN "0015550123" has area code 001; a US area code starts with 2 to 9`},
		{in: "2011550123", want: format, msg: `MDN "2011550123" has exchange code 155; a US exchange code starts with 2 to 9`},
		{in: "201-555-0123", want: format,
			msg: `MDN "201-555-0123" contains a non-digit "-" at position 4; an MDN has 10 digits, e.g. 2015550123`},
		{in: "", want: format},
	})
}

func TestValidateMSISDN(t *testing.T) {
	runTable(t, "ValidateMSISDN", ids.ValidateMSISDN, []tcase{
		{in: "12015550123", want: ok},
		{in: "+12015550123", want: ok},
		{in: "447700900123", want: ok},
		{in: "123456789012345", want: ok},
		{in: "2015550123", want: format,
			msg: `MSISDN "2015550123" has 10 digits; an MSISDN has 11 to 15 (country code included)`},
		{in: "+1234567890123456", want: format,
			msg: `MSISDN "+1234567890123456" has 16 digits; an MSISDN has 11 to 15 (country code included)`},
		{in: "+12015 550123", want: format,
			msg: `MSISDN "+12015 550123" contains a space " " at position 7; an MSISDN has 11 to 15 digits with an optional leading "+", e.g. +12015550123`},
		{in: "++12015550123", want: format,
			msg: `MSISDN "++12015550123" contains a non-digit "+" at position 2; an MSISDN has 11 to 15 digits with an optional leading "+", e.g. +12015550123`},
		{in: "01201555012", want: format,
			msg: `MSISDN "01201555012" starts with 0; an E.164 number starts with its country code, e.g. 1 for the US`},
		{in: "+", want: format,
			msg: `MSISDN "+" has no digits; an MSISDN has 11 to 15 digits with an optional leading "+", e.g. +12015550123`},
		{in: "", want: format},
	})
	if got, err := ids.NormalizeMSISDN("+12015550123"); err != nil || got != "12015550123" {
		t.Errorf("NormalizeMSISDN(+12015550123) = %q, %v", got, err)
	}
}

func TestValidateAccountName(t *testing.T) {
	runTable(t, "ValidateAccountName", ids.ValidateAccountName, []tcase{
		{in: "0000123456-00001", want: ok},
		{in: "0242078689-00001", want: ok},
		{in: "123", want: ok},
		{in: "---", want: ok}, // the SDK pattern allows it; ThingSpace answers AccountNotFound
		{in: strings.Repeat("0", 32), want: ok},
		{in: "12", want: format, msg: `account name "12" has 2 characters; an account name has 3 to 32`},
		{in: strings.Repeat("0", 33), want: format},
		{in: "TestAccount-1", want: format,
			msg: `account name "TestAccount-1" contains "T" at position 1; an account name has only digits and hyphens, e.g. 0000123456-00001`},
		{in: "4 3TOM HPN2 S", want: format, // a doc example
			msg: `account name "4 3TOM HPN2 S" contains a space " " at position 2; an account name has only digits and hyphens, e.g. 0000123456-00001`},
		{in: "0000123456_00001", want: format},
		{in: "", want: format, msg: `account name is empty; an account name has only digits and hyphens, e.g. 0000123456-00001`},
	})
}

func TestLuhn(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"79927398713", true},
		{"79927398710", false},
		{"490154203237518", true},
		{"89148000000840784251", true},
		{verizonICCID, false},
		{"00", true},
		{"0", false}, // a check digit alone proves nothing
		{"", false},
		{"7992739871x", false},
		{"18", true},
	} {
		if got := ids.Luhn(tc.in); got != tc.want {
			t.Errorf("Luhn(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct {
		payload string
		want    byte
	}{
		{"7992739871", '3'},
		{"49015420323751", '8'},
		{"8914800000084078425", '1'},
		{"0", '0'},
		{"1", '8'},
		{"", 0},
		{"12a", 0},
	} {
		if got := ids.LuhnDigit(tc.payload); got != tc.want {
			t.Errorf("LuhnDigit(%q) = %q, want %q", tc.payload, got, tc.want)
		}
	}
	if got, err := ids.LuhnAppend("8914800000084078425"); err != nil || got != "89148000000840784251" {
		t.Errorf("LuhnAppend = %q, %v", got, err)
	}
	if _, err := ids.LuhnAppend("89148-"); err == nil || !errors.Is(err, ids.ErrFormat) {
		t.Errorf("LuhnAppend(89148-) error = %v, want a format error", err)
	}
	if _, err := ids.LuhnAppend(""); err == nil {
		t.Error("LuhnAppend(\"\") succeeded")
	}
}

func TestValidateDeviceID(t *testing.T) {
	for _, tc := range []struct {
		kind, id string
		strict   bool
		wantErr  bool
	}{
		{"eid", validEID, true, false},
		{"Eid", "89049032123451234512345678901236", false, false},
		{"EID", "89049032123451234512345678901236", true, true},
		{"iccId", "89148000000840784251", false, false},
		{"ICCID", verizonICCID, false, true},
		{"Imei", "490154203237518", false, false},
		{"mdn", "2015550123", false, false},
		{"msisdn", "+12015550123", false, false},
		{"meid", "A0000000002329", false, false},
		{"esn", "", false, true},
	} {
		err := ids.ValidateDeviceID(tc.kind, tc.id, tc.strict)
		if (err != nil) != tc.wantErr {
			t.Errorf("ValidateDeviceID(%q, %q, %v) = %v, wantErr %v", tc.kind, tc.id, tc.strict, err, tc.wantErr)
		}
	}
}

// A plan over 10,000 devices validates 10,000 EIDs and ICCIDs at plan time.
func BenchmarkValidateEIDStrict(b *testing.B) {
	for b.Loop() {
		if err := ids.ValidateEID(validEID, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateICCID(b *testing.B) {
	for b.Loop() {
		if err := ids.ValidateICCID("89148000000840784251"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEIDWithCheckDigits(b *testing.B) {
	for b.Loop() {
		if _, err := ids.EIDWithCheckDigits("890490321234512345123456789012"); err != nil {
			b.Fatal(err)
		}
	}
}
