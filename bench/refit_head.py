"""The attribute heads refitted on the fine-tuned encoder's frozen features of clean PBC train
cells. The encoder was fine-tuned with 70% of cells recoloured strongly and their colour
labels unscored, so its heads learnt the colours from a third of the cells and under
augmentation; a linear refit on clean features (the cell-type rows kept as trained, with
Chula's cells) may read PBC's attributes better. Fixed before running: 30 epochs, the last
one kept (no choice on val); val is reported for the shipped and the refitted heads.

    target/encoder-venv/bin/python bench/refit_head.py runs/encoder_v4 [OUT_RUN]

With OUT_RUN, writes OUT_RUN/best.pt (the encoder with the refitted attribute rows) and
OUT_RUN/run.json (the encoder run's record, this command added) for `wbc import-encoder`.
Needs the training script's caches target/encoder-cache/{train,val}_<source size>.pt.
"""
import json, os, sys, time
import torch
import torch.nn.functional as F

sys.path.insert(0, 'train')
import finetune_encoder as fe
from frozen_heads import head_epoch

torch.set_num_threads(2)
run = sys.argv[1]
out = sys.argv[2] if len(sys.argv) > 2 else None
record = json.load(open(f"{run}/run.json"))
size, source = record["args"]["input_size"], record["args"]["source_size"]
net = fe.AttributeNet()
net.load_state_dict(torch.load(f"{run}/best.pt"))
net.eval()
EPOCHS = 30
ATTRIBUTE_ROWS = fe.OFFSETS[11]


def pooled(images):
    out = []
    with torch.no_grad():
        for i in range(0, len(images), 64):
            out.append(net(fe.plain(images[i:i + 64], size))[1])
    return torch.cat(out)


t0 = time.time()
tr_paths, tr_labels = fe.read_wbcatt('../shared/data', 'train')
va_paths, va_labels = fe.read_wbcatt('../shared/data', 'val')
cache = f"target/s22/pooled_{os.path.basename(run)}.pt"
if os.path.exists(cache):
    tr, va = torch.load(cache)
else:
    tr = pooled(torch.load(f"target/encoder-cache/train_{source}.pt"))
    va = pooled(torch.load(f"target/encoder-cache/val_{source}.pt"))
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    torch.save((tr, va), cache)
print(f"features in {time.time() - t0:.0f} s", flush=True)

weights = fe.value_weights(tr_labels)


def scores(logits, labels):
    return fe.attribute_scores(logits, labels)


def line(name, f1s, t):
    per = ", ".join(f"{n} {f:.1f}" for (n, _), f in zip(fe.ATTRIBUTES, f1s))
    print(f"{name}: val mean macro-F1 {sum(f1s) / len(f1s):.2f}, type {t:.2f} ({per})", flush=True)


with torch.no_grad():
    shipped = scores(net.head(va), va_labels)
line("shipped heads", *shipped)

mu, sd = tr.mean(0), tr.std(0) + 1e-4
x, xv = (tr - mu) / sd, (va - mu) / sd
torch.manual_seed(0)
head = torch.nn.Linear(x.shape[1], ATTRIBUTE_ROWS)
opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=0.05)
for epoch in range(EPOCHS):
    head_epoch(head, opt, x, tr_labels, weights, 11)
# Back to the network's own feature scale: W x' + b with x' = (x - mu) / sd.
with torch.no_grad():
    w = head.weight / sd
    b = head.bias - (head.weight * (mu / sd)).sum(1)
    new = net.head.weight.clone(), net.head.bias.clone()
    new[0][:ATTRIBUTE_ROWS] = w
    new[1][:ATTRIBUTE_ROWS] = b
    refit = torch.nn.Linear(va.shape[1], fe.HEAD_WIDTH)
    refit.weight.copy_(new[0])
    refit.bias.copy_(new[1])
    refitted = scores(refit(va), va_labels)
line(f"attribute heads refitted ({EPOCHS} epochs, the last kept)", *refitted)

if out:
    os.makedirs(out, exist_ok=True)
    net.head.weight.data.copy_(new[0])
    net.head.bias.data.copy_(new[1])
    torch.save(net.state_dict(), f"{out}/best.pt")
    f1s, t = refitted
    record = dict(record)
    record["init"] = f"{run}/best.pt"
    record["head_refit"] = {
        "command": "target/encoder-venv/bin/python bench/refit_head.py " + " ".join(sys.argv[1:]),
        "epochs": EPOCHS,
        "val_mean_attribute_macro_f1": sum(f1s) / len(f1s),
        "val_cell_type_accuracy": t,
        "shipped_val_mean_attribute_macro_f1": sum(shipped[0]) / len(shipped[0]),
    }
    json.dump(record, open(f"{out}/run.json", "w"), indent=1)
    print(f"wrote {out}/best.pt and run.json", flush=True)
