package testsvc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"os"
	"slices"
	"testing"
	"time"
)

// readCert parses the single PEM certificate in path.
func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, rest := pem.Decode(raw)
	if block == nil || block.Type != "CERTIFICATE" || len(rest) != 0 {
		t.Fatalf("%s: want exactly one CERTIFICATE block", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

func TestCAIssue(t *testing.T) {
	ca := NewTestCA(t)
	if c := readCert(t, ca.CertFile); !c.IsCA || !c.Equal(ca.Cert) {
		t.Errorf("CA certificate file: IsCA %v, same as Cert %v", c.IsCA, c.Equal(ca.Cert))
	}
	if k, ok := ca.Cert.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("CA key: %T, want ECDSA P-256", ca.Cert.PublicKey)
	}

	serverFile, serverKey := ca.Issue(t, "broker", true, "mqtt.test", "10.0.0.7")
	server := readCert(t, serverFile)
	if !slices.Equal(server.DNSNames, []string{"localhost", "mqtt.test"}) ||
		len(server.IPAddresses) != 2 || !server.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) || !server.IPAddresses[1].Equal(net.IPv4(10, 0, 0, 7)) {
		t.Errorf("server SANs: DNS %q, IP %v; want localhost, mqtt.test and 127.0.0.1, 10.0.0.7", server.DNSNames, server.IPAddresses)
	}
	clientFile, clientKey := ca.Issue(t, "gw1", false)
	client := readCert(t, clientFile)
	if client.Subject.CommonName != "gw1" || len(client.DNSNames)+len(client.IPAddresses) != 0 {
		t.Errorf("client certificate: CN %q, SANs %q %v; want gw1 without SANs", client.Subject.CommonName, client.DNSNames, client.IPAddresses)
	}
	if serverFile == clientFile || serverKey == clientKey {
		t.Errorf("Issue reused file names: %s %s, %s %s", serverFile, serverKey, clientFile, clientKey)
	}

	verify := func(c *x509.Certificate, name string, usage x509.ExtKeyUsage) error {
		_, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool, DNSName: name, KeyUsages: []x509.ExtKeyUsage{usage}})
		return err
	}
	for _, name := range []string{"127.0.0.1", "localhost", "mqtt.test", "10.0.0.7"} {
		if err := verify(server, name, x509.ExtKeyUsageServerAuth); err != nil {
			t.Errorf("server certificate for %s: %v", name, err)
		}
	}
	if err := verify(server, "example.com", x509.ExtKeyUsageServerAuth); err == nil {
		t.Errorf("server certificate verifies for example.com")
	}
	if err := verify(client, "", x509.ExtKeyUsageClientAuth); err != nil {
		t.Errorf("client certificate: %v", err)
	}
	if err := verify(client, "", x509.ExtKeyUsageServerAuth); err == nil {
		t.Errorf("client certificate verifies for server authentication")
	}
	if _, err := client.Verify(x509.VerifyOptions{Roots: NewTestCA(t).Pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Errorf("client certificate verifies against another CA")
	}

	for _, key := range []string{ca.KeyFile, serverKey, clientKey} {
		if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("key file %s: %v, mode %v; want 0600", key, err, fi.Mode().Perm())
		}
	}
	// Each key file belongs to its certificate.
	for _, pair := range [][2]string{{ca.CertFile, ca.KeyFile}, {serverFile, serverKey}, {clientFile, clientKey}} {
		if _, err := tls.LoadX509KeyPair(pair[0], pair[1]); err != nil {
			t.Errorf("LoadX509KeyPair(%s, %s): %v", pair[0], pair[1], err)
		}
	}
}

// TestCAHandshake runs mutual TLS on a loopback connection with certificates from
// Issue and the client configuration from ClientTLS.
func TestCAHandshake(t *testing.T) {
	ca := NewTestCA(t)
	serverCert, serverKey := ca.Issue(t, "server", true)
	pair, err := tls.LoadX509KeyPair(serverCert, serverKey)
	if err != nil {
		t.Fatal(err)
	}
	serverConfig := &tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientCAs:    ca.Pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	// handshake connects a client and returns what each side reports. The server
	// writes "ok" after a successful handshake; the client reads it, which under
	// TLS 1.3 is also where it learns that the server rejected its certificate.
	handshake := func(client *tls.Config) (clientErr, serverErr error) {
		t.Helper()
		done := make(chan error, 1)
		go func() {
			c, err := l.Accept()
			if err != nil {
				done <- err
				return
			}
			defer c.Close()
			srv := tls.Server(c, serverConfig)
			if err := srv.HandshakeContext(t.Context()); err != nil {
				done <- err
				return
			}
			_, err = srv.Write([]byte("ok"))
			done <- err
		}()
		c, err := tls.Dial("tcp", l.Addr().String(), client)
		if err == nil {
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 2)
			_, err = io.ReadFull(c, buf)
		}
		return err, <-done
	}

	clientCert, clientKey := ca.Issue(t, "gw1", false)
	if cErr, sErr := handshake(ca.ClientTLS(t, clientCert, clientKey)); cErr != nil || sErr != nil {
		t.Errorf("mTLS with a certificate from the CA: client %v, server %v", cErr, sErr)
	}
	if _, sErr := handshake(ca.ClientTLS(t, "", "")); sErr == nil {
		t.Errorf("mTLS without a client certificate: server accepted")
	}
	other := NewTestCA(t)
	otherCert, otherKey := other.Issue(t, "intruder", false)
	if _, sErr := handshake(ca.ClientTLS(t, otherCert, otherKey)); sErr == nil {
		t.Errorf("mTLS with a certificate from another CA: server accepted")
	}
	if cErr, _ := handshake(other.ClientTLS(t, otherCert, otherKey)); cErr == nil {
		t.Errorf("client trusting another CA: accepted the server certificate")
	}
}
