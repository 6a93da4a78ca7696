package sim

import (
	"fmt"
	"math/big"
	"strconv"
)

// Identifier arithmetic. The check-digit math is the simulator's own, not internal/ids': the
// simulator stands for ThingSpace in the provider's tests, so it must not share the provider's
// validation (it has to be able to reject what the provider might wrongly accept).

// luhnDigit returns the Luhn check digit for the digit string s (the digit to append).
func luhnDigit(s string) byte {
	sum := 0
	double := true // the rightmost digit of s is doubled once the check digit is appended
	for i := len(s) - 1; i >= 0; i-- {
		d := int(s[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return byte('0' + (10-sum%10)%10)
}

// luhnValid reports whether s (digits only) ends with a correct Luhn check digit.
func luhnValid(s string) bool {
	if len(s) < 2 || !allDigits(s) {
		return false
	}
	return luhnDigit(s[:len(s)-1]) == s[len(s)-1]
}

// eidCheckDigits returns the two ISO 7064 MOD 97-10 check digits for a 30-digit EID prefix, so
// that the 32-digit number mod 97 == 1.
func eidCheckDigits(prefix30 string) string {
	n, _ := new(big.Int).SetString(prefix30+"00", 10)
	r := new(big.Int).Mod(n, big.NewInt(97)).Int64()
	return fmt.Sprintf("%02d", 98-r)
}

// eidValid reports whether s is 32 digits whose value mod 97 == 1.
func eidValid(s string) bool {
	if len(s) != 32 || !allDigits(s) {
		return false
	}
	n, _ := new(big.Int).SetString(s, 10)
	return new(big.Int).Mod(n, big.NewInt(97)).Int64() == 1
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// identity holds the generated identifiers of one device.
type identity struct {
	eid, imei, mdn string
	iccids         [numProfiles]string
}

// makeIdentity derives device i's identifiers from the seed-derived base numbers. Every number
// embeds i, so identifiers are unique within one inventory.
func makeIdentity(base uint64, i int) identity {
	n := uint64(i)
	var id identity
	// EID: 89 049 032 (GSMA prefix, country, issuer) + 20 digits + 2 check digits.
	prefix := fmt.Sprintf("89049032%012d%010d", (base/7)%1_000_000_000_000, (base%1_000_000_000)+n)
	id.eid = prefix + eidCheckDigits(prefix)
	// ICCID: 891480 (Verizon US) + 13 digits + Luhn = 20 digits; three per device.
	for k := 0; k < numProfiles; k++ {
		body := fmt.Sprintf("891480%06d%07d", base%1_000_000, n*numProfiles+uint64(k))
		id.iccids[k] = body + string(luhnDigit(body))
	}
	// IMEI: 8-digit TAC + 6-digit serial + Luhn. The TAC moves on every million devices.
	serial := (base%500_000 + n)
	body := fmt.Sprintf("3534920%01d%06d", (serial/1_000_000)%10, serial%1_000_000)
	id.imei = body + string(luhnDigit(body))
	// MDN: a 10-digit US number in area code 202-..; MSISDN is 1 + MDN.
	id.mdn = "2" + strconv.FormatUint(200_000_000+(base%100_000_000+n)%800_000_000, 10)
	return id
}
