"""The Hugging Face Trainer with advlm's AdversarialTrainer: everything else is stock TrainingArguments."""

import argparse

import torch
from transformers import TrainingArguments

from advlm import AdversarialTrainer, build_method
from advlm.modeling import load_model, load_tokenizer
from advlm.tasks import get_task

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
train = task.encode(tokenizer, task.load("train", args.data_dir), 128)
dev = task.encode(tokenizer, task.load("dev", args.data_dir)[: args.max_eval], 128)
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
    data_collator=task.collator(tokenizer),
    processing_class=tokenizer,
    compute_metrics=lambda p: task.score(p.predictions, p.label_ids, dev),
    preprocess_logits_for_metrics=task.reduce,
)
trainer.train()
print(trainer.evaluate())
