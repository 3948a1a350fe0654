"""The plain loop with Hugging Face accelerate: pass `accelerator.backward` to the method.
Runs on one process as is, and on several with `accelerate launch examples/accelerate_loop.py`.
"""

import argparse

import torch
from accelerate import Accelerator
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

accelerator = Accelerator(cpu=not torch.cuda.is_available())
torch.manual_seed(0)
task = get_task(args.task)
tokenizer = load_tokenizer(args.model)
model = load_model(args.model, task)
train = task.encode(tokenizer, task.load("train", args.data_dir)[: args.max_steps * args.batch_size], 128)
loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, collate_fn=task.collator(tokenizer))
method = build_method(args.method)
method.prepare(model, tokenizer=tokenizer, total_steps=args.max_steps)  # the same call AdversarialTrainer makes
optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
model, optimizer, loader = accelerator.prepare(model, optimizer, loader)

model.train()
for step, batch in enumerate(method.wrap_dataloader(loader), start=1):
    out = method.step(model, batch, backward=accelerator.backward)
    accelerator.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad()
    accelerator.print(f"step {step} loss {float(out.loss):.4f}")
    if step >= args.max_steps:
        break
