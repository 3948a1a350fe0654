#!/usr/bin/env bash
# Packs into .gpu/ (git-ignored) what a lent GPU machine lacks, for the device tool to carry (64 MiB at most):
# the default model as fp16 safetensors (45 MB; advlm loads it in fp32), the full grid's four GLUE tasks,
# smart-pytorch (the SMART baseline; pure Python) and the commit the results will name.
# Run from the repository root after `make setup`; then run benchmarks/gpu/run.sh there with carry [".gpu"].
set -euo pipefail
PY=${PY:-.venv/bin/python}
GLUE=${GLUE:-../shared/data/glue}
rm -rf .gpu && mkdir -p .gpu/glue .gpu/site
for task in RTE MRPC CoLA STS-B; do cp -r "$GLUE/$task" .gpu/glue/; done
"$PY" - <<'PYTHON'
import shutil
from pathlib import Path

import smart_pytorch
from safetensors.torch import load_file, save_file

from advlm.modeling import default_model_path

src, dst = Path(default_model_path()), Path(".gpu/model")
dst.mkdir()
weights = load_file(src / "model.safetensors")
save_file({k: v.half().contiguous() for k, v in weights.items()}, dst / "model.safetensors", metadata={"format": "pt"})
for name in ("config.json", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"):
    shutil.copy(src / name, dst / name)
package = Path(smart_pytorch.__file__).parent
shutil.copytree(package, Path(".gpu/site") / package.name, ignore=shutil.ignore_patterns("__pycache__"))
for info in package.parent.glob("smart_pytorch-*.dist-info"):
    shutil.copytree(info, Path(".gpu/site") / info.name)
PYTHON
git rev-parse HEAD > .gpu/COMMIT
git diff --quiet HEAD -- src || echo "warning: src/ has uncommitted changes; results will name $(cat .gpu/COMMIT)" >&2
du -sh .gpu
