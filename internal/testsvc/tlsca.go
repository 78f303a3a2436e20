package testsvc

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// certLifetime is how long a test certificate is valid; NotBefore lies an hour back so
// that a server whose clock is a little behind still accepts it.
const certLifetime = 24 * time.Hour

// TestCA is a throwaway certificate authority for TLS tests: an ECDSA P-256 key and a
// self-signed CA certificate, written as PEM files in a t.TempDir(). Issue makes server
// and client certificates signed by it. Its methods are for the test goroutine only.
type TestCA struct {
	CertFile string            // the CA certificate (PEM), e.g. a broker's cafile
	KeyFile  string            // the CA's private key (PKCS #8 PEM)
	Cert     *x509.Certificate // the CA certificate, parsed
	Pool     *x509.CertPool    // holds only Cert: RootCAs for clients, ClientCAs for servers

	key    crypto.Signer
	dir    string
	issued int // certificates issued so far, to name their files
}

// NewTestCA creates a CA valid for a day, named after the test, and writes its
// certificate and key to a new t.TempDir().
func NewTestCA(t testing.TB) *TestCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("test CA: generate key: %v", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serialNumber(t),
		Subject:               pkix.Name{CommonName: "envgate test CA " + t.Name(), Organization: []string{"envgate tests"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certLifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("test CA: create certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("test CA: parse certificate: %v", err)
	}
	ca := &TestCA{Cert: cert, Pool: x509.NewCertPool(), key: key, dir: t.TempDir()}
	ca.Pool.AddCert(cert)
	ca.CertFile, ca.KeyFile = ca.write(t, "ca", der, key)
	return ca
}

// Issue makes a certificate for commonName signed by the CA, valid for a day, with a
// new ECDSA P-256 key, and returns the paths of its certificate and key (PKCS #8) PEM
// files. A server certificate (server=true) has ExtKeyUsageServerAuth and the SANs
// 127.0.0.1 and localhost; a client certificate has ExtKeyUsageClientAuth and no SANs
// by default. Each of hosts is added as an IP SAN if it parses as an IP address, else
// as a DNS SAN.
func (ca *TestCA) Issue(t testing.TB, commonName string, server bool, hosts ...string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("issue %q: generate key: %v", commonName, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serialNumber(t),
		Subject:      pkix.Name{CommonName: commonName, Organization: []string{"envgate tests"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		hosts = append([]string{"127.0.0.1", "localhost"}, hosts...)
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		t.Fatalf("issue %q: create certificate: %v", commonName, err)
	}
	ca.issued++
	kind := "client"
	if server {
		kind = "server"
	}
	return ca.write(t, fmt.Sprintf("%s-%d", kind, ca.issued), der, key)
}

// ClientTLS returns a client configuration that trusts only the CA and, when certFile
// is not empty, presents that certificate (from Issue) to the server.
func (ca *TestCA) ClientTLS(t testing.TB, certFile, keyFile string) *tls.Config {
	t.Helper()
	cfg := &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatalf("load client certificate: %v", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg
}

// write stores a certificate and its key as <name>.crt and <name>.key in the CA's
// directory. The key file is readable by its owner only, as TLS servers expect.
func (ca *TestCA) write(t testing.TB, name string, der []byte, key crypto.Signer) (certFile, keyFile string) {
	t.Helper()
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("write %s: marshal key: %v", name, err)
	}
	certFile, keyFile = filepath.Join(ca.dir, name+".crt"), filepath.Join(ca.dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
	return certFile, keyFile
}

// serialNumber returns a random 128-bit certificate serial number (RFC 5280 §4.1.2.2
// allows up to 20 octets; positive and unique per CA).
func serialNumber(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		t.Fatalf("certificate serial number: %v", err)
	}
	return n.Add(n, big.NewInt(1))
}
