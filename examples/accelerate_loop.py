"""The plain loop with Hugging Face accelerate: pass `accelerator.backward` to the method.
Runs on one process as is, and on several with `accelerate launch examples/accelerate_loop.py`.
"""

import argparse

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

from advlm import build_method
from advlm.data import get_task, load_split, tokenize_examples
from advlm.data.collate import make_collator
from advlm.modeling import load_model, load_tokenizer

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
train = tokenize_examples(tokenizer, load_split(task, "train", args.data_dir)[: args.max_steps * args.batch_size])
loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, collate_fn=make_collator(tokenizer))
method = build_method(args.method)
method.prepare(model)
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
