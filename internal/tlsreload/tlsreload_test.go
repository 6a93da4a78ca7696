package tlsreload

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func writePair(t *testing.T, certFile, keyFile string, serial int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "relay.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func serial(t *testing.T, c *Certificate) int64 {
	t.Helper()
	got, err := c.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	return got.Leaf.SerialNumber.Int64()
}

// A renewed pair is served after Reload; a broken renewal (a key that does not match, a file
// half written) is refused and the pair served so far stays.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	cf, kf := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writePair(t, cf, kf, 1)
	c, err := Load(cf, kf)
	if err != nil {
		t.Fatal(err)
	}
	if s := serial(t, c); s != 1 {
		t.Fatalf("serial %d, want 1", s)
	}
	writePair(t, cf, kf, 2)
	leaf, err := c.Reload()
	if err != nil || leaf.SerialNumber.Int64() != 2 || serial(t, c) != 2 {
		t.Fatalf("after renewal: %v, serving %d", err, serial(t, c))
	}
	other := filepath.Join(dir, "other")
	writePair(t, other+".crt", other+".key", 3)
	key3, _ := os.ReadFile(other + ".key")
	os.WriteFile(kf, key3, 0o600) // the key of another certificate
	if _, err := c.Reload(); err == nil {
		t.Fatal("a mismatched pair was accepted")
	}
	os.WriteFile(cf, []byte("-----BEGIN CERTIFICATE-----\nMIIB"), 0o600)
	if _, err := c.Reload(); err == nil {
		t.Fatal("a truncated certificate was accepted")
	}
	if s := serial(t, c); s != 2 {
		t.Fatalf("after failed reloads: serving %d, want the last good pair (2)", s)
	}
	if _, err := Load(cf, kf); err == nil {
		t.Fatal("Load accepted a broken pair")
	}
}
