#!/usr/bin/env python3
"""Prints the import cycles between the modules of a crate's src/ (crate::x and super::x uses,
outside #[cfg(test)] mod tests); exits 1 if there is one. Usage: module-cycles.py DIR"""
import re,os,sys
root=sys.argv[1]
edges={}
for dp,_,fs in os.walk(root):
    for f in fs:
        if not f.endswith('.rs'): continue
        path=os.path.join(dp,f); rel=os.path.relpath(path,root)[:-3]
        if rel.endswith('/mod'): rel=rel[:-4]
        mod=rel.replace('/','::')
        if mod=='lib': mod='crate'
        src=open(path).read()
        # strip test modules roughly
        src=re.split(r'#\[cfg\([^\]]*\btest\b[^\]]*\)\]\s*mod tests',src)[0]
        src=re.sub(r'//.*','',src)
        deps=set()
        for m in re.findall(r'crate::([a-z_]+(?:::[a-z_]+)?)',src):
            parts=m.split('::')
            cand='::'.join(parts)
            # map to module: prefer 2-level if exists as file
            if os.path.exists(os.path.join(root,*parts)+'.rs') or os.path.exists(os.path.join(root,*parts,'mod.rs')):
                deps.add(cand)
            else:
                deps.add(parts[0])
        for m in re.findall(r'super::([a-z_]+)',src):
            par=mod.rsplit('::',1)[0] if '::' in mod else 'crate'
            deps.add((par+'::'+m) if par!='crate' else m)
        deps.discard(mod)
        edges[mod]=deps
# tarjan
idx={};low={};st=[];on=set();res=[];c=[0]
def sc(v):
    idx[v]=low[v]=c[0];c[0]+=1;st.append(v);on.add(v)
    for w in edges.get(v,()):
        if w not in edges: continue
        if w not in idx: sc(w);low[v]=min(low[v],low[w])
        elif w in on: low[v]=min(low[v],idx[w])
    if low[v]==idx[v]:
        comp=[]
        while True:
            w=st.pop();on.discard(w);comp.append(w)
            if w==v:break
        if len(comp)>1: res.append(sorted(comp))
sys.setrecursionlimit(10000)
for v in list(edges):
    if v not in idx: sc(v)
print("module cycles:", res if res else "none")
for comp in res:
    for a in comp:
        print(" ",a,"->",sorted(d for d in edges[a] if d in comp))
sys.exit(1 if res else 0)
