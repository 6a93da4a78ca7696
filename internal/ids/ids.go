// Package ids parses and validates the identifiers ThingSpace uses for devices and
// accounts: EID, ICCID, IMEI, MDN, MSISDN and account names.
//
// The provider calls these functions from plan-time validators, so every error message
// names the identifier, quotes the value and says exactly what is wrong, in a sentence
// that reads well as a Terraform diagnostic. Errors wrap ErrFormat or ErrCheckDigit, so a
// caller can downgrade a failed check digit to a warning:
//
//	if err := ids.ValidateICCID(v); errors.Is(err, ids.ErrCheckDigit) {
//		// warn
//	}
//
// The package is pure Go and imports nothing outside the standard library.
package ids

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Lengths of the identifiers, in digits (or characters for account names).
const (
	EIDLength            = 32 // GSMA SGP.29: 32 decimal digits, the last two ISO 7064 MOD 97-10 check digits
	ICCIDMinLength       = 19 // ITU-T E.118, the last digit a Luhn check digit
	ICCIDMaxLength       = 20
	IMEILength           = 15 // 14 digits plus a Luhn check digit
	IMEISVLength         = 16 // IMEI software version: 14 digits plus a 2-digit SVN, no check digit
	MDNLength            = 10 // a US number without the country code
	MSISDNMinLength      = 11 // E.164: country code plus national number
	MSISDNMaxLength      = 15
	AccountNameMinLength = 3 // the SDK's ^[0-9\-]{3,32}$
	AccountNameMaxLength = 32
)

// ErrFormat is wrapped by every error about an identifier's characters or length.
var ErrFormat = errors.New("malformed identifier")

// ErrCheckDigit is wrapped by every error about an identifier whose characters and length
// are right but whose check digits are wrong.
var ErrCheckDigit = errors.New("check digit mismatch")

// Error describes an identifier that failed validation. Its message is complete on its
// own; Kind and Value let a caller build a different one.
type Error struct {
	Kind  string // "EID", "ICCID", "IMEI", "MDN", "MSISDN" or "account name"
	Value string // the value as given
	// Reason completes the sentence that starts with Kind and the quoted Value, e.g.
	// "has 31 digits; an EID has 32".
	Reason string
	// CheckDigit is true when only the check digits are wrong.
	CheckDigit bool
}

// Error returns `<Kind> "<Value>" <Reason>`, with a long Value shortened.
func (e *Error) Error() string {
	if e.Value == "" {
		return e.Kind + " " + e.Reason
	}
	return fmt.Sprintf("%s %s %s", e.Kind, quote(e.Value), e.Reason)
}

// Unwrap returns ErrCheckDigit or ErrFormat.
func (e *Error) Unwrap() error {
	if e.CheckDigit {
		return ErrCheckDigit
	}
	return ErrFormat
}

// maxQuoted is the longest value an error message quotes in full.
const maxQuoted = 48

// quote quotes s for a message, shortening values that are too long to read.
func quote(s string) string {
	if utf8.RuneCountInString(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	r := []rune(s)
	return strconv.Quote(string(r[:maxQuoted-8])) + "…" + fmt.Sprintf(" (%d characters)", len(r))
}

func formatErr(kind, value, format string, args ...any) error {
	return &Error{Kind: kind, Value: value, Reason: fmt.Sprintf(format, args...)}
}

func checkErr(kind, value, format string, args ...any) error {
	return &Error{Kind: kind, Value: value, Reason: fmt.Sprintf(format, args...), CheckDigit: true}
}

// firstNonDigit returns the first rune of s that is not an ASCII digit and its 1-based
// position in runes, or ok == false when s has only digits.
func firstNonDigit(s string) (r rune, pos int, ok bool) {
	pos = 0
	for _, c := range s {
		pos++
		if c < '0' || c > '9' {
			return c, pos, true
		}
	}
	return 0, 0, false
}

// describeRune names a rune for a message: quoted, with a word for the invisible ones.
func describeRune(r rune) string {
	switch r {
	case ' ':
		return `a space " "`
	case '\t':
		return `a tab "\t"`
	case '\n', '\r':
		return "a line break " + strconv.Quote(string(r))
	case utf8.RuneError:
		return "an invalid UTF-8 byte"
	}
	return strconv.Quote(string(r))
}

// describeNonDigit names a rune that should have been a digit.
func describeNonDigit(r rune) string {
	switch r {
	case ' ', '\t', '\n', '\r', utf8.RuneError:
		return describeRune(r)
	}
	return "a non-digit " + describeRune(r)
}

// digitsOnly validates that s is non-empty and all ASCII digits, naming kind in the error;
// want completes the message.
func digitsOnly(kind, s, want string) error {
	if s == "" {
		return formatErr(kind, "", "is empty; %s", want)
	}
	if r, pos, bad := firstNonDigit(s); bad {
		return formatErr(kind, s, "contains %s at position %d; %s", describeNonDigit(r), pos, want)
	}
	return nil
}

// plural returns "1 digit" or "n digits".
func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

// ---------------------------------------------------------------------------------------
// Luhn

// Luhn reports whether s is a non-empty string of ASCII digits whose last digit is its
// Luhn (ISO/IEC 7812-1 mod 10) check digit. ICCIDs and IMEIs end with one.
func Luhn(s string) bool {
	if len(s) < 2 {
		return false
	}
	sum, ok := luhnSum(s, false)
	return ok && sum%10 == 0
}

// LuhnDigit returns the Luhn check digit ('0'..'9') to append to payload. It returns 0
// when payload is empty or has anything but ASCII digits; generators should prefer
// LuhnAppend, which says so with an error.
func LuhnDigit(payload string) byte {
	if payload == "" {
		return 0
	}
	sum, ok := luhnSum(payload, true)
	if !ok {
		return 0
	}
	return byte('0' + (10-sum%10)%10)
}

// LuhnAppend returns payload followed by its Luhn check digit, e.g. for generating an
// ICCID from its first 19 digits or an IMEI from its first 14.
func LuhnAppend(payload string) (string, error) {
	if err := digitsOnly("Luhn payload", payload, "a Luhn payload has only digits"); err != nil {
		return "", err
	}
	return payload + string(LuhnDigit(payload)), nil
}

// luhnSum returns the Luhn sum of s. When payload is true, s has no check digit yet, so
// doubling starts with its last digit.
func luhnSum(s string, payload bool) (int, bool) {
	sum := 0
	double := payload
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum, true
}

// ---------------------------------------------------------------------------------------
// EID

// ValidateEID checks that s is an eUICC identifier: exactly 32 ASCII digits. When strict
// is true it also checks the ISO 7064 MOD 97-10 check digits of GSMA SGP.29 (the whole
// number mod 97 is 1). Lenient mode exists because identifiers in Verizon's documentation
// and in some test inventories do not carry valid check digits.
func ValidateEID(s string, strict bool) error {
	const want = "an EID has 32 digits"
	if err := digitsOnly("EID", s, want); err != nil {
		return err
	}
	if len(s) != EIDLength {
		return formatErr("EID", s, "has %s; an EID has %d", plural(len(s), "digit"), EIDLength)
	}
	if !strict {
		return nil
	}
	if m := mod97(s); m != 1 {
		// No "expected check digits" hint: a failed check more often means a mistyped
		// digit elsewhere, and changing the last two would hide it.
		return checkErr("EID", s, "fails its check digits (ISO 7064 MOD 97-10: the number mod 97 is %d, expected 1)", m)
	}
	return nil
}

// EIDCheckDigits returns the two ISO 7064 MOD 97-10 check digits ("02" to "98") that
// complete a 30-digit EID prefix, so that the 32-digit number mod 97 is 1.
func EIDCheckDigits(prefix30 string) (string, error) {
	const want = "an EID prefix has 30 digits"
	if err := digitsOnly("EID prefix", prefix30, want); err != nil {
		return "", err
	}
	if len(prefix30) != EIDLength-2 {
		return "", formatErr("EID prefix", prefix30, "has %s; an EID prefix has %d", plural(len(prefix30), "digit"), EIDLength-2)
	}
	return mustEIDCheckDigits(prefix30), nil
}

// EIDWithCheckDigits returns the 30-digit prefix followed by its two check digits: a
// 32-digit EID that ValidateEID accepts in strict mode.
func EIDWithCheckDigits(prefix30 string) (string, error) {
	cd, err := EIDCheckDigits(prefix30)
	if err != nil {
		return "", err
	}
	return prefix30 + cd, nil
}

// mustEIDCheckDigits computes the check digits of a prefix already known to be digits.
func mustEIDCheckDigits(prefix string) string {
	c := 98 - mod97(prefix)*100%97 // in 2..98: (prefix·100 + c) mod 97 == 1
	return string([]byte{byte('0' + c/10), byte('0' + c%10)})
}

// mod97 returns the decimal number s (ASCII digits only) modulo 97.
func mod97(s string) int {
	m := 0
	for i := 0; i < len(s); i++ {
		m = (m*10 + int(s[i]-'0')) % 97
	}
	return m
}

// ---------------------------------------------------------------------------------------
// ICCID

// ValidateICCID checks that s is a SIM profile's integrated circuit card identifier: 19
// or 20 ASCII digits, the last a Luhn check digit (ITU-T E.118). It does not require the
// "89" telecom prefix.
func ValidateICCID(s string) error {
	const want = "an ICCID has 19 or 20 digits"
	if err := digitsOnly("ICCID", s, want); err != nil {
		return err
	}
	if len(s) < ICCIDMinLength || len(s) > ICCIDMaxLength {
		return formatErr("ICCID", s, "has %s; an ICCID has %d or %d", plural(len(s), "digit"), ICCIDMinLength, ICCIDMaxLength)
	}
	if !Luhn(s) {
		return checkErr("ICCID", s, "fails its Luhn check digit (expected %c)", LuhnDigit(s[:len(s)-1]))
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// IMEI

// ValidateIMEI checks that s is a device's IMEI: 15 ASCII digits, the last a Luhn check
// digit, or a 16-digit IMEISV, which has no check digit.
func ValidateIMEI(s string) error {
	const want = "an IMEI has 15 digits (16 for an IMEISV)"
	if err := digitsOnly("IMEI", s, want); err != nil {
		return err
	}
	switch len(s) {
	case IMEISVLength:
		return nil
	case IMEILength:
		if !Luhn(s) {
			return checkErr("IMEI", s, "fails its Luhn check digit (expected %c)", LuhnDigit(s[:len(s)-1]))
		}
		return nil
	case IMEILength - 1:
		return formatErr("IMEI", s, "has 14 digits; an IMEI has 15, the last a Luhn check digit (%c for these 14), or 16 for an IMEISV", LuhnDigit(s))
	}
	return formatErr("IMEI", s, "has %s; an IMEI has %d (%d for an IMEISV)", plural(len(s), "digit"), IMEILength, IMEISVLength)
}

// ---------------------------------------------------------------------------------------
// MDN and MSISDN

// ValidateMDN checks that s is a mobile directory number: a 10-digit US (NANP) number
// without the country code, whose area code and exchange start with 2 to 9.
func ValidateMDN(s string) error {
	const want = "an MDN has 10 digits, e.g. 2015550123"
	if err := digitsOnly("MDN", s, want); err != nil {
		if strings.HasPrefix(s, "+") {
			return formatErr("MDN", s, "starts with \"+\"; an MDN has 10 digits without the country code, e.g. 2015550123")
		}
		return err
	}
	if len(s) == MDNLength+1 && s[0] == '1' {
		return formatErr("MDN", s, "has 11 digits; an MDN has 10, without the country code 1 (%s)", s[1:])
	}
	if len(s) != MDNLength {
		return formatErr("MDN", s, "has %s; an MDN has %d", plural(len(s), "digit"), MDNLength)
	}
	if s[0] < '2' {
		return formatErr("MDN", s, "has area code %s; a US area code starts with 2 to 9", s[:3])
	}
	if s[3] < '2' {
		return formatErr("MDN", s, "has exchange code %s; a US exchange code starts with 2 to 9", s[3:6])
	}
	return nil
}

// ValidateMSISDN checks that s is an E.164 number: 11 to 15 ASCII digits, the first not
// 0, with an optional leading "+".
func ValidateMSISDN(s string) error {
	_, err := NormalizeMSISDN(s)
	return err
}

// NormalizeMSISDN validates s like ValidateMSISDN and returns its digits without the "+".
func NormalizeMSISDN(s string) (string, error) {
	const want = "an MSISDN has 11 to 15 digits with an optional leading \"+\", e.g. +12015550123"
	digits := strings.TrimPrefix(s, "+")
	if digits == "" {
		if s == "" {
			return "", formatErr("MSISDN", "", "is empty; %s", want)
		}
		return "", formatErr("MSISDN", s, "has no digits; %s", want)
	}
	if r, pos, bad := firstNonDigit(digits); bad {
		// Report the position as the user wrote the value, "+" included.
		pos += len(s) - len(digits)
		return "", formatErr("MSISDN", s, "contains %s at position %d; %s", describeNonDigit(r), pos, want)
	}
	if len(digits) < MSISDNMinLength || len(digits) > MSISDNMaxLength {
		return "", formatErr("MSISDN", s, "has %s; an MSISDN has %d to %d (country code included)", plural(len(digits), "digit"), MSISDNMinLength, MSISDNMaxLength)
	}
	if digits[0] == '0' {
		return "", formatErr("MSISDN", s, "starts with 0; an E.164 number starts with its country code, e.g. 1 for the US")
	}
	return digits, nil
}

// ---------------------------------------------------------------------------------------
// Account name

// ValidateAccountName checks that s is a ThingSpace account name as the API models define
// it (^[0-9\-]{3,32}$), usually "##########-#####" such as "0000123456-00001". Leading
// zeros are part of the name: callers must keep s as a string.
func ValidateAccountName(s string) error {
	const want = "an account name has only digits and hyphens, e.g. 0000123456-00001"
	if s == "" {
		return formatErr("account name", "", "is empty; %s", want)
	}
	pos := 0
	for _, c := range s {
		pos++
		if (c < '0' || c > '9') && c != '-' {
			return formatErr("account name", s, "contains %s at position %d; %s", describeRune(c), pos, want)
		}
	}
	if len(s) < AccountNameMinLength || len(s) > AccountNameMaxLength {
		return formatErr("account name", s, "has %s; an account name has %d to %d", plural(len(s), "character"), AccountNameMinLength, AccountNameMaxLength)
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// By kind

// Device identifier kinds as ThingSpace spells them in requests (lowercase). Responses
// may use other cases; ValidateDeviceID ignores case.
const (
	KindEID    = "eid"
	KindICCID  = "iccid"
	KindIMEI   = "imei"
	KindMDN    = "mdn"
	KindMSISDN = "msisdn"
)

// ValidateDeviceID validates id as a device identifier of the given kind (case ignored).
// strictEID selects ValidateEID's mode. Kinds this package does not know (ESN, MEID,
// IMSI, ...) are accepted when id is non-empty.
func ValidateDeviceID(kind, id string, strictEID bool) error {
	switch strings.ToLower(kind) {
	case KindEID:
		return ValidateEID(id, strictEID)
	case KindICCID:
		return ValidateICCID(id)
	case KindIMEI:
		return ValidateIMEI(id)
	case KindMDN:
		return ValidateMDN(id)
	case KindMSISDN:
		return ValidateMSISDN(id)
	}
	if id == "" {
		name := strings.ToUpper(kind)
		if name == "" {
			name = "device ID"
		}
		return formatErr(name, "", "is empty")
	}
	return nil
}
