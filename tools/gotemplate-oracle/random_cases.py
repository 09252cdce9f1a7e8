"""Random templates for differential testing of hush-template against Go.

    python3 tools/gotemplate-oracle/random_cases.py SEED COUNT OUT.json
    go run ./tools/gotemplate-oracle < OUT.json > EXPECTED.json   (from tools/gotemplate-oracle)
    HUSH_TEMPLATE_CASES=OUT.json HUSH_TEMPLATE_EXPECTED=EXPECTED.json \
        cargo test -p hush-template --test golden differential -- --ignored
"""
import json,random,sys
random.seed(int(sys.argv[1]) if len(sys.argv)>1 else 1)
D={"a":"x","b":"42","c":"","d":"3.5","e":"{\"k\":[1,\"v\",null],\"m\":{\"z\":1}}","f":"a,b,c"}
atoms=['.a','.b','.c','.d','.nope','$','.','1','0','-2','2.5','"s"','""','`r`','true','false','nil',"'x'",'$x','(list 1 "a")','(dict "k" 1)','(fromJson .e)','(fromJson .e).m','(splitList "," .f)']
funcs=['printf "%v"','printf "%s-%d"','printf "%q"','printf "%5.1f"','len','index','not','and','or','eq','ne','lt','le','gt','ge','print','println','html','js','urlquery','upper','lower','trim','quote','squote','default "d"','empty','toJson','toString','b64enc','b64dec','add','sub','mul','div','max','min','int','float64','atoi','first','last','rest','list','dict','hasKey','keys','join ","','split ","','splitList ","','contains "a"','hasPrefix "x"','replace "a" "b"','trunc 2','substr 0 1','repeat 2','indent 2','nindent 1','cat','coalesce','ternary "y" "n"','typeOf','kindOf','sha256sum','regexMatch "a"','regexFind "[0-9]"','title','nospace','abbrev 5','seq','until','toStrings','sortAlpha','uniq','compact','reverse','slice','get','set','pick','omit','merge','dig "k" "d"','fromJson','toRawJson','adler32sum','initials','wrap 3','plural "a" "b"','round','floor','ceil','addf','divf','mod']
def term(d=0):
    r=random.random()
    if d<2 and r<0.3:
        return '('+pipe(d+1)+')'
    return random.choice(atoms)
def cmd(d=0):
    if random.random()<0.35:
        return term(d)
    f=random.choice(funcs)
    n=random.choice([0,1,1,2,2,3])
    return ' '.join([f]+[term(d) for _ in range(n)])
def pipe(d=0):
    cs=[cmd(d)]
    while random.random()<0.3:
        cs.append(random.choice(funcs)+(' '+term(d) if random.random()<0.3 else ''))
    return ' | '.join(cs)
def action():
    lt=random.choice(['{{','{{- ','{{'])
    rt=random.choice(['}}',' -}}','}}'])
    r=random.random()
    p=pipe()
    if r<0.1: return f'{lt}$x := {p}{rt}'
    if r<0.2: return f'{lt}if {p}{rt}T{{{{else}}}}F{{{{end}}}}'
    if r<0.28: return f'{lt}with {p}{rt}[{{{{.}}}}]{{{{else}}}}E{{{{end}}}}'
    if r<0.38: return f'{lt}range $i, $v := {p}{rt}{{{{$i}}}}={{{{$v}}}};{{{{else}}}}none{{{{end}}}}'
    return f'{lt}{p}{rt}'
cases=[]
for i in range(int(sys.argv[2]) if len(sys.argv)>2 else 2000):
    t='{{ $x := "init" }}'+''.join(random.choice([' ','\n',' t ',''])+action() for _ in range(random.randint(1,3)))
    for p in ("sealed-secrets","external-secrets"):
        cases.append({"name":f"r{i}/{p}","preset":p,"template":t,"data":D})
json.dump(cases,open(sys.argv[3] if len(sys.argv)>3 else 'cases.json','w'))
