#!/usr/bin/env bash
# The GPU checks, in one call, for a session lent a device machine:
#   make device-wheels                       # here, once: .device-wheels/ (about 5 MB)
#   device run: bash bench/device.sh         # carry [".device-wheels"], timeout_s 540
# It installs the carried wheels, then runs: the CUDA tests (tests/test_parity.py,
# needs_cuda); the many-network engine's parity tests on the GPU (tests/test_many.py) and
# its table (`bench/many.py --device cuda --profile`: 64 and 1,024 networks learning at once
# beside the fast engine on one core, inference at 6,400 neurons, batch 1,024, and a
# torch.profiler table of one call of each); a CLI train and
# evaluate with BindsNET on the GPU; and `bench/speed.py --device cuda` (BindsNET on the
# GPU against the fast engine on the CPU: the table for the README's Performance section). Everything lands in $OUT
# (./device-out elsewhere); a step that fails is reported and the next one still runs.
# DEVICE=cpu rehearses it all on a machine without a GPU (WHEELS: another wheel folder);
# ONLY="install machine many-tests many" runs those steps only.
set -uo pipefail
out=${OUT:-device-out}
wheels=${WHEELS:-.device-wheels}
device=${DEVICE:-cuda}
python=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
failed=()

step() {  # step NAME COMMAND...: run, keep its output in $out/NAME.txt, note a failure
    local name=$1
    shift
    case " ${ONLY:-$name} " in *" $name "*) ;; *) return 0 ;; esac  # ONLY="install many": those steps
    echo "== $name: $*"
    "$@" 2>&1 | tee "$out/$name.txt"
    local status=${PIPESTATUS[0]}
    [ "$status" -eq 0 ] || failed+=("$name (exit $status)")
}

step install "$python" -m pip install -q --no-index --no-deps --find-links "$wheels" -r bench/device-requirements.txt
step machine "$python" -c "import torch, numba; print('torch', torch.__version__, 'numba', numba.__version__,
    'cuda', torch.cuda.is_available() and torch.cuda.get_device_name())"
step tests "$python" -m pytest -q -p no:cacheprovider tests/test_parity.py -k "cuda or auto" -rs
step many-tests "$python" -m pytest -q -p no:cacheprovider tests/test_many.py -m "not slow" -rs
step many "$python" bench/many.py --device "$device" --profile ${MANY_ARGS:-}  # the profiles: where the time goes
run=$(mktemp -d)/run
step train "$python" -m snnctl train parameters/mnist.yaml --device "$device" --set engine=bindsnet \
    --set one_spike=bindsnet --set epochs=1 --set batch_size=64 --set n_train=2000 --set n_test=1000 \
    --out "$run" --json
step evaluate "$python" -m snnctl evaluate "$run/checkpoint.safetensors" --device cpu --json
step speed "$python" bench/speed.py --device "$device" ${SPEED_ARGS:-}

if [ ${#failed[@]} -gt 0 ]; then
    printf 'failed: %s\n' "${failed[@]}" | tee "$out/failed.txt"
    exit 1
fi
echo "all steps passed; figures in $out/many.txt and $out/speed.txt"
