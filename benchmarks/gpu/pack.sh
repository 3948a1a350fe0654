#!/usr/bin/env bash
# Packs into .gpu/ (git-ignored) what a lent GPU machine lacks, for the device tool to carry (64 MiB at most):
# the default model as fp16 safetensors (45 MB; advlm loads it in fp32), the full grid's four GLUE tasks and the
# heads grid's CoNLL-2003, CommonsenseQA and ARC (13 MB), smart-pytorch (the SMART baseline) and seqeval (the
# NER metric; both pure Python) and the commit the results will name.
# Run from the repository root after `make setup`; then run benchmarks/gpu/run.sh there with carry [".gpu"].
set -euo pipefail
PY=${PY:-.venv/bin/python}
DATA=${DATA:-../shared/data}
rm -rf .gpu && mkdir -p .gpu/data/glue .gpu/site
for task in RTE MRPC CoLA STS-B; do cp -r "$DATA/glue/$task" .gpu/data/glue/; done
cp -r "$DATA/conll2003" "$DATA/commonsenseqa" "$DATA/arc" .gpu/data/
"$PY" - <<'PYTHON'
import shutil
from pathlib import Path

import seqeval
import smart_pytorch
from safetensors.torch import load_file, save_file

from advlm.modeling import default_model_path

src, dst = Path(default_model_path()), Path(".gpu/model")
dst.mkdir()
weights = load_file(src / "model.safetensors")
save_file({k: v.half().contiguous() for k, v in weights.items()}, dst / "model.safetensors", metadata={"format": "pt"})
for name in ("config.json", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"):
    shutil.copy(src / name, dst / name)
for module, dist in ((smart_pytorch, "smart_pytorch"), (seqeval, "seqeval")):
    package = Path(module.__file__).parent
    shutil.copytree(package, Path(".gpu/site") / package.name, ignore=shutil.ignore_patterns("__pycache__"))
    for info in package.parent.glob(f"{dist}-*.dist-info"):
        shutil.copytree(info, Path(".gpu/site") / info.name)
PYTHON
git rev-parse HEAD > .gpu/COMMIT
git diff --quiet HEAD -- src || echo "warning: src/ has uncommitted changes; results will name $(cat .gpu/COMMIT)" >&2
du -sh .gpu
