"""Instruction tuning of a causal LM in a plain PyTorch loop with an adversarial method: the loss (and every
consistency term) covers the response tokens only.

python examples/causal_lm_plain_loop.py --model /path/to/a/causal-lm --method freelb --max-steps 20
"""

import argparse
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from advlm import build_method
from advlm.evaluation import evaluate
from advlm.modeling import load_model, load_tokenizer
from advlm.tasks import get_task

parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True, help="folder of a causal LM (GPT-2, Llama, Qwen, ...)")
parser.add_argument("--method", default="freelb")
parser.add_argument("--train-file", default=str(Path(__file__).parent / "data" / "instructions.jsonl"))
parser.add_argument("--max-steps", type=int, default=20)
parser.add_argument("--batch-size", type=int, default=4)
parser.add_argument("--lr", type=float, default=1e-4)
parser.add_argument("--max-length", type=int, default=128)
args = parser.parse_args()

torch.manual_seed(0)
task = get_task("instructions", task_type="causal-lm")  # {"prompt", "response"} records
tokenizer = load_tokenizer(args.model)
model = load_model(args.model, task)
train = task.encode(tokenizer, task.load("train", path=args.train_file), args.max_length)  # prompt labels are -100
loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, collate_fn=task.collator(tokenizer))

method = build_method(args.method)
method.prepare(model, tokenizer=tokenizer, total_steps=args.max_steps)
optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
print(f"before: perplexity {evaluate(model, train, tokenizer, task)['perplexity']:.2f}")
model.train()
step = 0
while step < args.max_steps:
    for batch in method.wrap_dataloader(loader):
        out = method.step(model, batch)  # calls loss.backward() as often as the method needs
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        step += 1
        print(f"step {step} loss {float(out.loss):.4f}")
        if step >= args.max_steps:
            break
print(f"after: perplexity {evaluate(model, train, tokenizer, task)['perplexity']:.2f} on the training records")
