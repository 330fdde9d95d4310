#!/usr/bin/env bash
# Download, on a machine with PyPI, the wheels `mcr serve` needs on the GPU image (Python 3.12, x86-64),
# into .whl/ (ignored by git); then name `.whl` in the device tool's `carry`. benchmarks/gpu/run.sh installs them.
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl fastapi starlette uvicorn h11 pydantic pydantic-core annotated-types typing-inspection \
  sse-starlette llguidance
