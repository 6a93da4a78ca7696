// Package tlsreload serves a certificate and key pair from files that can be replaced while a
// server runs (a renewed certificate): Reload re-reads them, and every TLS handshake after it
// presents the new pair. Connections already open keep theirs.
package tlsreload

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync"
	"time"
)

// Certificate is a certificate and key pair loaded from two PEM files.
type Certificate struct {
	certFile, keyFile string

	mu   sync.RWMutex
	cert *tls.Certificate
}

// Load reads the pair once; it fails when the files do not hold a matching pair.
func Load(certFile, keyFile string) (*Certificate, error) {
	c := &Certificate{certFile: certFile, keyFile: keyFile}
	if _, err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads the files again. On error the pair served so far stays (a half-written renewal
// must not take the listener down); the caller logs it and reloads again later. It returns the
// new leaf certificate.
func (c *Certificate) Reload() (*x509.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading %s and %s: %w", c.certFile, c.keyFile, err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parsing %s: %w", c.certFile, err)
		}
		pair.Leaf = leaf
	}
	c.mu.Lock()
	c.cert = &pair
	c.mu.Unlock()
	return leaf, nil
}

// GetCertificate is for tls.Config.GetCertificate.
func (c *Certificate) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cert, nil
}

// Describe names a certificate in a log line: subject, serial and expiry.
func Describe(leaf *x509.Certificate) string {
	return fmt.Sprintf("subject %q, serial %s, valid until %s", leaf.Subject.String(), leaf.SerialNumber, leaf.NotAfter.UTC().Format(time.RFC3339))
}
