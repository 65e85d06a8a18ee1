// Command goprobe prints, as JSON, what a Go program's two CPU feature readers decided:
// golang.org/x/sys/cpu's X86 and ARM64 fields (by lower-case name without "Has"), and the TLS 1.3 suite a default
// crypto/tls client and server negotiate, which follows the runtime's internal/cpu: without AES-NI and
// PCLMULQDQ the client puts ChaCha20-Poly1305 first.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"math/big"
	"net"
	"os"
	"reflect"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/cpu"
)

func hasFields(features any) map[string]bool {
	out := map[string]bool{}
	v := reflect.ValueOf(features)
	for i := 0; i < v.NumField(); i++ {
		name := v.Type().Field(i).Name
		if strings.HasPrefix(name, "Has") {
			out[strings.ToLower(strings.TrimPrefix(name, "Has"))] = v.Field(i).Bool()
		}
	}
	return out
}

func tls13Suite() (string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	tmpl := x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"probe"}}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	if err != nil {
		return "", err
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	a, b := net.Pipe()
	server := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	client := tls.Client(b, &tls.Config{InsecureSkipVerify: true, ServerName: "probe", MinVersion: tls.VersionTLS13})
	done := make(chan error, 1)
	go func() { done <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		return "", err
	}
	if err := <-done; err != nil {
		return "", err
	}
	return tls.CipherSuiteName(client.ConnectionState().CipherSuite), nil
}

func main() {
	suite, err := tls13Suite()
	if err != nil {
		suite = "error: " + err.Error()
	}
	out := map[string]any{"goVersion": runtime.Version(), "goarch": runtime.GOARCH, "xsys": hasFields(cpu.X86),
		"xsysArm64": hasFields(cpu.ARM64), "tls13Suite": suite}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(1)
	}
}
