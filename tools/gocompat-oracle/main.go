// Prints the expected-value tables of crates/gocompat/tests/go_tables.rs from Go's own strconv
// and encoding/json: `go run ./tools/gocompat-oracle` (stdlib only).
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

var ints = []string{"0", "00", "07", "08", "010", "-010", "+5", "-0", "42", "-42", "0x1F", "0X1f",
	"-0x80", "0o17", "0O17", "0b101", "0B11", "0x", "0b", "0o", "0x_1", "0_7", "1_000", "1__0", "_1",
	"1_", "0_", "0x-5", "0x+5", "--1", "+-1", "", "+", "-", " 1", "1 ", "1.0",
	"9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
	"0x7fffffffffffffff", "0x8000000000000000", "18446744073709551615", "18446744073709551616",
	"0xffffffffffffffff", "1e3", "0b2", "0o8", "0xg", "٣"}

// JSON documents whose numbers keep their text through serde_json (json.Number mode).
var docs = []string{
	`{"z":1,"a":"<b>&\u2028\u2029","m":{"y":[true,null,1.5],"b":"x\ny"}}`,
	`"\u0001\u0008\u000c\t\r\n\"\\\u001f é"`,
	`{"h":"<&>","k\u003c":{"":[]}}`,
	`[1, -2, 0.5, 1.5e-7, 100]`,
}

// JSON documents for float64 mode only (integers past 2^64 left out: serde_json, without its
// float_roundtrip feature, does not always round them to the nearest float64 as Go does).
var floats = []string{
	`[1.0, 1e21, 1.5e-7, -0.5, 0.000001, 1e-7, 100, 12.50]`,
}

// Timestamps as go-yaml (v2 and v3 alike) and time.Parse(time.RFC3339, …) read them.
var times = []string{"2024-01-02", "2024-1-2", "2024-01-02T03:04:05Z", "2024-01-02t03:04:05Z",
	"2024-01-02T03:04:05.123+02:00", "2024-01-02T03:04:05.1234567890123-07:30",
	"2024-01-02 03:04:05", "2024-01-02  3:4:5.5", "2024-1-2T3:4:5Z", "2024-01-02T03:04:05+00:00",
	"2024-01-02T03:04:05", "2024-01-02T03:04:05.Z", "2024-01-02 03:04:05Z", "2024-13-02",
	"2023-02-29", "2024-02-29", "2024-01-02T24:00:00Z", "2024-01-02T03:04:05+24:00",
	"2024-01-02T03:04:05+23:59", "2024-01-02T03:04:05+25:00", "2024-01-02T03:04:05+01:60",
	"2024-01-02T03:04:05+1:00", "1234", "12024-01-02", "2024-01-02x", "2024-01-02T03:04:05,5Z",
	"2024-01-02 03:04:05.", "0000-01-01", "2024-01-02T3:04:05Z", "2024-01-02T03:4:05Z",
	"2024-1-02T03:04:05Z", "2024-01-02T03:04:5Z", "2024-01-02 ", "2024-01-02T03:04:05+01:00x",
	"2024-01-02T03:04:05ZZ", "2024-01-02T03:04:05-00:30", "2024-01-02T03:04:05.000Z"}

// go-yaml's parseTimestamp (resolve.go, the same in v2 and v3).
func yamlTimestamp(s string) (time.Time, bool) {
	i := 0
	for ; i < len(s); i++ {
		if c := s[i]; c < '0' || c > '9' {
			break
		}
	}
	if i != 4 || i == len(s) || s[i] != '-' {
		return time.Time{}, false
	}
	for _, format := range []string{"2006-1-2T15:4:5.999999999Z07:00",
		"2006-1-2t15:4:5.999999999Z07:00", "2006-1-2 15:4:5.999999999", "2006-1-2"} {
		if t, err := time.Parse(format, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func main() {
	fmt.Println("const INTS: &[(&str, Option<i64>, Option<u64>)] = &[")
	for _, c := range ints {
		i, ierr := strconv.ParseInt(c, 0, 64)
		u, uerr := strconv.ParseUint(c, 0, 64)
		is, us := "None", "None"
		if ierr == nil {
			is = fmt.Sprintf("Some(%d)", i)
		}
		if uerr == nil {
			us = fmt.Sprintf("Some(%d)", u)
		}
		fmt.Printf("    (%q, %s, %s),\n", c, is, us)
	}
	fmt.Println("];")
	fmt.Println("/// (input, Marshal with UseNumber, Marshal of any, SetEscapeHTML(false) of any)")
	fmt.Println("const JSON: &[(&str, &str, &str, &str)] = &[")
	for _, in := range append(docs, floats...) {
		var anyV, numV interface{}
		json.Unmarshal([]byte(in), &anyV)
		d := json.NewDecoder(strings.NewReader(in))
		d.UseNumber()
		d.Decode(&numV)
		m1, _ := json.Marshal(numV)
		m2, _ := json.Marshal(anyV)
		var buf bytes.Buffer
		e := json.NewEncoder(&buf)
		e.SetEscapeHTML(false)
		e.Encode(anyV)
		fmt.Printf("    (\n        r#\"%s\"#,\n        r#\"%s\"#,\n        r#\"%s\"#,\n        r#\"%s\"#,\n    ),\n",
			in, m1, m2, strings.TrimSuffix(buf.String(), "\n"))
	}
	fmt.Println("];")
	fmt.Println("/// (input, go-yaml's timestamp as RFC3339Nano, time.Parse(RFC3339) as RFC3339)")
	fmt.Println("const TIMES: &[(&str, Option<&str>, Option<&str>)] = &[")
	for _, in := range times {
		y, r := "None", "None"
		if t, ok := yamlTimestamp(in); ok {
			y = fmt.Sprintf("Some(%q)", t.Format(time.RFC3339Nano))
		}
		if t, err := time.Parse(time.RFC3339, in); err == nil {
			r = fmt.Sprintf("Some(%q)", t.Format(time.RFC3339))
		}
		fmt.Printf("    (%q, %s, %s),\n", in, y, r)
	}
	fmt.Println("];")
}
