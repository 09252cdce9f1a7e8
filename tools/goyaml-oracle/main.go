// goyaml-oracle prints, for each line of stdin, what go-yaml v2 (sigs.k8s.io/yaml/goyaml.v2)
// resolves the plain scalar `k: <line>` to: the fixture of crates/goyaml/tests/resolve_v2.rs.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"time"

	yaml "sigs.k8s.io/yaml/goyaml.v2"
)

func main() {
	sc := bufio.NewScanner(os.Stdin)
	enc := json.NewEncoder(os.Stdout)
	for sc.Scan() {
		s := sc.Text()
		var v map[string]interface{}
		out := map[string]string{"in": s}
		if err := yaml.Unmarshal([]byte("k: "+s), &v); err != nil {
			out["type"] = "error"
		} else {
			x := v["k"]
			switch t := x.(type) {
			case nil:
				out["type"] = "null"
			case bool:
				out["type"] = "bool"
				out["value"] = fmt.Sprint(t)
			case int:
				out["type"] = "int"
				out["value"] = fmt.Sprint(t)
			case uint64:
				out["type"] = "uint"
				out["value"] = fmt.Sprint(t)
			case float64:
				out["type"] = "float"
				out["value"] = fmt.Sprintf("%b", t)
			case string:
				// go-yaml v2 hands timestamps to interface{} as strings (backward
				// compatibility); decoding into time.Time shows whether it resolved as one.
				var tv map[string]time.Time
				if yaml.Unmarshal([]byte("k: "+s), &tv) == nil {
					b, _ := tv["k"].MarshalJSON()
					out["type"] = "timestamp"
					out["value"] = string(b)
				} else {
					out["type"] = "str"
				}
			case time.Time:
				b, _ := t.MarshalJSON()
				out["type"] = "timestamp"
				out["value"] = string(b)
			default:
				out["type"] = fmt.Sprintf("%T", t)
			}
		}
		enc.Encode(out)
	}
}
