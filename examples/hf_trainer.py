"""The Hugging Face Trainer with advlm's AdversarialTrainer: everything else is stock TrainingArguments."""

import argparse

import torch
from transformers import TrainingArguments

from advlm import AdversarialTrainer, build_method
from advlm.data import get_task, load_split, tokenize_examples
from advlm.data.collate import make_collator
from advlm.metrics import task_metrics
from advlm.modeling import load_model, load_tokenizer

parser = argparse.ArgumentParser()
parser.add_argument("--method", default="freelb")
parser.add_argument("--task", default="rte")
parser.add_argument("--model", default=None, help="model folder (default: the packaged MiniLM)")
parser.add_argument("--data-dir", default=None)
parser.add_argument("--output-dir", default="runs/hf-trainer-example")
parser.add_argument("--max-steps", type=int, default=50)
parser.add_argument("--max-eval", type=int, default=128)
args = parser.parse_args()

task = get_task(args.task)
tokenizer = load_tokenizer(args.model)
train = tokenize_examples(tokenizer, load_split(task, "train", args.data_dir))
dev = tokenize_examples(tokenizer, load_split(task, "dev", args.data_dir)[: args.max_eval])
trainer = AdversarialTrainer(
    model=load_model(args.model, task),
    args=TrainingArguments(
        args.output_dir,
        max_steps=args.max_steps,
        per_device_train_batch_size=16,
        learning_rate=2e-5,
        warmup_steps=0.1,
        save_strategy="no",
        report_to="none",
        use_cpu=not torch.cuda.is_available(),
    ),
    method=build_method(args.method),
    train_dataset=train,
    eval_dataset=dev,
    data_collator=make_collator(tokenizer),
    processing_class=tokenizer,
    compute_metrics=lambda p: task_metrics(task, p.predictions, p.label_ids),
)
trainer.train()
print(trainer.evaluate())
