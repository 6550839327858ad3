# Test-time flips on val: does averaging the attribute network over flipped views pay for its
# extra passes? PyTorch, on the run's checkpoint and the training script's val cache:
#   target/encoder-venv/bin/python bench/tta_val.py runs/encoder_v4/best.pt
#   (needs target/encoder-cache/val_280.pt, which a training run at --source-size 280 writes)
# Prints mean attribute macro-F1, nucleus shape macro-F1 and type accuracy per set of views.
import sys, torch
sys.path.insert(0, 'train')
import finetune_encoder as fe
torch.set_num_threads(1)
net = fe.AttributeNet(); net.load_state_dict(torch.load(sys.argv[1] if len(sys.argv) > 1 else 'runs/encoder_v4/best.pt')); net.eval()
paths, labels = fe.read_wbcatt('../shared/data', 'val')
imgs = torch.load('target/encoder-cache/val_280.pt')
def logits(x):
    with torch.no_grad():
        return torch.cat([net(fe.plain(x[i:i+64], 224))[0] for i in range(0, len(x), 64)])
views = {'plain': imgs, 'h': imgs.flip(3), 'v': imgs.flip(2), 'hv': imgs.flip(2).flip(3), 't': imgs.transpose(2,3)}
L = {k: logits(v) for k, v in views.items()}
def score(lg):
    f=[]
    for a,(name,vals) in enumerate(fe.ATTRIBUTES):
        f.append(fe.macro_f1(lg[:, fe.OFFSETS[a]:fe.OFFSETS[a+1]].argmax(1), labels[:, a], len(vals)))
    t=(lg[:, fe.OFFSETS[11]:].argmax(1)==labels[:,-1]).float().mean().item()*100
    return sum(f)/len(f), f[fe.ATTRIBUTES.index(next(x for x in fe.ATTRIBUTES if x[0]=='nucleus_shape'))], t
def avgp(keys):
    # average probabilities per group
    out=[]
    for a in range(12):
        sl=slice(fe.OFFSETS[a], fe.OFFSETS[a+1] if a<11 else None)
        out.append(torch.stack([L[k][:, sl].softmax(1) for k in keys]).mean(0))
    return torch.cat(out,1)
for keys in [['plain'],['h'],['plain','h'],['plain','h','v','hv'],['plain','h','v','hv','t']]:
    print(keys, ['%.2f'%x for x in score(avgp(keys))], flush=True)
