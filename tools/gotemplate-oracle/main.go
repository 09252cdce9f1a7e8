// Command gotemplate-oracle renders Go text/template templates the way the Go upstreams do, so that
// hush-template's golden fixtures can be regenerated and diffed (scripts/check-template-oracle.sh).
//
// Input on stdin: a JSON array of cases {"name", "preset", "template", "data", "left"?, "right"?};
// "data" is an object of strings (the controllers' map[string]string). Output: a JSON array of {"name", "output"} or
// {"name", "error": true}; error texts differ between Go and hush, so only their presence is kept.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"text/template"

	"github.com/Masterminds/sprig/v3"
)

type testCase struct {
	Name     string            `json:"name"`
	Preset   string            `json:"preset"`
	Template string            `json:"template"`
	Data     map[string]string `json:"data"`
	Left     string            `json:"left,omitempty"`
	Right    string            `json:"right,omitempty"`
}

type result struct {
	Name   string  `json:"name"`
	Output *string `json:"output,omitempty"`
	Error  bool    `json:"error,omitempty"`
}

func funcs() template.FuncMap {
	m := sprig.GenericFuncMap()
	for _, k := range []string{"env", "expandenv", "getHostByName"} {
		delete(m, k)
	}
	return m
}

func render(c testCase) (out string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	t := template.New(c.Name).Delims(c.Left, c.Right).Funcs(funcs())
	if c.Preset == "external-secrets" {
		t = t.Option("missingkey=error").Funcs(esoFuncs())
	}
	t, err = t.Parse(c.Template)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, c.Data); err != nil {
		return "", err
	}
	return buf.String(), nil
}

func main() {
	var cases []testCase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	results := make([]result, 0, len(cases))
	for _, c := range cases {
		out, err := render(c)
		r := result{Name: c.Name}
		if err != nil {
			r.Error = true
			if os.Getenv("ORACLE_VERBOSE") != "" {
				fmt.Fprintf(os.Stderr, "%s: %v\n", c.Name, err)
			}
		} else {
			r.Output = &out
		}
		results = append(results, r)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
