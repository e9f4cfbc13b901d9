// Command tokens writes a pondbench query file: one line per user,
// "token=<JWT>" with sub "u<i>", for `pondbench --query-file` against a
// standalone server that verifies JWTs (auth.jwt.* in its configuration).
//
//	go run ./bench/tokens -n 5000 -alg HS256 -secret S > hs.txt
//	go run ./bench/tokens -n 5000 -alg RS256 -key private.pem -out rs.txt
//
// Each user gets one token, so the server's connections-per-user bound is
// never reached by a run with as many connections as lines.
package main

import (
	"bufio"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "tokens:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("tokens", flag.ContinueOnError)
	n := fs.Int("n", 1000, "tokens (users u0 .. u<n-1>)")
	alg := fs.String("alg", "HS256", "HS256 or RS256")
	secret := fs.String("secret", "", "HS256: the server's auth.jwt.hmac_secret")
	keyFile := fs.String("key", "", "RS256: PEM private key (PKCS#8 or PKCS#1, e.g. from openssl genpkey)")
	ttl := fs.Duration("ttl", 2*time.Hour, "tokens expire this long from now")
	param := fs.String("param", "token", "query parameter the token goes in")
	out := fs.String("out", "", "write here instead of stdout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 {
		return errors.New("-n must be at least 1")
	}
	var method jwt.SigningMethod
	var key any
	switch *alg {
	case "HS256":
		if *secret == "" {
			return errors.New("HS256 needs -secret")
		}
		method, key = jwt.SigningMethodHS256, []byte(*secret)
	case "RS256":
		if *keyFile == "" {
			return errors.New("RS256 needs -key")
		}
		k, err := loadRSAKey(*keyFile)
		if err != nil {
			return err
		}
		method, key = jwt.SigningMethodRS256, k
	default:
		return fmt.Errorf("-alg %q: HS256 or RS256", *alg)
	}
	w := stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	exp := time.Now().Add(*ttl).Unix()
	for i := 0; i < *n; i++ {
		tok, err := jwt.NewWithClaims(method, jwt.MapClaims{"sub": "u" + strconv.Itoa(i), "exp": exp}).SignedString(key)
		if err != nil {
			return err
		}
		fmt.Fprintf(bw, "%s=%s\n", *param, tok)
	}
	return bw.Flush()
}

func loadRSAKey(path string) (any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	if k, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	return nil, fmt.Errorf("%s: not a PKCS#8 or PKCS#1 private key", path)
}
