"""Variants of the cell-type adaptation tried on the cells `wbc adapt-eval --cells-out` wrote
(BENCHMARKS.md, "Your microscope": what else was measured). numpy only:

    python3 -m venv target/venv && target/venv/bin/pip install numpy
    cargo run --release -p wbc -- adapt-eval --cells-out target/adapt_cells.jsonl --out target/adaptation_check.json
    K=5 target/venv/bin/python bench/adapt_variants.py target/adapt_cells.jsonl "m_base()" "m_gen(alpha=0.25,thr=0.9)"

Each argument is a method (Python expression): `m_base(l2, iters, std, off)` is what ships
(`ln p + W·f + b`, the same descent as wbc_core::adapt); `m_gen(l2, alpha, thr, rounds,
center)` weakens the shipped answer's pull to `alpha·ln p` and, with `thr`, adds the cells not
labelled whose adapted answer is surer than `thr` as labels and fits again (self-training);
`m_proto(alpha)` adds cosine similarity to each type's labelled mean. 20 draws of K labelled
cells per type; accuracy on the cells not labelled, mean ± sd. The draws are numpy's, not
adapt-eval's, so the shipped method's numbers differ from its report by a point or so.
"""
import json, sys, os, numpy as np
K=int(os.environ.get('K','5'))
rows=[json.loads(l) for l in open(sys.argv[1])]
sets={}
for r in rows: sets.setdefault(r['set'],[]).append(r)
def arr(s):
    F=np.array([r['features'] for r in s],dtype=np.float64); P=np.array([r['shipped'] for r in s]); y=np.array([r['truth'] for r in s]); return F,P,y
def softmax(z):
    z=z-z.max(1,keepdims=True); e=np.exp(z); return e/e.sum(1,keepdims=True)
def fit(X,y,O,C,l2,iters):
    n,d=X.shape
    norm=(X**2).sum(1).max()
    step=1/(0.5*(norm+1)+l2)
    W=np.zeros((C,d)); b=np.zeros(C); Wb=W.copy(); bb=b.copy(); t=1.0
    Y=np.eye(C)[y]
    for _ in range(iters):
        tn=(1+np.sqrt(1+4*t*t))/2; m=(t-1)/tn
        Wa=W+m*(W-Wb); ba=b+m*(b-bb)
        p=softmax(X@Wa.T+ba+(O if O is not None else 0))
        g=(p-Y)/n
        Wb,bb=W,b
        W=Wa-step*(g.T@X+l2*Wa); b=ba-step*(g.sum(0)+l2*ba)
        t=tn
    return W,b
def draws(F,P,y,k,nd,seed,method):
    rng=np.random.default_rng(seed); accs=[]; base=[]
    for _ in range(nd):
        lab=np.zeros(len(y),bool)
        for c in range(5):
            idx=np.where(y==c)[0]; rng.shuffle(idx); lab[idx[:k]]=True
        te=~lab
        pred=method(F,P,y,lab)
        accs.append((pred[te]==y[te]).mean()*100); base.append((P[te].argmax(1)==y[te]).mean()*100)
    return np.mean(base),np.mean(accs),np.std(accs)
O=lambda P: np.log(np.maximum(P,1e-4))
def m_base(l2=1e-4,iters=300,std=None,off=True,scale=1.0):
    def f(F,P,y,lab):
        X=F
        if std=='set':
            mu=F.mean(0); sd=F.std(0)+1e-6; X=(F-mu)/sd/np.sqrt(F.shape[1])*scale
        elif std=='center':
            X=(F-F.mean(0)); X=X/np.linalg.norm(X,axis=1,keepdims=True)*scale
        W,b=fit(X[lab],y[lab],O(P[lab]) if off else None,5,l2,iters)
        return (X@W.T+b+(O(P) if off else 0)).argmax(1)
    return f
def m_proto(alpha=10.0, center=True):
    def f(F,P,y,lab):
        X=F-F.mean(0) if center else F
        X=X/np.linalg.norm(X,axis=1,keepdims=True)
        mus=np.zeros((5,X.shape[1])); has=np.zeros(5,bool)
        for c in range(5):
            if (lab&(y==c)).any(): mus[c]=X[lab&(y==c)].mean(0); has[c]=True
        mus=mus/np.maximum(np.linalg.norm(mus,axis=1,keepdims=True),1e-9)
        s=alpha*(X@mus.T); s[:,~has]=-1e9
        return (s+O(P)).argmax(1)
    return f

def m_gen(l2=1e-4, alpha=1.0, thr=None, rounds=1, center=False):
    def f(F,P,y,lab):
        X=F
        if center:
            X=F-F.mean(0); X=X/np.linalg.norm(X,axis=1,keepdims=True)
        Oa=alpha*O(P)
        W,b=fit(X[lab],y[lab],Oa[lab],5,l2,300)
        if thr is not None:
            for _ in range(rounds):
                q=softmax(X@W.T+b+Oa)
                conf=(q.max(1)>thr)&~lab
                idx=np.where(lab|conf)[0]
                yy=np.where(lab,y,q.argmax(1))[idx]
                W,b=fit(X[idx],yy,Oa[idx],5,l2,300)
        return (X@W.T+b+Oa).argmax(1)
    return f
methods={}
for spec in sys.argv[2:]:
    methods[spec]=eval(spec)
for name,m in methods.items():
    out=[]
    for sname in ['chula (held-back series)','cellavision100','tecom300']:
        F,P,y=arr(sets[sname])
        b,a,s=draws(F,P,y,K,20,7000+K,m)
        out.append(f"{sname[:10]} {b:.1f}->{a:.1f}±{s:.1f}")
    print(name, ' | '.join(out), flush=True)
