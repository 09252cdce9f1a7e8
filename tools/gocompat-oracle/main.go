// Prints the expected-value tables of crates/gocompat/tests/go_tables.rs from Go's own strconv
// and encoding/json: `go run ./tools/gocompat-oracle` (stdlib only).
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
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
}
