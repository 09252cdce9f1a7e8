// ESO's own template functions, as deterministic Go references for hush-template's golden tests.
// They call the libraries ESO uses (sigs.k8s.io/yaml, encoding/pem, crypto/x509, go-pkcs12,
// jwx/v2) with the argument order and output shape ESO documents; the PKCS#12 *encoders* are not
// here (random salts), hush checks those by opening the result with openssl.
package main

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"text/template"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"sigs.k8s.io/yaml"
	gopkcs12 "software.sslmate.com/src/go-pkcs12"
)

func esoFuncs() template.FuncMap {
	return template.FuncMap{
		"toYaml": func(v any) string {
			out, err := yaml.Marshal(v)
			if err != nil {
				return ""
			}
			return strings.TrimSuffix(string(out), "\n")
		},
		"fromYaml": func(s string) map[string]any {
			m := map[string]any{}
			if err := yaml.Unmarshal([]byte(s), &m); err != nil {
				m["Error"] = err.Error()
			}
			return m
		},
		"filterPEM":       filterPEM,
		"filterCertChain": filterCertChain,
		"certSANs":        certSANs,
		"pkcs12key":       func(in string) (string, error) { return pkcs12Key("", in) },
		"pkcs12keyPass":   pkcs12Key,
		"pkcs12cert":      func(in string) (string, error) { return pkcs12Cert("", in) },
		"pkcs12certPass":  pkcs12Cert,
		"rsaDecrypt":      rsaDecrypt,
		"jwkPublicKeyPem": func(j string) (string, error) {
			raw, err := jwkRaw(j)
			if err != nil {
				return "", err
			}
			der, err := x509.MarshalPKIXPublicKey(raw)
			if err != nil {
				return "", err
			}
			return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
		},
		"jwkPrivateKeyPem": func(j string) (string, error) {
			raw, err := jwkRaw(j)
			if err != nil {
				return "", err
			}
			der, err := x509.MarshalPKCS8PrivateKey(raw)
			if err != nil {
				return "", err
			}
			return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
		},
	}
}

func jwkRaw(j string) (any, error) {
	k, err := jwk.ParseKey([]byte(j))
	if err != nil {
		return nil, err
	}
	var raw any
	err = k.Raw(&raw)
	return raw, err
}

// filterPEM keeps the blocks of one type (case-insensitive); text before the first BEGIN is
// skipped, and input with no such block but trailing text is an error.
func filterPEM(typ, in string) (string, error) {
	if i := strings.Index(in, "-----BEGIN"); i >= 0 {
		in = in[i:]
	}
	rest := []byte(in)
	var out []byte
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if strings.EqualFold(b.Type, typ) {
			out = append(out, pem.EncodeToMemory(b)...)
		}
	}
	if len(out) == 0 && len(rest) != 0 {
		return "", errors.New("junk")
	}
	return string(out), nil
}

// chain orders certificates leaf first by AuthorityKeyId -> SubjectKeyId links.
func chain(in []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		b, rest := pem.Decode(in)
		in = rest
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	parent := make([]int, len(certs))
	isParent := make([]bool, len(certs))
	for i := range certs {
		parent[i] = -1
		for j := range certs {
			if i != j && bytes.Equal(certs[i].AuthorityKeyId, certs[j].SubjectKeyId) {
				parent[i] = j
				isParent[j] = true
				break
			}
		}
	}
	leaf := -1
	for i := range certs {
		if !isParent[i] {
			if leaf >= 0 {
				return nil, errors.New("disjunct")
			}
			leaf = i
		}
	}
	if leaf < 0 {
		return nil, errors.New("no leaf")
	}
	var out []*x509.Certificate
	for n := leaf; n >= 0; n = parent[n] {
		if len(out) == len(certs) {
			return nil, errors.New("cycle")
		}
		out = append(out, certs[n])
	}
	return out, nil
}

func certPEM(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

func isRoot(c *x509.Certificate) bool {
	return c.AuthorityKeyId == nil || bytes.Equal(c.AuthorityKeyId, c.SubjectKeyId)
}

func filterCertChain(kind, in string) (string, error) {
	certs, err := chain([]byte(in))
	if err != nil {
		return "", err
	}
	switch kind {
	case "leaf":
		c := certs[0]
		if c.AuthorityKeyId != nil && !bytes.Equal(c.AuthorityKeyId, c.SubjectKeyId) {
			return certPEM(c), nil
		}
	case "intermediate":
		var out string
		for _, c := range certs[min(1, len(certs)):] {
			if isRoot(c) {
				break
			}
			out += certPEM(c)
		}
		return out, nil
	case "root":
		if c := certs[len(certs)-1]; isRoot(c) {
			return certPEM(c), nil
		}
	}
	return "", nil
}

func certSANs(in string) ([]string, error) {
	if i := strings.Index(in, "-----BEGIN"); i >= 0 {
		in = in[i:]
	}
	b, _ := pem.Decode([]byte(in))
	if b == nil {
		return nil, errors.New("no PEM block")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, err
	}
	out := append([]string{}, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	out = append(out, c.EmailAddresses...)
	for _, u := range c.URIs {
		out = append(out, u.String())
	}
	return out, nil
}

func pkcs12Key(pass, in string) (string, error) {
	key, _, _, err := gopkcs12.DecodeChain([]byte(in), pass)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

// pkcs12Cert returns the certificate and CA certificates, ordered leaf first when they form one
// chain, else in file order.
func pkcs12Cert(pass, in string) (string, error) {
	_, cert, cas, err := gopkcs12.DecodeChain([]byte(in), pass)
	if err != nil {
		return "", err
	}
	all := certPEM(cert)
	for _, c := range cas {
		all += certPEM(c)
	}
	ordered, err := chain([]byte(all))
	if err != nil {
		return all, nil
	}
	var out string
	for _, c := range ordered {
		out += certPEM(c)
	}
	return out, nil
}

// rsaDecrypt(scheme, hash, ciphertext, keyPEM): "None" passes the input through; "RSA-OAEP"
// decrypts with the named hash (SHA1, SHA512, anything else SHA-256) and no label.
func rsaDecrypt(scheme, hash, in, keyPEM string) (string, error) {
	switch scheme {
	case "None":
		return in, nil
	case "RSA-OAEP":
	default:
		return "", errors.New("unsupported scheme")
	}
	b, _ := pem.Decode([]byte(keyPEM))
	if b == nil {
		return "", errors.New("no PEM block")
	}
	var key any
	var err error
	if key, err = x509.ParsePKCS1PrivateKey(b.Bytes); err != nil {
		if key, err = x509.ParsePKCS8PrivateKey(b.Bytes); err != nil {
			if key, err = x509.ParseECPrivateKey(b.Bytes); err != nil {
				return "", err
			}
		}
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return "", errors.New("not RSA")
	}
	h := crypto.SHA256
	switch hash {
	case "SHA1":
		h = crypto.SHA1
	case "SHA512":
		h = crypto.SHA512
	}
	out, err := rsa.DecryptOAEP(h.New(), nil, rk, []byte(in), nil)
	return string(out), err
}
