"""Named-entity recognition with the Hugging Face Trainer and an adversarial method (CoNLL-2003 by default):
AdversarialTrainer in place of Trainer, everything else stock.

python examples/token_classification_trainer.py --method freelb --max-steps 200
"""

import argparse

import torch
from transformers import TrainingArguments

from advlm import AdversarialTrainer, build_method
from advlm.modeling import load_model, load_tokenizer
from advlm.tasks import get_task

parser = argparse.ArgumentParser()
parser.add_argument("--method", default="freelb")
parser.add_argument("--task", default="conll2003", help="a token-classification task")
parser.add_argument("--model", default=None, help="model folder (default: the packaged MiniLM)")
parser.add_argument("--data-dir", default=None)
parser.add_argument("--output-dir", default="runs/ner-trainer-example")
parser.add_argument("--max-steps", type=int, default=50)
parser.add_argument("--max-train", type=int, default=2000, help="training sentences used")
parser.add_argument("--max-eval", type=int, default=200, help="dev sentences scored")
args = parser.parse_args()

task = get_task(args.task)
tokenizer = load_tokenizer(args.model)
train = task.encode(tokenizer, task.load("train", args.data_dir)[: args.max_train], 128)
dev = task.encode(tokenizer, task.load("dev", args.data_dir)[: args.max_eval], 128)
trainer = AdversarialTrainer(
    model=load_model(args.model, task),  # AutoModelForTokenClassification with the task's tags
    args=TrainingArguments(
        args.output_dir,
        max_steps=args.max_steps,
        per_device_train_batch_size=16,
        learning_rate=5e-5,
        warmup_steps=0.1,
        save_strategy="no",
        report_to="none",
        use_cpu=not torch.cuda.is_available(),
    ),
    method=build_method(args.method),
    train_dataset=train,
    eval_dataset=dev,
    data_collator=task.collator(tokenizer),  # pads labels with -100
    processing_class=tokenizer,  # the method learns the special tokens from it
    compute_metrics=lambda p: task.score(p.predictions, p.label_ids, dev),  # seqeval entity F1
    preprocess_logits_for_metrics=task.reduce,  # keep the predicted tag ids, not the logits
)
trainer.train()
print(trainer.evaluate())
