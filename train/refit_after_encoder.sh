#!/usr/bin/env bash
# Everything that depends on the attribute network, refitted after a new encoder run, in the
# order each step needs the one before (BENCHMARKS.md, "The pretrained encoder"):
#   train/refit_after_encoder.sh runs/encoder_vN
# The run folder holds best.pt and run.json (cargo xtask train-encoder). Each step writes its
# card or report under models/ with the command and commit; the logs go to target/refit/.
set -euo pipefail
run=${1:?usage: train/refit_after_encoder.sh RUN_FOLDER [FIRST_STEP]}
# FIRST_STEP: start there (a chain cut short), e.g. measured-type.
from=${2:-import}
started=false
cd "$(dirname "$0")/.."
cargo build --release -p wbc
wbc=./target/release/wbc
mkdir -p target/refit
step() {
    local name=$1
    shift
    [ "$name" = "$from" ] && started=true
    if ! $started; then
        echo "== $name: skipped (starting at $from)" >&2
        return
    fi
    echo "== $name: $*" >&2
    local t0=$SECONDS
    "$@" > "target/refit/$name.out" 2> "target/refit/$name.log"
    echo "   $name done in $((SECONDS - t0)) s" >&2
}
# 1. The network itself: test and val scores, f16 weights rounded to 4 mantissa bits, its card.
step import $wbc import-encoder --run "$run" --checkpoint best.pt --mantissa-bits 4 --out models/attribute_net
# 2. The concept-bottleneck model on the new attribute probabilities.
step cbm $wbc cbm --model models/attribute_net --out models/cbm.json
# 3. The calibration (front end, temperatures, familiarity, doubt), then the measured type and
#    its joining (its warning is chosen against the familiarity check, so after it), then the
#    measured type's test scores.
step calibrate $wbc calibrate --choice-cells 150 --feature-cells 600 --limit 300
step measured-type $wbc measured-type --train-cells 600 --shifted-cells 100
step measured-type-test $wbc measured-type --test-only
# 4. What the page answers, measured: other microscopes, PBC test, adaptation, counterfactual
#    images (which also rewrites the page's edit stains and their follow rates).
step external $wbc external --default-only
step test-table $wbc analyse $(python3 bench/score_analyse.py --paths test 6) --out target/test_table.csv
step test-table-score python3 bench/score_analyse.py target/test_table.csv ../shared/data/wbcatt/pbc_attr_v1_test.csv
step adapt-eval $wbc adapt-eval --draws 20 --k 1,3,5,10
step attribute-adapt-eval $wbc attribute-adapt-eval
step counterfactual-images $wbc counterfactual-images --split test --cells 100 --stain-cells 40
echo "refitted; see target/refit/*.out and models/" >&2
