package cluster

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/pondsocket/pondsocket/internal/protocol"
)

// A small JSON reader and writer for the envelope. Decode first checks the
// whole message with json.Valid, so the walkers below may assume valid JSON;
// walking by hand keeps keys case-sensitive (encoding/json matches struct
// fields case-insensitively, a JS receiver does not) and lets raw values
// (payload, presence, assigns) stay sub-slices of the input.

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipValue returns the index just past the valid JSON value starting at i.
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default: // number, true, false, null
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// skipString returns the index just past the string whose quote is at i.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// eachMember calls fn for every member of the valid JSON object obj (key
// unescaped, without quotes), in order (a duplicated key is reported twice; the caller keeps the last, as
// JSON.parse does).
func eachMember(obj []byte, fn func(key, val []byte) error) error {
	i := skipSpace(obj, 1)
	if obj[i] == '}' {
		return nil
	}
	for i < len(obj) {
		end := skipString(obj, i)
		key := obj[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			s, err := unquote(obj[i:end])
			if err != nil {
				return err
			}
			key = []byte(s)
		}
		i = skipSpace(obj, end)
		i = skipSpace(obj, i+1) // ':'
		vend := skipValue(obj, i)
		if err := fn(key, obj[i:vend]); err != nil {
			return err
		}
		i = skipSpace(obj, vend)
		if obj[i] == '}' {
			return nil
		}
		i = skipSpace(obj, i+1) // ','
	}
	return nil
}

// eachElement calls fn for every element of the valid JSON array arr.
func eachElement(arr []byte, fn func(val []byte) error) error {
	i := skipSpace(arr, 1)
	if arr[i] == ']' {
		return nil
	}
	for i < len(arr) {
		end := skipValue(arr, i)
		if err := fn(arr[i:end]); err != nil {
			return err
		}
		i = skipSpace(arr, end)
		if arr[i] == ']' {
			return nil
		}
		i = skipSpace(arr, i+1)
	}
	return nil
}

// unquote decodes the valid JSON string raw (quotes included).
func unquote(raw []byte) (string, error) {
	inner := raw[1 : len(raw)-1]
	plain := true
	for _, c := range inner {
		if c == '\\' || c >= utf8.RuneSelf {
			plain = false
			break
		}
	}
	if plain {
		return string(inner), nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// number parses the valid JSON number raw.
func number(raw []byte) (float64, error) {
	return strconv.ParseFloat(string(raw), 64)
}

// appendString appends s as a JSON string the way JSON.stringify writes it
// (no HTML escaping, no \u2028), so messages are byte-identical to a
// reference node's.
func appendString(dst []byte, s string) []byte { return protocol.AppendStringStringify(dst, s) }

func appendRecipients(dst []byte, r Recipients) ([]byte, error) {
	switch {
	case r.All && r.ExceptSender:
		return dst, invalidf("recipientDescriptor: All and ExceptSender are both set")
	case (r.All || r.ExceptSender) && len(r.IDs) > 0:
		return dst, invalidf("recipientDescriptor: IDs given with All or ExceptSender")
	case r.All:
		return append(dst, `"`+allUsersDescriptor+`"`...), nil
	case r.ExceptSender:
		return append(dst, `"`+allExceptSenderDescriptor+`"`...), nil
	}
	dst = append(dst, '[')
	for i, id := range r.IDs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, id)
	}
	return append(dst, ']'), nil
}
