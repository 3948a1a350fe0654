"""Adversarial fine-tuning in a plain PyTorch loop: the method owns the backward calls, you own the optimizer.

python examples/plain_loop.py --method freelb --task rte --max-steps 50
"""

import argparse

import torch
from torch.utils.data import DataLoader

from advlm import build_method
from advlm.modeling import load_model, load_tokenizer
from advlm.tasks import get_task

parser = argparse.ArgumentParser()
parser.add_argument("--method", default="freelb")
parser.add_argument("--task", default="rte")
parser.add_argument("--model", default=None, help="model folder (default: the packaged MiniLM)")
parser.add_argument("--data-dir", default=None)
parser.add_argument("--max-steps", type=int, default=50)
parser.add_argument("--batch-size", type=int, default=16)
parser.add_argument("--lr", type=float, default=2e-5)
args = parser.parse_args()

torch.manual_seed(0)
task = get_task(args.task)
tokenizer = load_tokenizer(args.model)
model = load_model(args.model, task)
train = task.encode(tokenizer, task.load("train", args.data_dir)[: args.max_steps * args.batch_size], 128)
loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, collate_fn=task.collator(tokenizer))

method = build_method(args.method)
# what the method needs to know: the model (refused now if it cannot take inputs_embeds), the tokenizer's special
# tokens (TextAT) and the run's optimizer steps (SMART's teacher schedule)
method.prepare(model, tokenizer=tokenizer, total_steps=args.max_steps)
optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
model.train()
for step, batch in enumerate(method.wrap_dataloader(loader), start=1):  # FreeAT replays batches here
    out = method.step(model, batch)  # calls loss.backward() as often as the method needs
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad()
    extras = " ".join(f"{k}={float(v):.4f}" for k, v in out.metrics.items())
    print(f"step {step} loss {float(out.loss):.4f} {extras}")
    if step >= args.max_steps:
        break
