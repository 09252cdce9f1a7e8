"""Random token soup (actions, trim markers, control keywords) for differential parser testing.

    python3 tools/gotemplate-oracle/random_syntax_cases.py SEED COUNT OUT.json [MAX_TOKENS]
    then as in random_cases.py.
"""
import json,random,sys
random.seed(int(sys.argv[1]))
D={"a":"x","b":"42","c":"","d":"3.5","e":"{\"k\":[1,\"v\",null],\"m\":{\"z\":1}}","f":"a,b,c"}
toks=['{{','}}','{{- ',' -}}','{{/* c */}}','{{- /* c */ -}}','{{/*','*/}}',' ','\n','\t','x','.a','.b','.nope','$','$x','$y',':=','=','|','(',')','if','else','end','range','with','define','template','block','break','continue','"t"','1','-1','2.5','nil','true','.','printf','"%v"','len','index','list','eq','and','or','not','upper',',','$i','$v','`raw`',"'c'",'{{end}}','{{else}}','{{if .a}}','{{range list 1 2}}','{{with .b}}','{{define "t"}}','{{template "t" .}}','{{$x := 1}}','{{$x = 2}}','{{$x}}','{{.}}','{{break}}','{{continue}}','{{else if .c}}','{{else with .d}}','{{range $i, $v := .}}','{{block "b" .a}}']
cases=[]
n=int(sys.argv[2])
for i in range(n):
    k=random.randint(1,int(sys.argv[4]) if len(sys.argv)>4 else 14)
    t=''.join(random.choice(toks)+random.choice(['',' ']) for _ in range(k))
    for p in ("sealed-secrets","external-secrets"):
        cases.append({"name":f"s{i}/{p}","preset":p,"template":t,"data":D})
json.dump(cases,open(sys.argv[3],'w'))
